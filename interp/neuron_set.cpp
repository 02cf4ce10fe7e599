#include "interp/neuron_set.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <tuple>

#include "common/error.h"
#include "common/file_io.h"
#include "common/json_io.h"

namespace vlascope {

using nlohmann::json;

namespace {

constexpr const char* kSetsFormat = "vlascope.neuron_sets";
constexpr const char* kInterventionsFormat = "vlascope.interventions";
constexpr int kVersion = 1;

bool valid_name(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  return true;
}

std::string describe_neuron(const NeuronRef& n) {
  return std::string(stream_name(n.stream)) + " layer " + std::to_string(n.layer) + " index " + std::to_string(n.index) +
         (n.site == ChannelSite::kMlpPost ? "" : std::string(" of ") + channel_site_name(n.site)) +
         (n.tokens == TokenRegion::kAll ? "" : std::string(" on the ") + token_region_name(n.tokens));
}

// Checks that an object has only the allowed keys (plus ignored "_…" keys).
void only_keys(const json& object, std::initializer_list<const char*> allowed, const std::string& where) {
  require(object.is_object(), where + ": must be a JSON object");
  for (auto it = object.begin(); it != object.end(); ++it) {
    const std::string& key = it.key();
    if (!key.empty() && key[0] == '_') continue;
    bool known = false;
    for (const char* a : allowed) known = known || key == a;
    if (!known) {
      std::string list;
      for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
      throw Error(where + ": unknown field '" + key + "' (expected " + list + ")");
    }
  }
}

const json& field(const json& object, const char* key, const std::string& where) {
  require(object.contains(key), where + ": missing field '" + key + "'");
  return object.at(key);
}

std::string string_field(const json& object, const char* key, const std::string& where, bool optional = false) {
  if (optional && !object.contains(key)) return "";
  const json& v = field(object, key, where);
  require(v.is_string(), where + ": field '" + key + "' must be a string");
  return v.get<std::string>();
}

int int_field(const json& object, const char* key, const std::string& where) {
  const json& v = field(object, key, where);
  require(v.is_number_integer(), where + ": field '" + key + "' must be an integer");
  const int64_t x = v.get<int64_t>();
  require(x >= 0 && x <= 1000000000, where + ": field '" + key + "' (" + std::to_string(x) + ") must be ≥ 0");
  return static_cast<int>(x);
}

json parse_document(const std::string& text, const std::string& source, const char* format) {
  const json doc = parse_json_object(text, source);
  if (doc.contains("format"))
    require(doc.at("format") == format,
            source + ": field 'format' is " + doc.at("format").dump() + ", expected \"" + format + "\"");
  if (doc.contains("version"))
    require(doc.at("version").is_number_integer() && doc.at("version").get<int>() <= kVersion,
            source + ": field 'version' is " + doc.at("version").dump() + "; this vlascope reads version " +
                std::to_string(kVersion) + " or older");
  return doc;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  require(in.good(), "cannot open " + path);
  std::ostringstream text;
  text << in.rdbuf();
  require(!in.bad(), "cannot read " + path);
  return text.str();
}

const StreamShape& shape_of(const ModelShape& shape, Stream stream) {
  return stream == Stream::kVlm ? shape.vlm : shape.expert;
}

}  // namespace

const char* stream_name(Stream stream) { return stream == Stream::kVlm ? "vlm" : "expert"; }

Stream parse_stream(const std::string& name) {
  if (name == "vlm") return Stream::kVlm;
  if (name == "expert") return Stream::kExpert;
  throw Error("stream '" + name + "' is not one of vlm, expert");
}

std::string mlp_post_hook(Stream stream, int layer) {
  return std::string(stream_name(stream)) + ".layers." + std::to_string(layer) + ".mlp.post";
}

const char* token_region_name(TokenRegion region) {
  switch (region) {
    case TokenRegion::kAll: return "all";
    case TokenRegion::kImages: return "images";
    case TokenRegion::kWords: return "words";
    case TokenRegion::kState: return "state";
    case TokenRegion::kLastWord: return "last_word";
  }
  return "all";
}

TokenRegion parse_token_region(const std::string& name) {
  for (TokenRegion r :
       {TokenRegion::kAll, TokenRegion::kImages, TokenRegion::kWords, TokenRegion::kState, TokenRegion::kLastWord})
    if (name == token_region_name(r)) return r;
  throw Error("tokens '" + name + "' is not one of all, images, words, state, last_word");
}

const char* channel_site_name(ChannelSite site) { return site == ChannelSite::kResidPost ? "resid.post" : "mlp.post"; }

ChannelSite parse_channel_site(const std::string& name) {
  for (ChannelSite c : {ChannelSite::kMlpPost, ChannelSite::kResidPost})
    if (name == channel_site_name(c)) return c;
  throw Error("site '" + name + "' is not one of mlp.post, resid.post");
}

bool NeuronRef::operator<(const NeuronRef& o) const {
  if (stream != o.stream) return stream < o.stream;
  if (layer != o.layer) return layer < o.layer;
  if (index != o.index) return index < o.index;
  if (tokens != o.tokens) return tokens < o.tokens;
  return site < o.site;
}

StreamShape StreamShape::contiguous(int count, int ffn_width, int width) {
  StreamShape s;
  for (int i = 0; i < count; ++i) s.layers.push_back(i);
  s.ffn_width = ffn_width;
  s.width = width;
  return s;
}

void validate_neuron_set(const NeuronSet& set, const ModelShape& shape) {
  std::vector<std::string> problems;
  if (!valid_name(set.name)) problems.push_back("the name must be letters, digits, '_', '-' or '.'");
  if (set.neurons.empty()) problems.push_back("it has no neurons");
  std::map<NeuronRef, size_t> first_seen;
  for (size_t i = 0; i < set.neurons.size(); ++i) {
    const NeuronRef& n = set.neurons[i];
    const std::string entry = "entry " + std::to_string(i) + " (" + describe_neuron(n) + "): ";
    const StreamShape& s = shape_of(shape, n.stream);
    if (std::find(s.layers.begin(), s.layers.end(), n.layer) == s.layers.end()) {
      std::string layers;
      if (!s.layers.empty())
        layers = " (it has " + std::to_string(s.layers.size()) + " layers, " + std::to_string(s.layers.front()) +
                 " … " + std::to_string(s.layers.back()) + ")";
      problems.push_back(entry + "the " + stream_name(n.stream) + " stream has no layer " + std::to_string(n.layer) +
                         layers);
    }
    if (n.index < 0 || n.index >= s.channels(n.site))
      problems.push_back(entry + "index " + std::to_string(n.index) + " is out of range (" +
                         (n.site == ChannelSite::kMlpPost ? "FFN" : "residual") + " width " +
                         std::to_string(s.channels(n.site)) + ")");
    if (n.stream == Stream::kExpert && n.tokens != TokenRegion::kAll)
      problems.push_back(entry + "tokens '" + token_region_name(n.tokens) +
                         "': an expert channel acts on the action tokens, all of them");
    auto [it, inserted] = first_seen.emplace(n, i);
    if (!inserted) problems.push_back(entry + "duplicate of entry " + std::to_string(it->second));
  }
  if (problems.empty()) return;
  std::string message = "neuron set '" + set.name + "' does not fit the model:";
  for (size_t i = 0; i < problems.size() && i < 20; ++i) message += "\n  " + problems[i];
  if (problems.size() > 20) message += "\n  … and " + std::to_string(problems.size() - 20) + " more";
  throw Error(message);
}

std::string neuron_sets_to_json(const std::vector<NeuronSet>& sets) {
  json doc = {{"format", kSetsFormat}, {"version", kVersion}, {"sets", json::array()}};
  for (const NeuronSet& s : sets) {
    json neurons = json::array();
    for (const NeuronRef& n : s.neurons) {
      json entry = {{"stream", stream_name(n.stream)}, {"layer", n.layer}, {"index", n.index}};
      if (!n.note.empty()) entry["note"] = n.note;
      if (n.weight != 1) entry["weight"] = n.weight;
      if (n.tokens != TokenRegion::kAll) entry["tokens"] = token_region_name(n.tokens);
      if (n.site != ChannelSite::kMlpPost) entry["site"] = channel_site_name(n.site);
      neurons.push_back(entry);
    }
    doc["sets"].push_back(
        {{"name", s.name},
         {"description", s.description},
         {"provenance", {{"method", s.provenance.method}, {"model", s.provenance.model}, {"date", s.provenance.date}}},
         {"neurons", neurons}});
  }
  // One neuron per line keeps the file easy to read and to diff; nlohmann's indent would spread each over 5.
  std::string out = "{\n  \"format\": " + json(kSetsFormat).dump() + ",\n  \"version\": " + std::to_string(kVersion) +
                    ",\n  \"sets\": [";
  for (size_t k = 0; k < doc["sets"].size(); ++k) {
    const json& s = doc["sets"][k];
    out += std::string(k ? "," : "") + "\n    {\n      \"name\": " + s["name"].dump() +
           ",\n      \"description\": " + s["description"].dump() +
           ",\n      \"provenance\": " + s["provenance"].dump() + ",\n      \"neurons\": [";
    for (size_t i = 0; i < s["neurons"].size(); ++i)
      out += std::string(i ? "," : "") + "\n        " + s["neurons"][i].dump();
    out += std::string(s["neurons"].empty() ? "" : "\n      ") + "]\n    }";
  }
  out += std::string(doc["sets"].empty() ? "" : "\n  ") + "]\n}\n";
  return out;
}

std::vector<NeuronSet> parse_neuron_sets(const std::string& text, const std::string& source) {
  const json doc = parse_document(text, source, kSetsFormat);
  only_keys(doc, {"format", "version", "sets"}, source);
  const json& sets = field(doc, "sets", source);
  require(sets.is_array(), source + ": field 'sets' must be an array");
  std::vector<NeuronSet> out;
  for (size_t k = 0; k < sets.size(); ++k) {
    const json& js = sets[k];
    std::string where = source + ": sets[" + std::to_string(k) + "]";
    require(js.is_object(), where + ": must be a JSON object");
    NeuronSet s;
    s.name = string_field(js, "name", where);
    where = source + ": set '" + s.name + "' (sets[" + std::to_string(k) + "])";
    only_keys(js, {"name", "description", "provenance", "neurons"}, where);
    require(valid_name(s.name), where + ": the name must be letters, digits, '_', '-' or '.'");
    for (const NeuronSet& earlier : out)
      require(earlier.name != s.name, where + ": a set with this name is already defined");
    s.description = string_field(js, "description", where, true);
    if (js.contains("provenance")) {
      const json& p = js.at("provenance");
      const std::string pw = where + " provenance";
      only_keys(p, {"method", "model", "date"}, pw);
      s.provenance.method = string_field(p, "method", pw, true);
      s.provenance.model = string_field(p, "model", pw, true);
      s.provenance.date = string_field(p, "date", pw, true);
    }
    const json& neurons = field(js, "neurons", where);
    require(neurons.is_array(), where + ": field 'neurons' must be an array");
    std::map<NeuronRef, size_t> seen;
    for (size_t i = 0; i < neurons.size(); ++i) {
      const std::string nw = where + " neuron " + std::to_string(i);
      const json& jn = neurons[i];
      only_keys(jn, {"stream", "layer", "index", "note", "weight", "tokens", "site"}, nw);
      NeuronRef n;
      try {
        n.stream = parse_stream(string_field(jn, "stream", nw));
      } catch (const Error& e) {
        throw Error(nw + ": " + e.what());
      }
      n.layer = int_field(jn, "layer", nw);
      n.index = int_field(jn, "index", nw);
      n.note = string_field(jn, "note", nw, true);
      if (jn.contains("weight")) {
        const json& w = jn["weight"];
        require(w.is_number() && std::isfinite(w.get<double>()), nw + ": field 'weight' must be a finite number");
        n.weight = w.get<double>();
      }
      if (jn.contains("tokens")) {
        try {
          n.tokens = parse_token_region(string_field(jn, "tokens", nw));
        } catch (const Error& e) {
          throw Error(nw + ": " + e.what());
        }
      }
      if (jn.contains("site")) {
        try {
          n.site = parse_channel_site(string_field(jn, "site", nw));
        } catch (const Error& e) {
          throw Error(nw + ": " + e.what());
        }
      }
      auto [it, inserted] = seen.emplace(n, i);
      require(inserted, nw + " (" + describe_neuron(n) + "): duplicate of neuron " + std::to_string(it->second));
      s.neurons.push_back(n);
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<NeuronSet> read_neuron_sets(const std::string& path) { return parse_neuron_sets(read_text(path), path); }

void write_neuron_sets(const std::string& path, const std::vector<NeuronSet>& sets) {
  write_file_atomically(path, neuron_sets_to_json(sets));
}

const NeuronSet& find_neuron_set(const std::vector<NeuronSet>& sets, const std::string& name) {
  for (const NeuronSet& s : sets)
    if (s.name == name) return s;
  std::string known;
  for (const NeuronSet& s : sets) known += (known.empty() ? "" : ", ") + s.name;
  throw Error("no neuron set named '" + name + "' (known: " + (known.empty() ? "none" : known) + ")");
}

std::map<int, std::vector<int>> indices_by_layer(const NeuronSet& set, Stream stream) {
  std::map<int, std::vector<int>> out;
  for (const NeuronRef& n : set.neurons)
    if (n.stream == stream && n.site == ChannelSite::kMlpPost) out[n.layer].push_back(n.index);
  for (auto& [layer, indices] : out) {
    std::sort(indices.begin(), indices.end());
    indices.erase(std::unique(indices.begin(), indices.end()), indices.end());
  }
  return out;
}

NeuronSet whole_layer_set(Stream stream, int layer, ChannelSite site, const ModelShape& shape, const std::string& name) {
  const StreamShape& s = shape_of(shape, stream);
  require(std::find(s.layers.begin(), s.layers.end(), layer) != s.layers.end(),
          "whole_layer_set: the " + std::string(stream_name(stream)) + " stream has no layer " + std::to_string(layer));
  NeuronSet out;
  out.name = name;
  out.description = std::string("every ") + channel_site_name(site) + " channel of " + stream_name(stream) +
                    " layer " + std::to_string(layer);
  out.provenance.method = "whole_layer_set";
  for (int i = 0; i < s.channels(site); ++i) {
    NeuronRef n;
    n.stream = stream;
    n.layer = layer;
    n.index = i;
    n.site = site;
    out.neurons.push_back(n);
  }
  return out;
}

NeuronSet random_like(const NeuronSet& reference, const ModelShape& shape, uint64_t seed, const std::string& name) {
  validate_neuron_set(reference, shape);
  NeuronSet out;
  out.name = name;
  out.description = "random control for '" + reference.name + "': same size and layers";
  out.provenance.method = "random_like(seed " + std::to_string(seed) + ")";
  out.provenance.model = reference.provenance.model;
  std::set<NeuronRef> taken(reference.neurons.begin(), reference.neurons.end());
  std::mt19937_64 rng(seed);
  auto uniform = [&rng](uint64_t n) {  // unbiased draw from 0 … n − 1
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = rng();
    while (x >= limit);
    return x % n;
  };
  // Dense groups (stream, layer, site, rows): more than half of the layer's channels.
  std::map<std::tuple<Stream, int, ChannelSite, TokenRegion>, std::vector<size_t>> groups;
  for (size_t i = 0; i < reference.neurons.size(); ++i) {
    const NeuronRef& r = reference.neurons[i];
    groups[{r.stream, r.layer, r.site, r.tokens}].push_back(i);
  }
  std::set<size_t> shuffled;
  std::vector<NeuronRef> dense_out(reference.neurons.size());
  for (const auto& [key, members] : groups) {
    if (2 * members.size() <= static_cast<size_t>(shape_of(shape, std::get<0>(key)).channels(std::get<2>(key))))
      continue;
    std::vector<double> weights;
    for (size_t i : members) weights.push_back(reference.neurons[i].weight);
    for (size_t k = weights.size(); k > 1; --k) std::swap(weights[k - 1], weights[uniform(k)]);  // Fisher–Yates
    for (size_t k = 0; k < members.size(); ++k) {
      NeuronRef n = reference.neurons[members[k]];
      n.note.clear();
      n.weight = weights[k];
      dense_out[members[k]] = n;
      shuffled.insert(members[k]);
    }
  }
  for (size_t i = 0; i < reference.neurons.size(); ++i) {
    if (shuffled.count(i)) {
      out.neurons.push_back(dense_out[i]);
      continue;
    }
    const NeuronRef& r = reference.neurons[i];
    const int width = shape_of(shape, r.stream).channels(r.site);
    int in_layer = 0;
    for (const NeuronRef& t : taken) in_layer += t.stream == r.stream && t.layer == r.layer && t.site == r.site;
    require(in_layer < width, "random_like: layer " + std::to_string(r.layer) + " of the " + stream_name(r.stream) +
                                  " stream has no free " + channel_site_name(r.site) + " channels left");
    NeuronRef n = r;
    n.note.clear();
    do n.index = static_cast<int>(uniform(static_cast<uint64_t>(width)));
    while (taken.count(n));
    taken.insert(n);
    out.neurons.push_back(n);
  }
  return out;
}

SetOverlap overlap(const NeuronSet& a, const NeuronSet& b) {
  const std::set<NeuronRef> sa(a.neurons.begin(), a.neurons.end()), sb(b.neurons.begin(), b.neurons.end());
  SetOverlap o;
  o.a = static_cast<int>(sa.size());
  o.b = static_cast<int>(sb.size());
  for (const NeuronRef& n : sa) o.shared += static_cast<int>(sb.count(n));
  const int either = o.a + o.b - o.shared;
  o.jaccard = either > 0 ? static_cast<double>(o.shared) / either : 0;
  return o;
}

// ---- interventions -------------------------------------------------------------------------------------

const char* intervention_op_name(InterventionOp op) {
  switch (op) {
    case InterventionOp::kSet:
      return "set";
    case InterventionOp::kAdd:
      return "add";
    case InterventionOp::kScale:
      return "scale";
  }
  return "?";
}

InterventionOp parse_intervention_op(const std::string& name) {
  if (name == "set") return InterventionOp::kSet;
  if (name == "add") return InterventionOp::kAdd;
  if (name == "scale") return InterventionOp::kScale;
  throw Error("intervention op '" + name + "' is not one of set, add, scale");
}

bool Intervention::applies(bool prefix, int step) const {
  if (prefix) return prefix_pass;
  if (!denoise_passes) return false;
  return steps.empty() || std::find(steps.begin(), steps.end(), step) != steps.end();
}

std::string Intervention::describe() const {
  char value[32];
  std::snprintf(value, sizeof value, "%g", alpha);
  const char* symbol = op == InterventionOp::kSet ? ":=" : op == InterventionOp::kAdd ? "+=" : "*=";
  std::string where = prefix_pass && denoise_passes ? "prefix+denoise"
                      : prefix_pass                 ? "prefix"
                      : denoise_passes              ? "denoise"
                                                    : "no pass";
  std::string which = "all steps";
  if (!steps.empty()) {
    which = "steps";
    for (int s : steps) which += " " + std::to_string(s);
  }
  return std::string(intervention_op_name(op)) + " " + set + " " + symbol + " " + value + " in " + where +
         (denoise_passes ? " (" + which + ")" : "");
}

std::string interventions_to_json(const std::vector<Intervention>& interventions) {
  json list = json::array();
  for (const Intervention& i : interventions) {
    json passes = json::array();
    if (i.prefix_pass) passes.push_back("prefix");
    if (i.denoise_passes) passes.push_back("denoise");
    json entry = {{"set", i.set}, {"op", intervention_op_name(i.op)}, {"alpha", i.alpha}, {"passes", passes}};
    if (!i.steps.empty()) entry["steps"] = i.steps;
    list.push_back(entry);
  }
  json doc = {{"format", kInterventionsFormat}, {"version", kVersion}, {"interventions", list}};
  return doc.dump(2) + "\n";
}

std::vector<Intervention> parse_interventions(const std::string& text, const std::string& source) {
  const json doc = parse_document(text, source, kInterventionsFormat);
  only_keys(doc, {"format", "version", "interventions"}, source);
  const json& list = field(doc, "interventions", source);
  require(list.is_array(), source + ": field 'interventions' must be an array");
  std::vector<Intervention> out;
  for (size_t k = 0; k < list.size(); ++k) {
    const std::string where = source + ": interventions[" + std::to_string(k) + "]";
    const json& j = list[k];
    only_keys(j, {"set", "op", "alpha", "passes", "steps"}, where);
    Intervention i;
    i.set = string_field(j, "set", where);
    require(valid_name(i.set), where + ": set name '" + i.set + "' is not a valid name");
    try {
      i.op = parse_intervention_op(string_field(j, "op", where));
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
    const json& alpha = field(j, "alpha", where);
    require(alpha.is_number() && std::isfinite(alpha.get<double>()), where + ": field 'alpha' must be a finite number");
    i.alpha = alpha.get<double>();
    if (j.contains("passes")) {
      const json& passes = j.at("passes");
      require(passes.is_array() && !passes.empty(), where + ": field 'passes' must be a non-empty array");
      i.prefix_pass = i.denoise_passes = false;
      for (const json& p : passes) {
        require(p.is_string() && (p == "prefix" || p == "denoise"),
                where + ": field 'passes' holds " + p.dump() + "; expected \"prefix\" or \"denoise\"");
        (p == "prefix" ? i.prefix_pass : i.denoise_passes) = true;
      }
    }
    if (j.contains("steps")) {
      const json& steps = j.at("steps");
      require(steps.is_array(), where + ": field 'steps' must be an array of step numbers");
      for (const json& s : steps) {
        require(s.is_number_integer() && s.get<int64_t>() >= 0 && s.get<int64_t>() < 1000000,
                where + ": field 'steps' holds " + s.dump() + "; steps are integers ≥ 0");
        i.steps.push_back(s.get<int>());
      }
      require(i.denoise_passes || i.steps.empty(), where + ": 'steps' given but the denoise pass is not selected");
    }
    out.push_back(std::move(i));
  }
  return out;
}

std::vector<Intervention> read_interventions(const std::string& path) {
  return parse_interventions(read_text(path), path);
}

void write_interventions(const std::string& path, const std::vector<Intervention>& interventions) {
  write_file_atomically(path, interventions_to_json(interventions));
}

void validate_intervention(const Intervention& intervention, const std::vector<NeuronSet>& sets, int num_steps) {
  const std::string where = "intervention '" + intervention.describe() + "'";
  bool found = false;
  for (const NeuronSet& s : sets) found = found || s.name == intervention.set;
  if (!found) {
    try {
      find_neuron_set(sets, intervention.set);
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
  }
  require(std::isfinite(intervention.alpha), where + ": alpha is not finite");
  require(intervention.prefix_pass || intervention.denoise_passes, where + ": acts in no pass");
  for (int s : intervention.steps)
    require(s >= 0 && s < num_steps,
            where + ": denoising step " + std::to_string(s) + " is outside 0 … " + std::to_string(num_steps - 1));
}

}  // namespace vlascope
