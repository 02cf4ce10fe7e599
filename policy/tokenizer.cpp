#include "policy/tokenizer.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "common/error.h"
#include "common/file_io.h"
#include "common/json_io.h"
#include "policy/tokenizer_unicode.h"

namespace vlascope {

namespace {

using Json = nlohmann::json;

// ---------------------------------------------------------------------------------------------------------------
// UTF-8

// Length of the well-formed UTF-8 sequence at s[i], or 0 if there is none; then *bad is the length of the
// "maximal subpart" (Unicode §3.9) to replace with one U+FFFD, as Rust's String::from_utf8_lossy does.
size_t utf8_sequence_length(const std::string& s, size_t i, size_t* bad) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t need = 0;
  unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    *bad = 1;
    return 0;
  }
  size_t k = 1;
  for (; k <= need && i + k < s.size(); ++k) {
    const unsigned b = byte(i + k);
    if (b < (k == 1 ? lo : 0x80u) || b > (k == 1 ? hi : 0xBFu)) break;
  }
  if (k == need + 1) return k;
  *bad = k;
  return 0;
}

// Byte offset of the first ill-formed sequence in s, or npos.
size_t find_invalid_utf8(const std::string& s) {
  size_t bad = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_sequence_length(s, i, &bad);
    if (n == 0) return i;
    i += n;
  }
  return std::string::npos;
}

// Decodes the code point at s[i] of well-formed UTF-8 and advances i past it.
char32_t next_codepoint(const std::string& s, size_t& i) {
  const auto byte = [&](size_t k) { return static_cast<char32_t>(static_cast<unsigned char>(s[k])); };
  const char32_t b0 = byte(i);
  if (b0 < 0x80) {
    i += 1;
    return b0;
  }
  if (b0 < 0xE0) {
    const char32_t c = ((b0 & 0x1F) << 6) | (byte(i + 1) & 0x3F);
    i += 2;
    return c;
  }
  if (b0 < 0xF0) {
    const char32_t c = ((b0 & 0x0F) << 12) | ((byte(i + 1) & 0x3F) << 6) | (byte(i + 2) & 0x3F);
    i += 3;
    return c;
  }
  const char32_t c =
      ((b0 & 0x07) << 18) | ((byte(i + 1) & 0x3F) << 12) | ((byte(i + 2) & 0x3F) << 6) | (byte(i + 3) & 0x3F);
  i += 4;
  return c;
}

// Start of the code point that ends just before byte i of well-formed UTF-8 (i > 0).
size_t previous_codepoint_start(const std::string& s, size_t i) {
  do {
    --i;
  } while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80);
  return i;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

