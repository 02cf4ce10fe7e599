#include "common/cli.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "common/error.h"

namespace vlascope {

ArgParser::ArgParser(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

void ArgParser::option(const std::string& name, const std::string& default_value, const std::string& help) {
  specs_.push_back({name, help, default_value, false, false});
}
void ArgParser::required(const std::string& name, const std::string& help) {
  specs_.push_back({name, help, std::nullopt, false, false});
}
void ArgParser::flag(const std::string& name, const std::string& help) {
  specs_.push_back({name, help, std::string("0"), true, false});
}
void ArgParser::positional(const std::string& name, const std::string& help) {
  specs_.push_back({name, help, std::nullopt, false, true});
}

const ArgParser::Spec& ArgParser::spec(const std::string& name) const {
  for (const Spec& s : specs_)
    if (s.name == name) return s;
  throw Error(program_ + ": internal error: option --" + name + " was never declared");
}

bool ArgParser::parse(int argc, char** argv, int first) {
  std::vector<const Spec*> positionals;
  for (const Spec& s : specs_)
    if (s.is_positional) positionals.push_back(&s);
  size_t next_positional = 0;

  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(help().c_str(), stdout);
      return false;
    }
    if (arg.rfind("--", 0) != 0) {
      if (next_positional >= positionals.size())
        throw Error(program_ + ": unexpected argument '" + arg + "' (see --help)");
      values_[positionals[next_positional++]->name] = arg;
      continue;
    }
    std::string name = arg.substr(2), value;
    bool has_inline_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_inline_value = true;
    }
    const Spec* s = nullptr;
    for (const Spec& candidate : specs_)
      if (candidate.name == name && !candidate.is_positional) s = &candidate;
    if (!s) throw Error(program_ + ": unknown option --" + name + " (see --help)");
    if (s->is_flag) {
      values_[name] = has_inline_value ? value : "1";
      continue;
    }
    if (!has_inline_value) {
      if (i + 1 >= argc) throw Error(program_ + ": option --" + name + " needs a value");
      value = argv[++i];
    }
    values_[name] = value;
  }
  for (const Spec& s : specs_)
    if (!s.default_value && !values_.count(s.name))
      throw Error(program_ + ": missing " + (s.is_positional ? "argument <" + s.name + ">" : "option --" + s.name) +
                  " (see --help)");
  return true;
}

bool ArgParser::given(const std::string& name) const { return values_.count(name) > 0; }

std::vector<std::string> ArgParser::given_arguments(const std::vector<std::string>& except) const {
  std::vector<std::string> arguments;
  for (const Spec& s : specs_) {
    const auto it = values_.find(s.name);
    if (it == values_.end() || std::find(except.begin(), except.end(), s.name) != except.end()) continue;
    if (s.is_positional)
      arguments.push_back(it->second);
    else if (s.is_flag && it->second == "1")
      arguments.push_back("--" + s.name);
    else
      arguments.push_back("--" + s.name + "=" + it->second);
  }
  return arguments;
}

std::string ArgParser::get(const std::string& name) const {
  const Spec& s = spec(name);
  auto it = values_.find(name);
  if (it != values_.end()) return it->second;
  return s.default_value.value_or("");
}

int64_t ArgParser::get_int64(const std::string& name) const {
  std::string text = get(name);
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0') throw Error(program_ + ": --" + name + " expects an integer, got '" + text + "'");
  return v;
}

int ArgParser::get_int(const std::string& name) const { return static_cast<int>(get_int64(name)); }

double ArgParser::get_double(const std::string& name) const {
  std::string text = get(name);
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0') throw Error(program_ + ": --" + name + " expects a number, got '" + text + "'");
  return v;
}

bool ArgParser::get_flag(const std::string& name) const {
  std::string v = get(name);
  return !(v.empty() || v == "0" || v == "false" || v == "no");
}

std::vector<std::string> split_nonempty(const std::string& text, char separator) {
  std::vector<std::string> items;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, separator))
    if (!item.empty()) items.push_back(item);
  return items;
}

std::pair<std::string, std::string> split_pair(const std::string& text, const std::string& option,
                                               const std::string& form) {
  const size_t colon = text.find(':');
  require(colon != std::string::npos, option + ": '" + text + "' must be " + form);
  return {text.substr(0, colon), text.substr(colon + 1)};
}

std::string format_number(double x) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", x);
  return text;
}

std::vector<std::string> ArgParser::get_list(const std::string& name) const { return split_nonempty(get(name), ','); }

std::vector<double> ArgParser::get_doubles(const std::string& name) const {
  std::vector<double> numbers;
  for (const std::string& item : get_list(name)) {
    char* end = nullptr;
    double v = std::strtod(item.c_str(), &end);
    if (*end != '\0') throw Error(program_ + ": --" + name + " expects numbers, got '" + item + "'");
    numbers.push_back(v);
  }
  return numbers;
}

std::string ArgParser::help() const {
  std::ostringstream out;
  out << "usage: " << program_;
  for (const Spec& s : specs_)
    if (s.is_positional) out << " <" << s.name << ">";
  out << " [options]\n\n" << summary_ << "\n\n";
  for (const Spec& s : specs_) {
    std::string left = s.is_positional ? "<" + s.name + ">" : "--" + s.name + (s.is_flag ? "" : " VALUE");
    out << "  " << left;
    for (size_t pad = left.size(); pad < 28; ++pad) out << ' ';
    if (left.size() >= 28) out << ' ';  // a long option name still gets a space before its help
    out << s.help;
    if (s.is_flag) {
    } else if (!s.default_value)
      out << (s.is_positional ? "" : " (required)");
    else if (!s.default_value->empty())
      out << " [default: " << *s.default_value << "]";
    out << "\n";
  }
  out << "  --help                      show this help\n";
  return out.str();
}

}  // namespace vlascope