std::string utf8_lossy(const std::string& bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t bad = 0;
  for (size_t i = 0; i < bytes.size();) {
    const size_t n = utf8_sequence_length(bytes, i, &bad);
    if (n > 0) {
      out.append(bytes, i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
      i += bad;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Character classes, with ASCII fast paths.

bool is_letter(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  return unicode::is_letter(c);
}
bool is_number(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  return unicode::is_number(c);
}
bool is_space(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= '\t' && c <= '\r');
  return unicode::is_space(c);
}
bool is_word(char32_t c) {
  if (c < 0x80) return is_letter(c) || is_number(c) || c == '_';
  return unicode::is_word(c);
}

std::string lowercase(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  char32_t mapped[3];
  for (size_t i = 0; i < s.size();) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      out += static_cast<char>(b >= 'A' && b <= 'Z' ? b + ('a' - 'A') : b);
      ++i;
      continue;
    }
    const int n = unicode::lowercase(next_codepoint(s, i), mapped);
    for (int k = 0; k < n; ++k) append_utf8(out, mapped[k]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// GPT-2's bytes → unicode table: printable Latin-1 bytes stand for themselves, the other 68 bytes (controls,
// space, 0x7F-0xA0, soft hyphen) for U+0100 onwards in byte order, so every byte is a visible character
// (space = 'Ġ', U+0120; newline = 'Ċ', U+010A).

struct ByteLevelTable {
  std::array<std::string, 256> byte_to_char;  // UTF-8 of the character standing for each byte
  std::array<int16_t, 324> char_to_byte;      // the inverse, -1 where no byte maps
};

const ByteLevelTable& byte_level_table() {
  static const ByteLevelTable table = [] {
    ByteLevelTable t;
    t.char_to_byte.fill(-1);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const char32_t c = printable ? static_cast<char32_t>(b) : next++;
      append_utf8(t.byte_to_char[b], c);
      t.char_to_byte[c] = static_cast<int16_t>(b);
    }
    return t;
  }();
  return table;
}

std::string bytes_to_byte_level(const std::string& bytes) {
  const ByteLevelTable& table = byte_level_table();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char b : bytes) out += table.byte_to_char[static_cast<unsigned char>(b)];
  return out;
}

// The bytes a token's characters stand for; false if a character is not in the table (then `tokenizers` keeps
// the token's own UTF-8, e.g. for added tokens).
bool byte_level_to_bytes(const std::string& token, std::string& out) {
  const ByteLevelTable& table = byte_level_table();
  const size_t start = out.size();
  for (size_t i = 0; i < token.size();) {
    const char32_t c = next_codepoint(token, i);
    if (c >= table.char_to_byte.size() || table.char_to_byte[c] < 0) {
      out.resize(start);
      return false;
    }
    out += static_cast<char>(table.char_to_byte[c]);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// Pre-tokenizer splits. Each appends the non-empty pieces of s to out.

struct Codepoints {
  std::vector<char32_t> cp;
  std::vector<size_t> offset;  // byte offset of cp[k]; offset[size] = s.size()
};

void decode_codepoints(const std::string& s, Codepoints& out) {
  out.cp.clear();
  out.offset.clear();
  for (size_t i = 0; i < s.size();) {
    out.offset.push_back(i);
    out.cp.push_back(next_codepoint(s, i));
  }
  out.offset.push_back(s.size());
}

// The ByteLevel pre-tokenizer's regex, matched left to right with Oniguruma's semantics (first alternative that
// matches wins, greedy quantifiers):
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
void gpt2_split_into(const std::string& s, std::vector<std::string>& out) {
  enum Class : uint8_t { kLetter, kNumber, kSpace, kOther };
  Codepoints text;
  decode_codepoints(s, text);
  const size_t n = text.cp.size();
  std::vector<Class> cls(n);
  for (size_t k = 0; k < n; ++k) {
    const char32_t c = text.cp[k];
    cls[k] = is_letter(c) ? kLetter : is_number(c) ? kNumber : is_space(c) ? kSpace : kOther;
  }
  const auto emit = [&](size_t from, size_t to) {
    out.emplace_back(s, text.offset[from], text.offset[to] - text.offset[from]);
  };
  size_t i = 0;
  while (i < n) {
    const char32_t c = text.cp[i];
    // 's 't 're 've 'm 'll 'd (case-sensitive)
    if (c == '\'' && i + 1 < n) {
      const char32_t c1 = text.cp[i + 1];
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
        emit(i, i + 2);
        i += 2;
        continue;
      }
      if (i + 2 < n) {
        const char32_t c2 = text.cp[i + 2];
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
          emit(i, i + 3);
          i += 3;
          continue;
        }
      }
    }
    // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: a space joins the run that follows it.
    size_t run = i;
    if (c == ' ' && i + 1 < n && cls[i + 1] != kSpace) run = i + 1;
    if (cls[run] != kSpace) {
      const Class kind = cls[run];
      size_t end = run + 1;
      while (end < n && cls[end] == kind) ++end;
      emit(i, end);
      i = end;
      continue;
    }
    // `\s+(?!\S)`: a whitespace run, less its last character if a non-space follows (that one then joins the
    // next word); `\s+` when the run is a single character before a non-space.
    size_t end = i + 1;
    while (end < n && cls[end] == kSpace) ++end;
    if (end < n && end - i >= 2) --end;
    emit(i, end);
    i = end;
  }
}

// Digits: every \p{N} character on its own (individual_digits) or runs of them, kept as pieces.
void digits_split_into(const std::string& s, bool individual, std::vector<std::string>& out) {
  size_t piece_start = 0;
  bool in_digits = false;
  for (size_t i = 0; i < s.size();) {
    const size_t start = i;
    const bool digit = is_number(next_codepoint(s, i));
    if (digit && (individual || !in_digits)) {
      if (start > piece_start) out.emplace_back(s, piece_start, start - piece_start);
      piece_start = start;
    } else if (!digit && in_digits) {
      out.emplace_back(s, piece_start, start - piece_start);
      piece_start = start;
    }
    in_digits = digit;
  }
  if (s.size() > piece_start) out.emplace_back(s, piece_start, s.size() - piece_start);
}

// Whitespace: \w+|[^\w\s]+ (whitespace dropped). WhitespaceSplit: runs of non-whitespace.
void whitespace_split_into(const std::string& s, bool split_punctuation, std::vector<std::string>& out) {
  enum Class : uint8_t { kSpace, kWord, kOther };
  size_t piece_start = 0;
  Class current = kSpace;
  for (size_t i = 0; i < s.size();) {
    const size_t start = i;
    const char32_t c = next_codepoint(s, i);
    Class kind = is_space(c) ? kSpace : (!split_punctuation || is_word(c)) ? kWord : kOther;
    if (kind != current) {
      if (current != kSpace) out.emplace_back(s, piece_start, start - piece_start);
      piece_start = start;
      current = kind;
    }
  }
  if (current != kSpace) out.emplace_back(s, piece_start, s.size() - piece_start);
}

// ---------------------------------------------------------------------------------------------------------------
// JSON access with errors that name the source and the JSON path.

class JsonReader {
 public:
  explicit JsonReader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    throw Error(source_ + ": " + path + " " + what);
  }

  // object[key], or nullptr when the key is absent.
  const Json* find(const Json& object, const std::string& path, const char* key) const {
    require_object(object, path);
    const auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
  }
  const Json& at(const Json& object, const std::string& path, const char* key) const {
    const Json* value = find(object, path, key);
    if (value == nullptr) fail(join(path, key), "is missing");
    return *value;
  }
  void require_object(const Json& value, const std::string& path) const {
    if (!value.is_object()) fail(path, "must be an object, not " + describe(value));
  }
  const Json& array(const Json& value, const std::string& path) const {
    if (!value.is_array()) fail(path, "must be an array, not " + describe(value));
    return value;
  }
  std::string string(const Json& value, const std::string& path) const {
    if (!value.is_string()) fail(path, "must be a string, not " + describe(value));
    return value.get<std::string>();
  }
  int64_t id(const Json& value, const std::string& path) const {
    if (!value.is_number_integer()) fail(path, "must be an integer id, not " + describe(value));
    const int64_t v =
        value.is_number_unsigned() && value.get<uint64_t>() > uint64_t{INT64_MAX} ? -1 : value.get<int64_t>();
    if (v < 0 || v > std::numeric_limits<int32_t>::max())
      fail(path, "must be an id from 0 to 2^31-1, not " + value.dump());
    return v;
  }
  bool boolean(const Json& object, const std::string& path, const char* key, bool fallback) const {
    const Json* value = find(object, path, key);
    if (value == nullptr || value->is_null()) return fallback;
    if (!value->is_boolean()) fail(join(path, key), "must be true or false, not " + describe(*value));
    return value->get<bool>();
  }
  // object["type"], required.
  std::string type(const Json& object, const std::string& path) const {
    return string(at(object, path, "type"), join(path, "type"));
  }
  [[noreturn]] void unsupported_type(const std::string& path, const std::string& type) const {
    fail(join(path, "type"), "\"" + type + "\" is not supported");
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }
  static std::string index(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }
  static std::string describe(const Json& value) {
    std::string text = value.dump();
    if (text.size() > 40) text = text.substr(0, 37) + "...";
    return std::string(value.type_name()) + " " + text;
  }

  const std::string& source() const { return source_; }

 private:
  std::string source_;
};

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// The parsed tokenizer.

namespace {

struct AddedToken {
  int64_t id = 0;
  std::string content;
  std::string match;  // what is searched for: content, or content normalized when "normalized" is true
  bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
};

enum class PreTokenizerKind { kByteLevel, kDigits, kWhitespace, kWhitespaceSplit };

struct PreTokenizerStep {
  PreTokenizerKind kind = PreTokenizerKind::kByteLevel;
  bool add_prefix_space = false;   // ByteLevel
  bool use_regex = true;           // ByteLevel
  bool individual_digits = false;  // Digits
};

// One TemplateProcessing "single" template: special-token ids around the sequence ($A).
struct Template {
  std::vector<int64_t> before, after;
};

struct Merge {
  int32_t rank;
  int32_t new_id;
};

}  // namespace

struct Tokenizer::Impl {
  std::string source;
  TokenizerModel model = TokenizerModel::kBpe;

  std::unordered_map<std::string, int64_t> vocab;        // model.vocab
  std::unordered_map<int64_t, std::string> vocab_by_id;  // a map: ids may be sparse
  std::optional<int64_t> unk_id;

  // BPE
  std::unordered_map<uint64_t, Merge> merges;  // key: (left id << 32) | right id
  bool fuse_unk = false, byte_fallback = false, ignore_merges = false;

  std::vector<AddedToken> added;
  std::unordered_map<std::string, size_t> added_by_content;
  std::unordered_map<int64_t, size_t> added_by_id;
  // Indices into `added`, by the first byte of what they match, longest first: the raw-text pass
  // ("normalized": false) and the normalized-text pass.
  std::array<std::vector<uint32_t>, 256> raw_candidates, normalized_candidates;
  bool has_raw_added = false, has_normalized_added = false;

  bool lowercase_normalizer = false;
  std::vector<PreTokenizerStep> pre_tokenizer;
  std::vector<Template> templates;
  bool byte_level_decoder = false;

  int64_t vocab_size = 0;
  int64_t pad_id = 0;

  static constexpr size_t kCacheCapacity = 10000;  // words, as in `tokenizers`
  static constexpr size_t kCacheMaxWordBytes = 256;
  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

  // ----- encoding

  struct Segment {
    std::string text;
    int64_t added_id = -1;  // >= 0: this segment is an added token
  };

  void split_added(const std::string& text, const std::array<std::vector<uint32_t>, 256>& candidates,
                   std::vector<Segment>& out) const;
  void pre_tokenize_into(const std::string& text, std::vector<std::string>& out) const;
  void bpe(const std::string& word, std::vector<int64_t>& out) const;
  void bpe_uncached(const std::string& word, std::vector<int32_t>& out) const;
  void model_tokenize(const std::string& word, std::vector<int64_t>& out) const;
  std::vector<Segment> segments(const std::string& text) const;
  std::optional<std::string> token_of(int64_t id) const;
};

namespace {

bool ends_with_word(const std::string& s, size_t end) {
  if (end == 0) return false;
  size_t i = previous_codepoint_start(s, end);
  return is_word(next_codepoint(s, i));
}

bool starts_with_word(const std::string& s, size_t begin) {
  if (begin >= s.size()) return false;
  return is_word(next_codepoint(s, begin));
}

}  // namespace

// `tokenizers`' AddedVocabulary::find_matches: leftmost-longest matches, then single_word / lstrip / rstrip.
void Tokenizer::Impl::split_added(const std::string& text, const std::array<std::vector<uint32_t>, 256>& candidates,
                                  std::vector<Segment>& out) const {
  const size_t n = text.size();
  size_t start_offset = 0;  // end of what has been emitted
  size_t search = 0;
  while (search < n) {
    size_t match_start = n, match_end = n;
    const AddedToken* token = nullptr;
    for (size_t i = search; i < n && token == nullptr; ++i) {
      for (const uint32_t k : candidates[static_cast<unsigned char>(text[i])]) {
        const std::string& m = added[k].match;
        if (m.size() <= n - i && text.compare(i, m.size(), m) == 0) {
          token = &added[k];
          match_start = i;
          match_end = i + m.size();
          break;
        }
      }
    }
    if (token == nullptr) break;
    search = match_end;
    size_t start = match_start, stop = match_end;
    if (token->single_word && (ends_with_word(text, start) || starts_with_word(text, stop))) continue;
    if (token->lstrip) {
      size_t new_start = start;
      while (new_start > 0) {
        size_t p = previous_codepoint_start(text, new_start);
        size_t q = p;
        if (!is_space(next_codepoint(text, q))) break;
        new_start = p;
      }
      start = std::max(new_start, start_offset);
    }
    if (token->rstrip) {
      while (stop < n) {
        size_t q = stop;
        if (!is_space(next_codepoint(text, q))) break;
        stop = q;
      }
      // `tokenizers` resumes its search at the token's own end; resuming after the stripped spaces keeps the
      // splits from overlapping (they can only differ for an added token that starts with whitespace).
      search = stop;
    }
    if (start_offset < start) out.push_back({text.substr(start_offset, start - start_offset), -1});
    out.push_back({text.substr(start, stop - start), token->id});
    start_offset = stop;
  }
  if (start_offset < n) out.push_back({text.substr(start_offset), -1});
}

std::vector<Tokenizer::Impl::Segment> Tokenizer::Impl::segments(const std::string& text) const {
  std::vector<Segment> raw;
  if (has_raw_added) {
    split_added(text, raw_candidates, raw);
  } else if (!text.empty()) {
    raw.push_back({text, -1});
  }
  std::vector<Segment> out;
  for (Segment& segment : raw) {
    if (segment.added_id >= 0) {
      out.push_back(std::move(segment));
      continue;
    }
    std::string normalized = lowercase_normalizer ? lowercase(segment.text) : std::move(segment.text);
    if (has_normalized_added) {
      split_added(normalized, normalized_candidates, out);
    } else {
      out.push_back({std::move(normalized), -1});
    }
  }
  return out;
}

void Tokenizer::Impl::pre_tokenize_into(const std::string& text, std::vector<std::string>& out) const {
  std::vector<std::string> pieces{text};
  std::vector<std::string> next;
  for (const PreTokenizerStep& step : pre_tokenizer) {
    next.clear();
    for (std::string& piece : pieces) {
      switch (step.kind) {
        case PreTokenizerKind::kByteLevel: {
          if (step.add_prefix_space && piece.compare(0, 1, " ") != 0) piece.insert(0, " ");
          const size_t first = next.size();
          if (step.use_regex) {
            gpt2_split_into(piece, next);
          } else {
            next.push_back(std::move(piece));
          }
          for (size_t k = first; k < next.size(); ++k) next[k] = bytes_to_byte_level(next[k]);
          break;
        }
        case PreTokenizerKind::kDigits:
          digits_split_into(piece, step.individual_digits, next);
          break;
        case PreTokenizerKind::kWhitespace:
          whitespace_split_into(piece, true, next);
          break;
        case PreTokenizerKind::kWhitespaceSplit:
          whitespace_split_into(piece, false, next);
          break;
      }
    }
    pieces.swap(next);
  }
  for (std::string& piece : pieces) {
    if (!piece.empty()) out.push_back(std::move(piece));
  }
}

// `tokenizers`' Word::merge_all without dropout: repeatedly merge the adjacent pair of lowest rank (leftmost
// first among equal ranks), through a priority queue of candidate merges that are re-checked when popped.
void Tokenizer::Impl::bpe_uncached(const std::string& word, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    bool removed;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  const auto add_symbol = [&](int64_t id) {
    const int32_t index = static_cast<int32_t>(symbols.size());
    if (index > 0) symbols.back().next = index;
    symbols.push_back({static_cast<int32_t>(id), index - 1, -1, false});
  };
  bool pending_unk = false;  // a fused unknown run not yet added
  for (size_t i = 0; i < word.size();) {
    const size_t start = i;
    next_codepoint(word, i);
    const std::string character = word.substr(start, i - start);
    const auto it = vocab.find(character);
    if (it != vocab.end()) {
      if (pending_unk) add_symbol(*unk_id);
      pending_unk = false;
      add_symbol(it->second);
      continue;
    }
    if (byte_fallback) {
      std::vector<int64_t> bytes;
      for (const char b : character) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", static_cast<unsigned char>(b));
        const auto byte_it = vocab.find(name);
        if (byte_it == vocab.end()) break;
        bytes.push_back(byte_it->second);
      }
      if (bytes.size() == character.size()) {
        if (pending_unk) add_symbol(*unk_id);
        pending_unk = false;
        for (const int64_t id : bytes) add_symbol(id);
        continue;
      }
    }
    if (!unk_id) {
      throw Error(source + ": model.vocab has no token for the character \"" + character +
                  "\" and model.unk_token is null");
    }
    if (pending_unk && !fuse_unk) add_symbol(*unk_id);
    pending_unk = true;
  }
  if (pending_unk) add_symbol(*unk_id);

  struct Candidate {
    int32_t rank, pos, new_id;
    bool operator<(const Candidate& other) const {  // priority_queue pops the largest: invert
      return rank != other.rank ? rank > other.rank : pos > other.pos;
    }
  };
  const auto find_merge = [&](int32_t left, int32_t right) -> const Merge* {
    const auto it = merges.find((static_cast<uint64_t>(left) << 32) | static_cast<uint32_t>(right));
    return it == merges.end() ? nullptr : &it->second;
  };
  std::priority_queue<Candidate> queue;
  for (size_t k = 0; k + 1 < symbols.size(); ++k) {
    if (const Merge* m = find_merge(symbols[k].id, symbols[k + 1].id)) {
      queue.push({m->rank, static_cast<int32_t>(k), m->new_id});
    }
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (left.removed || left.next < 0) continue;
    const int32_t right_pos = left.next;
    Symbol& right = symbols[right_pos];
    const Merge* current = find_merge(left.id, right.id);
    if (current == nullptr || current->new_id != top.new_id) continue;  // stale entry
    left.id = top.new_id;
    left.next = right.next;
    right.removed = true;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const Merge* m = find_merge(symbols[left.prev].id, left.id)) queue.push({m->rank, left.prev, m->new_id});
    }
    if (left.next >= 0) {
      if (const Merge* m = find_merge(left.id, symbols[left.next].id)) queue.push({m->rank, top.pos, m->new_id});
    }
  }
  for (const Symbol& s : symbols) {
    if (!s.removed) out.push_back(s.id);
  }
}

void Tokenizer::Impl::bpe(const std::string& word, std::vector<int64_t>& out) const {
  if (ignore_merges) {
    const auto it = vocab.find(word);
    if (it != vocab.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = word.size() <= kCacheMaxWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex);
    const auto it = cache.find(word);
    if (it != cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  bpe_uncached(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex);
    if (cache.size() < kCacheCapacity) cache.emplace(word, std::move(ids));
  }
}

void Tokenizer::Impl::model_tokenize(const std::string& word, std::vector<int64_t>& out) const {
  if (model == TokenizerModel::kBpe) {
    bpe(word, out);
    return;
  }
  const auto it = vocab.find(word);
  out.push_back(it != vocab.end() ? it->second : *unk_id);
}

std::optional<std::string> Tokenizer::Impl::token_of(int64_t id) const {
  const auto added_it = added_by_id.find(id);
  if (added_it != added_by_id.end()) return added[added_it->second].content;
  const auto it = vocab_by_id.find(id);
  if (it != vocab_by_id.end()) return it->second;
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing.

namespace {

using Impl = Tokenizer::Impl;

void parse_normalizer(const JsonReader& r, const Json& node, const std::string& path, Impl& impl) {
  if (node.is_null()) return;
  const std::string type = r.type(node, path);
  if (type == "Lowercase") {
    impl.lowercase_normalizer = true;
  } else if (type == "Sequence") {
    const std::string list_path = JsonReader::join(path, "normalizers");
    const Json& list = r.array(r.at(node, path, "normalizers"), list_path);
    for (size_t i = 0; i < list.size(); ++i) parse_normalizer(r, list[i], JsonReader::index(list_path, i), impl);
  } else {
    r.unsupported_type(path, type);
  }
}

void parse_pre_tokenizer(const JsonReader& r, const Json& node, const std::string& path, Impl& impl) {
  if (node.is_null()) return;
  const std::string type = r.type(node, path);
  PreTokenizerStep step;
  if (type == "ByteLevel") {
    step.kind = PreTokenizerKind::kByteLevel;
    step.add_prefix_space = r.boolean(node, path, "add_prefix_space", true);  // the library's defaults
    step.use_regex = r.boolean(node, path, "use_regex", true);
  } else if (type == "Digits") {
    step.kind = PreTokenizerKind::kDigits;
    step.individual_digits = r.boolean(node, path, "individual_digits", false);
  } else if (type == "Whitespace") {
    step.kind = PreTokenizerKind::kWhitespace;
  } else if (type == "WhitespaceSplit") {
    step.kind = PreTokenizerKind::kWhitespaceSplit;
  } else if (type == "Sequence") {
    const std::string list_path = JsonReader::join(path, "pretokenizers");
    const Json& list = r.array(r.at(node, path, "pretokenizers"), list_path);
    for (size_t i = 0; i < list.size(); ++i) parse_pre_tokenizer(r, list[i], JsonReader::index(list_path, i), impl);
    return;
  } else {
    r.unsupported_type(path, type);
  }
  impl.pre_tokenizer.push_back(step);
}

// Runs after the model and added tokens are known: special tokens resolve through them.
void parse_post_processor(const JsonReader& r, const Json& node, const std::string& path, Impl& impl) {
  if (node.is_null()) return;
  const std::string type = r.type(node, path);
  if (type == "ByteLevel") return;  // changes offsets only
  if (type == "Sequence") {
    const std::string list_path = JsonReader::join(path, "processors");
    const Json& list = r.array(r.at(node, path, "processors"), list_path);
    for (size_t i = 0; i < list.size(); ++i) parse_post_processor(r, list[i], JsonReader::index(list_path, i), impl);
    return;
  }
  if (type != "TemplateProcessing") r.unsupported_type(path, type);

  const std::string specials_path = JsonReader::join(path, "special_tokens");
  const Json* specials = r.find(node, path, "special_tokens");
  if (specials != nullptr && !specials->is_null()) r.require_object(*specials, specials_path);
  const std::string single_path = JsonReader::join(path, "single");
  const Json& single = r.array(r.at(node, path, "single"), single_path);
  Template t;
  bool seen_sequence = false;
  for (size_t i = 0; i < single.size(); ++i) {
    const std::string item_path = JsonReader::index(single_path, i);
    const Json& item = single[i];
    r.require_object(item, item_path);
    if (const Json* sequence = r.find(item, item_path, "Sequence")) {
      const std::string sequence_path = JsonReader::join(item_path, "Sequence");
      const std::string name = r.string(r.at(*sequence, sequence_path, "id"), JsonReader::join(sequence_path, "id"));
      if (name != "A")
        r.fail(JsonReader::join(sequence_path, "id"), in_quotes(name) + " must be \"A\" in a single template");
      if (seen_sequence) r.fail(item_path, "repeats the sequence $A");
      seen_sequence = true;
    } else if (const Json* special = r.find(item, item_path, "SpecialToken")) {
      const std::string special_path = JsonReader::join(item_path, "SpecialToken");
      const std::string name = r.string(r.at(*special, special_path, "id"), JsonReader::join(special_path, "id"));
      if (specials == nullptr || specials->is_null() || !specials->contains(name)) {
        r.fail(JsonReader::join(special_path, "id"), in_quotes(name) + " is not in " + specials_path);
      }
      const std::string entry_path = specials_path + "[" + in_quotes(name) + "]";
      const std::string ids_path = JsonReader::join(entry_path, "ids");
      const Json& ids = r.array(r.at(specials->at(name), entry_path, "ids"), ids_path);
      for (size_t k = 0; k < ids.size(); ++k) {
        const int64_t id = r.id(ids[k], JsonReader::index(ids_path, k));
        if (!impl.token_of(id)) r.fail(JsonReader::index(ids_path, k), std::to_string(id) + " is not a known token id");
        (seen_sequence ? t.after : t.before).push_back(id);
      }
    } else {
      r.fail(item_path, "must hold \"Sequence\" or \"SpecialToken\"");
    }
  }
  if (!seen_sequence) r.fail(single_path, "has no sequence $A");
  impl.templates.push_back(std::move(t));
}

void parse_decoder(const JsonReader& r, const Json& node, const std::string& path, Impl& impl) {
  if (node.is_null()) return;
  const std::string type = r.type(node, path);
  if (type != "ByteLevel") r.unsupported_type(path, type);
  impl.byte_level_decoder = true;
}

void parse_vocab(const JsonReader& r, const Json& model, Impl& impl) {
  const Json& vocab = r.at(model, "model", "vocab");
  r.require_object(vocab, "model.vocab");
  if (vocab.empty()) r.fail("model.vocab", "is empty");
  impl.vocab.reserve(vocab.size());
  impl.vocab_by_id.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const int64_t id = r.id(it.value(), "model.vocab[" + in_quotes(it.key()) + "]");
    const auto [slot, inserted] = impl.vocab_by_id.emplace(id, it.key());
    if (!inserted) {
      r.fail("model.vocab",
             "gives id " + std::to_string(id) + " to both " + in_quotes(slot->second) + " and " + in_quotes(it.key()));
    }
    impl.vocab.emplace(it.key(), id);
    impl.vocab_size = std::max(impl.vocab_size, id + 1);
  }
}

void parse_unk(const JsonReader& r, const Json& model, Impl& impl, bool required) {
  const Json* unk = r.find(model, "model", "unk_token");
  if (unk == nullptr || unk->is_null()) {
    if (required) r.fail("model.unk_token", "is missing");
    return;
  }
  const std::string name = r.string(*unk, "model.unk_token");
  const auto it = impl.vocab.find(name);
  if (it == impl.vocab.end()) r.fail("model.unk_token", in_quotes(name) + " is not in model.vocab");
  impl.unk_id = it->second;
}

void parse_bpe(const JsonReader& r, const Json& model, Impl& impl) {
  impl.model = TokenizerModel::kBpe;
  parse_vocab(r, model, impl);
  parse_unk(r, model, impl, false);
  if (const Json* dropout = r.find(model, "model", "dropout"); dropout != nullptr && !dropout->is_null()) {
    if (!dropout->is_number()) r.fail("model.dropout", "must be a number or null");
    if (dropout->get<double>() > 0) r.fail("model.dropout", dropout->dump() + " is not supported (only null or 0)");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const Json* value = r.find(model, "model", key);
    if (value == nullptr || value->is_null()) continue;
    const std::string text = r.string(*value, JsonReader::join("model", key));
    if (!text.empty()) r.fail(JsonReader::join("model", key), in_quotes(text) + " is not supported (only null)");
  }
  impl.fuse_unk = r.boolean(model, "model", "fuse_unk", false);
  impl.byte_fallback = r.boolean(model, "model", "byte_fallback", false);
  impl.ignore_merges = r.boolean(model, "model", "ignore_merges", false);

  // Merges are "left right" strings (older files) or ["left", "right"] pairs (tokenizers >= 0.20); the rank is
  // the position in the list.
  const Json& merges = r.array(r.at(model, "model", "merges"), "model.merges");
  impl.merges.reserve(merges.size());
  const auto lookup = [&](const std::string& token, const std::string& path) {
    const auto it = impl.vocab.find(token);
    if (it == impl.vocab.end()) r.fail(path, "names " + in_quotes(token) + ", which is not in model.vocab");
    return it->second;
  };
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string path = JsonReader::index("model.merges", rank);
    const Json& merge = merges[rank];
    std::string left, right;
    if (merge.is_string()) {
      const std::string text = merge.get<std::string>();
      const size_t space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
        r.fail(path, in_quotes(text) + " must be two tokens separated by one space");
      }
      left = text.substr(0, space);
      right = text.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
      left = merge[0].get<std::string>();
      right = merge[1].get<std::string>();
    } else {
      r.fail(path,
             "must be a \"left right\" string or a [\"left\", \"right\"] pair, not " + JsonReader::describe(merge));
    }
    const int64_t left_id = lookup(left, path);
    const int64_t right_id = lookup(right, path);
    const int64_t new_id = lookup(left + right, path);
    // A repeated pair keeps its last rank, as `tokenizers`' map does.
    impl.merges[(static_cast<uint64_t>(left_id) << 32) | static_cast<uint64_t>(right_id)] = {
        static_cast<int32_t>(rank), static_cast<int32_t>(new_id)};
  }
}

void parse_word_level(const JsonReader& r, const Json& model, Impl& impl) {
  impl.model = TokenizerModel::kWordLevel;
  parse_vocab(r, model, impl);
  parse_unk(r, model, impl, true);
}

void parse_added_tokens(const JsonReader& r, const Json& root, Impl& impl) {
  const Json* list = r.find(root, "", "added_tokens");
  if (list == nullptr || list->is_null()) return;
  r.array(*list, "added_tokens");
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string path = JsonReader::index("added_tokens", i);
    const Json& node = (*list)[i];
    AddedToken token;
    token.id = r.id(r.at(node, path, "id"), JsonReader::join(path, "id"));
    token.content = r.string(r.at(node, path, "content"), JsonReader::join(path, "content"));
    if (token.content.empty()) r.fail(JsonReader::join(path, "content"), "is empty");
    token.single_word = r.boolean(node, path, "single_word", false);
    token.lstrip = r.boolean(node, path, "lstrip", false);
    token.rstrip = r.boolean(node, path, "rstrip", false);
    token.normalized = r.boolean(node, path, "normalized", true);
    token.special = r.boolean(node, path, "special", false);
    if (impl.added_by_content.count(token.content)) {
      r.fail(JsonReader::join(path, "content"), in_quotes(token.content) + " appears twice in added_tokens");
    }
    if (impl.added_by_id.count(token.id))
      r.fail(JsonReader::join(path, "id"), "repeats id " + std::to_string(token.id));
    const auto in_vocab = impl.vocab.find(token.content);
    if (in_vocab != impl.vocab.end() && in_vocab->second != token.id) {
      r.fail(JsonReader::join(path, "id"), std::to_string(token.id) + " differs from model.vocab's id " +
                                               std::to_string(in_vocab->second) + " for " + in_quotes(token.content));
    }
    const auto owner = impl.vocab_by_id.find(token.id);
    if (owner != impl.vocab_by_id.end() && owner->second != token.content) {
      r.fail(JsonReader::join(path, "id"), std::to_string(token.id) + " of " + in_quotes(token.content) +
                                               " belongs to " + in_quotes(owner->second) + " in model.vocab");
    }
    if (find_invalid_utf8(token.content) != std::string::npos) {
      r.fail(JsonReader::join(path, "content"), "is not valid UTF-8");
    }
    token.match = token.normalized && impl.lowercase_normalizer ? lowercase(token.content) : token.content;
    impl.added_by_content.emplace(token.content, impl.added.size());
    impl.added_by_id.emplace(token.id, impl.added.size());
    impl.added.push_back(std::move(token));
  }
  for (uint32_t k = 0; k < impl.added.size(); ++k) {
    const AddedToken& token = impl.added[k];
    auto& candidates = token.normalized ? impl.normalized_candidates : impl.raw_candidates;
    (token.normalized ? impl.has_normalized_added : impl.has_raw_added) = true;
    candidates[static_cast<unsigned char>(token.match[0])].push_back(k);
  }
  for (auto* table : {&impl.raw_candidates, &impl.normalized_candidates}) {
    for (auto& candidates : *table) {
      std::stable_sort(candidates.begin(), candidates.end(),
                       [&](uint32_t a, uint32_t b) { return impl.added[a].match.size() > impl.added[b].match.size(); });
    }
  }
}

void parse_tokenizer(const JsonReader& r, const Json& root, Impl& impl) {
  const Json& model = r.at(root, "", "model");
  const std::string model_type = r.type(model, "model");
  if (model_type == "BPE") {
    parse_bpe(r, model, impl);
  } else if (model_type == "WordLevel") {
    parse_word_level(r, model, impl);
  } else {
    r.unsupported_type("model", model_type);
  }
  const auto section = [&](const char* key) -> const Json& {
    static const Json kNull;
    const Json* node = r.find(root, "", key);
    return node == nullptr ? kNull : *node;
  };
  parse_normalizer(r, section("normalizer"), "normalizer", impl);
  parse_pre_tokenizer(r, section("pre_tokenizer"), "pre_tokenizer", impl);
  parse_added_tokens(r, root, impl);
  parse_post_processor(r, section("post_processor"), "post_processor", impl);
  parse_decoder(r, section("decoder"), "decoder", impl);

  for (const AddedToken& token : impl.added) impl.vocab_size = std::max(impl.vocab_size, token.id + 1);

  const Json& padding = section("padding");
  if (!padding.is_null()) {
    r.require_object(padding, "padding");
    impl.pad_id = r.id(r.at(padding, "padding", "pad_id"), "padding.pad_id");
  } else {
    impl.pad_id = 0;
    for (const char* name : {"[PAD]", "<pad>", "<|pad|>", "<|endoftext|>"}) {
      const auto added = impl.added_by_content.find(name);
      if (added != impl.added_by_content.end()) {
        impl.pad_id = impl.added[added->second].id;
        break;
      }
      const auto in_vocab = impl.vocab.find(name);
      if (in_vocab != impl.vocab.end()) {
        impl.pad_id = in_vocab->second;
        break;
      }
    }
  }
}

}  // namespace

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

Tokenizer Tokenizer::from_json(const std::string& json_text, const std::string& source_name) {
  const Json root = parse_json_object(json_text, source_name);
  const JsonReader r(source_name);

  auto impl = std::make_shared<Impl>();
  impl->source = source_name;
  try {
    parse_tokenizer(r, root, *impl);
  } catch (const Json::exception& e) {  // a value of an unexpected JSON type that slipped past the checks
    throw Error(source_name + ": " + e.what());
  }
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::load(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw Error(path + ": cannot open the tokenizer file");
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) throw Error(path + ": cannot read the tokenizer file");
  return from_json(text.str(), path);
}

std::vector<int64_t> Tokenizer::encode(const std::string& text, bool add_special_tokens) const {
  const Impl& impl = *impl_;
  const size_t invalid = find_invalid_utf8(text);
  if (invalid != std::string::npos) {
    throw Error(impl.source + ": the text to encode is not valid UTF-8 (byte " + std::to_string(invalid) + ")");
  }
  std::vector<int64_t> ids;
  std::vector<std::string> words;
  for (const Impl::Segment& segment : impl.segments(text)) {
    if (segment.added_id >= 0) {
      ids.push_back(segment.added_id);
      continue;
    }
    words.clear();
    impl.pre_tokenize_into(segment.text, words);
    for (const std::string& word : words) impl.model_tokenize(word, ids);
  }
  return add_special_tokens ? post_process(ids) : ids;
}

std::vector<int64_t> Tokenizer::post_process(const std::vector<int64_t>& ids) const {
  std::vector<int64_t> out = ids;
  for (const Template& t : impl_->templates) {
    std::vector<int64_t> next = t.before;
    next.insert(next.end(), out.begin(), out.end());
    next.insert(next.end(), t.after.begin(), t.after.end());
    out.swap(next);
  }
  return out;
}

int Tokenizer::num_special_tokens_to_add() const {
  size_t n = 0;
  for (const Template& t : impl_->templates) n += t.before.size() + t.after.size();
  return static_cast<int>(n);
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  const Impl& impl = *impl_;
  std::string out;
  bool first = true;
  for (const int64_t id : ids) {
    const std::optional<std::string> token = impl.token_of(id);
    if (!token) throw Error(impl.source + ": cannot decode the unknown token id " + std::to_string(id));
    if (skip_special_tokens && is_special(id)) continue;
    if (impl.byte_level_decoder) {
      if (!byte_level_to_bytes(*token, out)) out += *token;
    } else {
      if (!first) out += ' ';
      out += *token;
    }
    first = false;
  }
  return impl.byte_level_decoder ? utf8_lossy(out) : out;
}

std::string Tokenizer::token(int64_t id) const {
  const std::optional<std::string> token = impl_->token_of(id);
  if (!token) throw Error(impl_->source + ": no token has id " + std::to_string(id));
  return *token;
}

std::string Tokenizer::piece(int64_t id) const { return decode({id}); }

std::optional<int64_t> Tokenizer::id(const std::string& token) const {
  const auto added = impl_->added_by_content.find(token);
  if (added != impl_->added_by_content.end()) return impl_->added[added->second].id;
  const auto it = impl_->vocab.find(token);
  if (it != impl_->vocab.end()) return it->second;
  return std::nullopt;
}

bool Tokenizer::is_special(int64_t id) const {
  const auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && impl_->added[it->second].special;
}

int64_t Tokenizer::vocab_size() const { return impl_->vocab_size; }
int64_t Tokenizer::pad_id() const { return impl_->pad_id; }
TokenizerModel Tokenizer::model() const { return impl_->model; }
const std::string& Tokenizer::source() const { return impl_->source; }

std::vector<std::string> Tokenizer::pre_tokenize(const std::string& text) const {
  const Impl& impl = *impl_;
  if (find_invalid_utf8(text) != std::string::npos) throw Error(impl.source + ": the text is not valid UTF-8");
  std::vector<std::string> out;
  for (const Impl::Segment& segment : impl.segments(text)) {
    if (segment.added_id >= 0) {
      out.push_back(segment.text);
    } else {
      impl.pre_tokenize_into(segment.text, out);
    }
  }
  return out;
}

std::vector<std::string> gpt2_split(const std::string& text) {
  if (find_invalid_utf8(text) != std::string::npos) throw Error("gpt2_split: the text is not valid UTF-8");
  std::vector<std::string> out;
  gpt2_split_into(text, out);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------

TokenizedText tokenize_task(const Tokenizer& tokenizer, const std::string& task, int max_length,
                            bool pad_to_max_length) {
  if (max_length < 1) throw Error("tokenize_task: max_length must be at least 1, not " + std::to_string(max_length));
  const int specials = tokenizer.num_special_tokens_to_add();
  if (max_length < specials) {
    throw Error("tokenize_task: max_length " + std::to_string(max_length) + " leaves no room for the " +
                std::to_string(specials) + " special tokens of " + tokenizer.source());
  }
  std::string text = task;
  if (text.empty() || text.back() != '\n') text += '\n';
  std::vector<int64_t> content = tokenizer.encode(text, false);
  if (content.size() > static_cast<size_t>(max_length - specials)) content.resize(max_length - specials);
  TokenizedText out;
  out.ids = tokenizer.post_process(content);
  out.mask.assign(out.ids.size(), 1);
  if (pad_to_max_length) {
    out.ids.resize(max_length, tokenizer.pad_id());
    out.mask.resize(max_length, 0);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Word-level tokenizer files.

std::string word_level_tokenizer_json(const std::vector<std::string>& words) {
  using Ordered = nlohmann::ordered_json;
  const std::string who = "word_level_tokenizer_json";
  std::unordered_set<std::string> seen(std::begin(kWordLevelSpecialTokens), std::end(kWordLevelSpecialTokens));
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& word = words[i];
    const std::string where = who + ": word " + std::to_string(i) + " " + in_quotes(word);
    if (word.empty()) throw Error(who + ": word " + std::to_string(i) + " is empty");
    if (find_invalid_utf8(word) != std::string::npos) throw Error(where + " is not valid UTF-8");
    if (!seen.insert(word).second) throw Error(where + " is a duplicate or a special token");
    if (lowercase(word) != word) throw Error(where + " is not lowercase, so the Lowercase normalizer never yields it");
    std::vector<std::string> pieces;
    whitespace_split_into(word, true, pieces);
    if (pieces.size() != 1 || pieces[0] != word) {
      throw Error(where + " is not one Whitespace piece (all word characters, or all punctuation/symbols)");
    }
  }
  Ordered added = Ordered::array();
  Ordered vocab = Ordered::object();
  int64_t next_id = 0;
  for (const char* special : kWordLevelSpecialTokens) {
    added.push_back(Ordered{{"id", next_id},
                            {"content", special},
                            {"single_word", false},
                            {"lstrip", false},
                            {"rstrip", false},
                            {"normalized", false},
                            {"special", true}});
    vocab[special] = next_id++;
  }
  for (const std::string& word : words) vocab[word] = next_id++;
  Ordered root;
  root["version"] = "1.0";
  root["truncation"] = nullptr;
  root["padding"] = nullptr;
  root["added_tokens"] = std::move(added);
  root["normalizer"] = Ordered{{"type", "Lowercase"}};
  root["pre_tokenizer"] = Ordered{{"type", "Whitespace"}};
  root["post_processor"] = nullptr;
  root["decoder"] = nullptr;
  root["model"] = Ordered{{"type", "WordLevel"}, {"vocab", std::move(vocab)}, {"unk_token", "[UNK]"}};
  return root.dump(2);
}

void write_word_level_tokenizer(const std::string& path, const std::vector<std::string>& words) {
  write_file_atomically(path, word_level_tokenizer_json(words));
}

}  // namespace vlascope
