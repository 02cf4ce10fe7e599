// Tokenizer tests. There is no `tokenizers` library here to compare against, so the tokenizer.json files are
// built in the real format with vocabularies and merges small enough that every expected id is derived by hand
// in the comments.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"
#include "policy/captions.h"
#include "policy/tokenizer.h"
#include "policy/tokenizer_unicode.h"

namespace vlascope {
namespace {

using Json = nlohmann::json;
using Ids = std::vector<int64_t>;
using Strings = std::vector<std::string>;

// UTF-8 written another way than the library's append_utf8 (continuation bytes counted first, then every 6-bit
// group from the top), so that a slip in one is not mirrored in the other.
std::string utf8(char32_t c) {
  const int extra = c < 0x80 ? 0 : c < 0x800 ? 1 : c < 0x10000 ? 2 : 3;
  const unsigned lead[] = {0x00, 0xC0, 0xE0, 0xF0};
  std::string out(1, static_cast<char>(lead[extra] | (c >> (6 * extra))));
  for (int k = extra - 1; k >= 0; --k) out += static_cast<char>(0x80 | ((c >> (6 * k)) & 0x3F));
  return out;
}

// GPT-2's byte → character table, written from its definition: the printable bytes ! … ~, ¡ … ¬, ® … ÿ stand
// for themselves; the remaining 68 bytes, in increasing order, for U+0100, U+0101, …
std::string byte_char(int b) {
  const auto printable = [](int x) { return (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174); };
  if (printable(b)) return utf8(static_cast<char32_t>(b));
  int rank = 0;
  for (int k = 0; k < b; ++k) rank += printable(k) ? 0 : 1;
  return utf8(static_cast<char32_t>(256 + rank));
}

// ---------------------------------------------------------------------------------------------------------------
// The byte-level BPE test tokenizer, laid out like SmolLM2's: special tokens first (ids 0-2), then the 256 byte
// characters (id = 3 + byte), then one token per merge (ids 259 …, in merge order).

constexpr int64_t kEndOfText = 0, kImStart = 1, kImEnd = 2;
int64_t byte_id(unsigned char b) { return 3 + b; }

struct MergeSpec {
  const char* left;
  const char* right;
};
// "é" is C3 A9 → "Ã©"; "日" is E6 97 A5 → "æĹ¥"; "本" is E6 9C AC → "æľ¬" (0x97 → Ĺ and 0x9C → ľ are remapped
// control bytes; the rest are printable Latin-1).
const MergeSpec kMerges[] = {
    {"Ġ", "h"},      // 259 Ġh
    {"i", "g"},      // 260 ig
    {"ig", "h"},     // 261 igh
    {"Ġh", "igh"},   // 262 Ġhigh
    {"Ġ", "c"},      // 263 Ġc
    {"u", "b"},      // 264 ub
    {"Ġc", "ub"},    // 265 Ġcub
    {"Ġcub", "e"},   // 266 Ġcube
    {"Ã", "©"},      // 267 Ã© (é)
    {"c", "a"},      // 268 ca
    {"ca", "f"},     // 269 caf
    {"caf", "Ã©"},   // 270 cafÃ© (café)
    {"æ", "Ĺ"},      // 271 æĹ
    {"æĹ", "¥"},     // 272 æĹ¥ (日)
    {"æ", "ľ"},      // 273 æľ
    {"æľ", "¬"},     // 274 æľ¬ (本)
    {"æĹ¥", "æľ¬"},  // 275 æĹ¥æľ¬ (日本)
    {"Ġ", "Ġ"},      // 276 ĠĠ
};
constexpr int64_t kHigh = 262, kCube = 266, kE = 267, kCafe = 270, kNihon = 275, kTwoSpaces = 276;
constexpr int64_t kMergedCount = 18;

struct ByteLevelOptions {
  bool array_merges = false;  // ["a","b"] (tokenizers >= 0.20) instead of "a b"
  Json post_processor = nullptr;
  Json normalizer = nullptr;
  Json extra_added = Json::array();  // appended to added_tokens
  Json padding = nullptr;
};

Json added_token(int64_t id, const std::string& content, bool special, bool lstrip = false, bool rstrip = false,
                 bool single_word = false, bool normalized = false) {
  return {{"id", id},         {"content", content},       {"single_word", single_word}, {"lstrip", lstrip},
          {"rstrip", rstrip}, {"normalized", normalized}, {"special", special}};
}

Json byte_level_json(const ByteLevelOptions& options = {}) {
  Json vocab = Json::object();
  vocab["<|endoftext|>"] = kEndOfText;
  vocab["<|im_start|>"] = kImStart;
  vocab["<|im_end|>"] = kImEnd;
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = byte_id(static_cast<unsigned char>(b));
  Json merges = Json::array();
  int64_t next = 259;
  for (const MergeSpec& m : kMerges) {
    vocab[std::string(m.left) + m.right] = next++;
    if (options.array_merges) {
      merges.push_back(Json::array({m.left, m.right}));
    } else {
      merges.push_back(std::string(m.left) + " " + m.right);
    }
  }
  Json added = Json::array({added_token(kEndOfText, "<|endoftext|>", true), added_token(kImStart, "<|im_start|>", true),
                            added_token(kImEnd, "<|im_end|>", true)});
  for (const Json& token : options.extra_added) added.push_back(token);
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", options.padding},
          {"added_tokens", added},
          {"normalizer", options.normalizer},
          {"pre_tokenizer",
           {{"type", "Sequence"},
            {"pretokenizers",
             {{{"type", "Digits"}, {"individual_digits", true}},
              {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}}}}},
          {"post_processor", options.post_processor},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"ignore_merges", false},
            {"vocab", vocab},
            {"merges", merges}}}};
}

Tokenizer byte_level(const ByteLevelOptions& options = {}) {
  return Tokenizer::from_json(byte_level_json(options).dump(), "test_tokenizer.json");
}

Json template_processing(const std::vector<Json>& single) {
  return {{"type", "TemplateProcessing"},
          {"single", single},
          {"pair", Json::array()},
          {"special_tokens",
           {{"<|im_start|>", {{"id", "<|im_start|>"}, {"ids", {kImStart}}, {"tokens", {"<|im_start|>"}}}},
            {"<|im_end|>", {{"id", "<|im_end|>"}, {"ids", {kImEnd}}, {"tokens", {"<|im_end|>"}}}}}}};
}
const Json kBos = {{"SpecialToken", {{"id", "<|im_start|>"}, {"type_id", 0}}}};
const Json kEos = {{"SpecialToken", {{"id", "<|im_end|>"}, {"type_id", 0}}}};
const Json kSequenceA = {{"Sequence", {{"id", "A"}, {"type_id", 0}}}};

Ids bytes_of(const std::string& s) {
  Ids ids;
  for (const char c : s) ids.push_back(byte_id(static_cast<unsigned char>(c)));
  return ids;
}

Ids concat(std::initializer_list<Ids> parts) {
  Ids out;
  for (const Ids& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// A small tokenizer.json with a hand-made vocabulary and no pre-tokenizer: one word = the whole text.
Tokenizer plain_bpe(const Json& vocab, const Json& merges, const Json& model_extra = Json::object()) {
  Json model = {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}};
  model.update(model_extra);
  const Json root = {{"version", "1.0"}, {"model", model}};
  return Tokenizer::from_json(root.dump(), "plain.json");
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string temp_path(const std::string& name) {
  return std::string(VLASCOPE_BINARY_DIR) + "/tests/test_tokenizer_" + name;
}

// ---------------------------------------------------------------------------------------------------------------

TEST(Gpt2Split, ByteTableMatchesKnownCharacters) {
  EXPECT_EQ(byte_char(' '), "Ġ");
  EXPECT_EQ(byte_char('\n'), "Ċ");
  EXPECT_EQ(byte_char(0), "Ā");
  EXPECT_EQ(byte_char(0xAD), "Ń");  // soft hyphen, the last remapped byte
  EXPECT_EQ(byte_char('a'), "a");
  EXPECT_EQ(byte_char(0xFF), "ÿ");
  const Tokenizer tokenizer = byte_level();
  for (int b = 0; b < 256; ++b) EXPECT_EQ(tokenizer.token(byte_id(static_cast<unsigned char>(b))), byte_char(b));
  EXPECT_EQ(tokenizer.pre_tokenize(" \n"), (Strings{"ĠĊ"}));
}

TEST(Gpt2Split, Contractions) {
  EXPECT_EQ(gpt2_split("I'm here, you're 'not' ok?'s"),
            (Strings{"I", "'m", " here", ",", " you", "'re", " '", "not", "'", " ok", "?'", "s"}));
  EXPECT_EQ(gpt2_split("don't we'll they've I'd"), (Strings{"don", "'t", " we", "'ll", " they", "'ve", " I", "'d"}));
  EXPECT_EQ(gpt2_split("'S"), (Strings{"'", "S"}));  // case-sensitive, as the regex has no (?i)
}

TEST(Gpt2Split, Whitespace) {
  EXPECT_EQ(gpt2_split("a   b"), (Strings{"a", "  ", " b"}));  // \s+(?!\S) leaves the last space to " b"
  EXPECT_EQ(gpt2_split("hello  "), (Strings{"hello", "  "}));  // trailing whitespace stays one piece
  EXPECT_EQ(gpt2_split("a b"), (Strings{"a", " b"}));
  EXPECT_EQ(gpt2_split("line\n"), (Strings{"line", "\n"}));
  EXPECT_EQ(gpt2_split("a\nb"), (Strings{"a", "\n", "b"}));  // only ' ' joins the next word
  EXPECT_EQ(gpt2_split("a\n\nb"), (Strings{"a", "\n", "\n", "b"}));
  EXPECT_EQ(gpt2_split("a \n b"), (Strings{"a", " \n", " b"}));
  EXPECT_EQ(gpt2_split("a\xC2\xA0"
                       "b"),
            (Strings{"a", "\xC2\xA0", "b"}));  // NBSP is \s but not ' '
  EXPECT_EQ(gpt2_split("x\xE3\x80\x80\xE3\x80\x80y"), (Strings{"x", "\xE3\x80\x80", "\xE3\x80\x80", "y"}));
  EXPECT_EQ(gpt2_split("   "), (Strings{"   "}));
  EXPECT_EQ(gpt2_split(""), (Strings{}));
}

TEST(Gpt2Split, PunctuationAndNumbers) {
  EXPECT_EQ(gpt2_split("wait...!!! ok"), (Strings{"wait", "...!!!", " ok"}));
  EXPECT_EQ(gpt2_split("$100.50"), (Strings{"$", "100", ".", "50"}));
  EXPECT_EQ(gpt2_split("x2 2x"), (Strings{"x", "2", " 2", "x"}));
  EXPECT_EQ(gpt2_split(" - ("), (Strings{" -", " ("}));
}

TEST(Gpt2Split, UnicodeLettersAndNumbers) {
  // ï is a letter; Arabic-Indic digits are Nd; Ⅻ (U+216B) is Nl; CJK ideographs are letters (Lo).
  EXPECT_EQ(gpt2_split("naïve ١٢٣ Ⅻ日本"), (Strings{"naïve", " ١٢٣", " Ⅻ", "日本"}));
  // A combining accent (U+0301, Mn) is neither letter nor number: "é" written as e + U+0301 splits.
  EXPECT_EQ(gpt2_split("e\xCC\x81"), (Strings{"e", "\xCC\x81"}));
  // Emoji and their skin-tone modifiers are symbols.
  EXPECT_EQ(gpt2_split("hi \xF0\x9F\x91\x8B\xF0\x9F\x8F\xBD!"), (Strings{"hi", " \xF0\x9F\x91\x8B\xF0\x9F\x8F\xBD!"}));
  EXPECT_THROW(gpt2_split("bad \xFF"), Error);
}

TEST(UnicodeTables, SpotChecks) {
  EXPECT_TRUE(unicode::is_letter(U'é'));
  EXPECT_TRUE(unicode::is_letter(U'日'));
  EXPECT_TRUE(unicode::is_letter(U'ß'));
  EXPECT_FALSE(unicode::is_letter(U'½'));
  EXPECT_TRUE(unicode::is_number(U'½'));       // No
  EXPECT_TRUE(unicode::is_number(U'Ⅻ'));       // Nl
  EXPECT_TRUE(unicode::is_number(U'\u0663'));  // Arabic-Indic three, Nd
  EXPECT_FALSE(unicode::is_number(U'x'));
  EXPECT_TRUE(unicode::is_space(U'\u3000'));
  EXPECT_TRUE(unicode::is_space(U'\u00A0'));
  EXPECT_TRUE(unicode::is_space(U'\u0085'));
  EXPECT_FALSE(unicode::is_space(U'\u200B'));  // zero-width space is not White_Space
  EXPECT_FALSE(unicode::is_space(U'\u001C'));  // Python's str.isspace() says yes; White_Space says no
  EXPECT_TRUE(unicode::is_word(U'\u0301'));    // marks are \w
  EXPECT_TRUE(unicode::is_word(U'\u24B6'));    // Ⓐ: Other_Alphabetic
  EXPECT_FALSE(unicode::is_word(U'-'));
  char32_t out[3];
  ASSERT_EQ(unicode::lowercase(U'Ä', out), 1);
  EXPECT_EQ(out[0], U'ä');
  ASSERT_EQ(unicode::lowercase(U'\u0100', out), 1);  // Ā → ā: a stride-2 run
  EXPECT_EQ(out[0], U'\u0101');
  ASSERT_EQ(unicode::lowercase(U'\u0101', out), 1);  // already lowercase
  EXPECT_EQ(out[0], U'\u0101');
  ASSERT_EQ(unicode::lowercase(U'\u0130', out), 2);  // İ → i + combining dot
  EXPECT_EQ(out[0], U'i');
  EXPECT_EQ(out[1], U'\u0307');
  ASSERT_EQ(unicode::lowercase(U'\U00010400', out), 1);  // Deseret, outside the BMP
  EXPECT_EQ(out[0], U'\U00010428');
}

// ---------------------------------------------------------------------------------------------------------------

TEST(ByteLevelBpe, EnglishWordsUseTheSpaceMarker) {
  const Tokenizer tokenizer = byte_level();
  EXPECT_EQ(tokenizer.model(), TokenizerModel::kBpe);
  // "the" has no merges: t h e. " high": Ġ h i g h → Ġh (rank 0), ig (1), igh (2), Ġhigh (3).
  // " cube": Ġ c u b e → Ġc (4), ub (5), Ġcub (6), Ġcube (7).
  EXPECT_EQ(tokenizer.encode("the high cube"), concat({bytes_of("the"), {kHigh, kCube}}));
  EXPECT_EQ(tokenizer.pre_tokenize("the high cube"), (Strings{"the", "Ġhigh", "Ġcube"}));
  EXPECT_EQ(tokenizer.token(kHigh), "Ġhigh");
  EXPECT_EQ(tokenizer.piece(kHigh), " high");
  EXPECT_EQ(tokenizer.id("Ġcube"), kCube);
  EXPECT_EQ(tokenizer.id("no such token"), std::nullopt);
  // "high" without the space is a different word: h i g h → h ig → h igh (no "h igh" merge).
  EXPECT_EQ(tokenizer.encode("high"), (Ids{byte_id('h'), 261}));
  EXPECT_EQ(tokenizer.vocab_size(), 3 + 256 + kMergedCount);
}

TEST(ByteLevelBpe, MultiByteCharacters) {
  const Tokenizer tokenizer = byte_level();
  // "café": c a f Ã © → Ã© (rank 8) before ca (9), then caf (10), café (11). " 日本": Ġ then æ Ĺ ¥ æ ľ ¬ →
  // æĹ (12), æĹ¥ (13), æľ (14), æľ¬ (15), 日本 (16); "Ġ æĹ¥æľ¬" has no merge.
  EXPECT_EQ(tokenizer.encode("café 日本"), (Ids{kCafe, byte_id(' '), kNihon}));
  EXPECT_EQ(tokenizer.encode("é"), (Ids{kE}));
  EXPECT_EQ(tokenizer.piece(kNihon), "日本");
  EXPECT_EQ(tokenizer.piece(kE), "é");
  // Half a character decodes as U+FFFD (like Rust's from_utf8_lossy); both halves decode to the character.
  EXPECT_EQ(tokenizer.piece(byte_id(0xC3)), "\xEF\xBF\xBD");
  EXPECT_EQ(tokenizer.decode({byte_id(0xC3), byte_id(0xA9)}), "é");
  EXPECT_EQ(tokenizer.decode({byte_id(0xE6), byte_id(0x97)}), "\xEF\xBF\xBD");  // one maximal subpart
  EXPECT_EQ(tokenizer.decode({byte_id(0xFF), byte_id('a')}),
            "\xEF\xBF\xBD"
            "a");
}

TEST(ByteLevelBpe, DigitsAreSplitIndividually) {
  const Tokenizer tokenizer = byte_level();
  // Digits runs first: "pick ", "1", "2", " cubes"; then ByteLevel: "pick" + "Ġ" (trailing space), and
  // " cubes" → Ġcube s. So a number never merges with the space before it.
  EXPECT_EQ(tokenizer.pre_tokenize("pick 12 cubes"), (Strings{"pick", "Ġ", "1", "2", "Ġcubes"}));
  EXPECT_EQ(tokenizer.encode("pick 12 cubes"), concat({bytes_of("pick "), bytes_of("12"), {kCube}, bytes_of("s")}));
  EXPECT_EQ(tokenizer.pre_tokenize("2024"), (Strings{"2", "0", "2", "4"}));
  EXPECT_EQ(tokenizer.pre_tokenize("x½"), (Strings{"x", "Â½"}));  // ½ is \p{N}: its own piece
}

TEST(ByteLevelBpe, SpecialTokenInTheMiddleOfText) {
  const Tokenizer tokenizer = byte_level();
  EXPECT_EQ(tokenizer.encode("a<|im_start|>b"), (Ids{byte_id('a'), kImStart, byte_id('b')}));
  // The text around an added token is pre-tokenized on its own: "x " → x Ġ; "\n" → Ċ.
  EXPECT_EQ(tokenizer.encode("x <|im_end|>\n"), (Ids{byte_id('x'), byte_id(' '), kImEnd, byte_id('\n')}));
  EXPECT_EQ(tokenizer.encode("<|im_start|><|im_end|>"), (Ids{kImStart, kImEnd}));
  EXPECT_EQ(tokenizer.encode("<|im_start"), bytes_of("<|im_start"));  // incomplete: plain text
  EXPECT_TRUE(tokenizer.is_special(kImStart));
  EXPECT_FALSE(tokenizer.is_special(kHigh));
  const Ids ids = tokenizer.encode("<|im_start|>the high<|im_end|>");
  EXPECT_EQ(tokenizer.decode(ids), "<|im_start|>the high<|im_end|>");
  EXPECT_EQ(tokenizer.decode(ids, true), "the high");
  EXPECT_EQ(tokenizer.pad_id(), kEndOfText);  // no padding section: "<|endoftext|>" is the fallback
}

TEST(ByteLevelBpe, AddedTokenOptions) {
  ByteLevelOptions options;
  options.extra_added = Json::array(
      {added_token(300, "<mask>", false, /*lstrip=*/true, /*rstrip=*/true), added_token(301, "<nostrip>", false),
       added_token(302, "[W]", false, false, false, /*single_word=*/true), added_token(303, "<x>", false),
       added_token(304, "<x>y", false), added_token(305, "\xE2\x98\xBA", false)});  // ☺, not a byte character
  const Tokenizer tokenizer = byte_level(options);
  EXPECT_EQ(tokenizer.vocab_size(), 306);
  // lstrip/rstrip swallow the spaces on both sides.
  EXPECT_EQ(tokenizer.encode("a  <mask>  b"), (Ids{byte_id('a'), 300, byte_id('b')}));
  // Without them: "a  " → a ĠĠ; "  b" → "Ġ" "Ġb" (\s+(?!\S)), and there is no "Ġ b" merge.
  EXPECT_EQ(tokenizer.encode("a  <nostrip>  b"),
            (Ids{byte_id('a'), kTwoSpaces, 301, byte_id(' '), byte_id(' '), byte_id('b')}));
  // single_word: only between non-word characters.
  EXPECT_EQ(tokenizer.encode("x [W] y"), (Ids{byte_id('x'), byte_id(' '), 302, byte_id(' '), byte_id('y')}));
  EXPECT_EQ(tokenizer.encode("x[W]y"), bytes_of("x[W]y"));
  EXPECT_EQ(tokenizer.encode("[W],"), (Ids{302, byte_id(',')}));
  // Longest match first.
  EXPECT_EQ(tokenizer.encode("<x>y<x>"), (Ids{304, 303}));
  // An added token whose characters are outside the byte table decodes to its own text.
  EXPECT_EQ(tokenizer.encode("\xE2\x98\xBA"), (Ids{305}));
  EXPECT_EQ(tokenizer.decode({byte_id('a'), 305}), "a\xE2\x98\xBA");
  EXPECT_EQ(tokenizer.piece(300), "<mask>");
}

TEST(ByteLevelBpe, NormalizedAddedTokensMatchAfterLowercase) {
  ByteLevelOptions options;
  options.normalizer = {{"type", "Sequence"}, {"normalizers", Json::array({{{"type", "Lowercase"}}})}};
  options.extra_added = Json::array(
      {added_token(300, "Robot", false, false, false, false, /*normalized=*/true), added_token(301, "<X>", false)});
  const Tokenizer tokenizer = byte_level(options);
  // "A ROBOT" → "a robot" → "a " + the token ("robot" = lowercase of "Robot"); "<X>" is matched in the raw text.
  EXPECT_EQ(tokenizer.encode("A ROBOT<X>"), (Ids{byte_id('a'), byte_id(' '), 300, 301}));
  EXPECT_EQ(tokenizer.encode("THE HIGH"), concat({bytes_of("the"), {kHigh}}));
  EXPECT_EQ(tokenizer.encode("<x>"), bytes_of("<x>"));  // the raw-text token is case-sensitive
}

TEST(ByteLevelBpe, BothMergeSpellingsGiveTheSameTokenizer) {
  ByteLevelOptions strings, arrays;
  arrays.array_merges = true;
  ASSERT_TRUE(byte_level_json(arrays)["model"]["merges"][0].is_array());
  ASSERT_TRUE(byte_level_json(strings)["model"]["merges"][0].is_string());
  const Tokenizer a = byte_level(strings), b = byte_level(arrays);
  for (const std::string text : {"the high cube", "café 日本", "pick 12 cubes  \n", "a   b"}) {
    EXPECT_EQ(a.encode(text), b.encode(text)) << text;
  }
  EXPECT_EQ(b.encode("café 日本"), (Ids{kCafe, byte_id(' '), kNihon}));
}

TEST(ByteLevelBpe, TemplateProcessingAddsBos) {
  ByteLevelOptions options;
  options.post_processor = template_processing({kBos, kSequenceA});
  const Tokenizer tokenizer = byte_level(options);
  EXPECT_EQ(tokenizer.num_special_tokens_to_add(), 1);
  EXPECT_EQ(tokenizer.encode("the high"), concat({{kImStart}, bytes_of("the"), {kHigh}}));
  EXPECT_EQ(tokenizer.encode("the high", false), concat({bytes_of("the"), {kHigh}}));
  EXPECT_EQ(tokenizer.encode(""), (Ids{kImStart}));

  // Inside a Sequence post-processor, after ByteLevel (which changes nothing for ids), and with an EOS.
  options.post_processor = {{"type", "Sequence"},
                            {"processors",
                             {{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}},
                              template_processing({kBos, kSequenceA, kEos})}}};
  const Tokenizer both = byte_level(options);
  EXPECT_EQ(both.num_special_tokens_to_add(), 2);
  EXPECT_EQ(both.encode("é"), (Ids{kImStart, kE, kImEnd}));
  EXPECT_EQ(both.post_process({7, 8}), (Ids{kImStart, 7, 8, kImEnd}));
}

TEST(ByteLevelBpe, PaddingSectionGivesPadId) {
  ByteLevelOptions options;
  options.padding = {{"strategy", "BatchLongest"}, {"direction", "Right"}, {"pad_to_multiple_of", nullptr},
                     {"pad_id", kImEnd},           {"pad_type_id", 0},     {"pad_token", "<|im_end|>"}};
  EXPECT_EQ(byte_level(options).pad_id(), kImEnd);
}

TEST(ByteLevelBpe, RandomTextRoundTrips) {
  ByteLevelOptions options;
  options.post_processor = template_processing({kBos, kSequenceA});
  const Tokenizer tokenizer = byte_level(options);
  std::mt19937 rng(7);
  // Code points from every UTF-8 length and every class the split regex distinguishes.
  const std::vector<std::pair<char32_t, char32_t>> ranges = {
      {0x00, 0x7F},     {0x20, 0x20},     {0x30, 0x39},       {0x61, 0x7A},       {0x80, 0x24F},
      {0x300, 0x36F},   {0x660, 0x669},   {0x2000, 0x2029},   {0x3000, 0x3002},   {0x4E00, 0x4E50},
      {0xE000, 0xE010}, {0xFFF0, 0xFFFD}, {0x1F300, 0x1F64F}, {0x10000, 0x10FFFF}};
  for (int trial = 0; trial < 400; ++trial) {
    std::string text;
    const int length = std::uniform_int_distribution<int>(0, 40)(rng);
    for (int k = 0; k < length; ++k) {
      const auto& range = ranges[std::uniform_int_distribution<size_t>(0, ranges.size() - 1)(rng)];
      char32_t c = std::uniform_int_distribution<char32_t>(range.first, range.second)(rng);
      if (c >= 0xD800 && c <= 0xDFFF) c = U'x';  // surrogates are not characters
      text += utf8(c);
    }
    const Ids ids = tokenizer.encode(text);
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids.front(), kImStart);
    EXPECT_EQ(tokenizer.decode(ids, true), text) << "trial " << trial;
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(text, false)), text) << "trial " << trial;
  }
}

TEST(ByteLevelBpe, EncodesTheSameFromSeveralThreads) {
  const Tokenizer tokenizer = byte_level();
  const Strings texts = {"the high cube", "café 日本", "pick 12 cubes", "a   b", "the high cube again"};
  std::vector<Ids> expected;
  for (const std::string& t : texts) expected.push_back(byte_level().encode(t));
  std::vector<int> failures(2, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 200; ++round) {
        for (size_t k = 0; k < texts.size(); ++k) failures[t] += tokenizer.encode(texts[k]) != expected[k];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures, (std::vector<int>{0, 0}));
}

// ---------------------------------------------------------------------------------------------------------------

TEST(Bpe, MergesApplyByRankNotByPosition) {
  const Json vocab = {{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"bc", 4}};
  EXPECT_EQ(plain_bpe(vocab, {"b c", "a b"}).encode("abc"), (Ids{0, 4}));
  EXPECT_EQ(plain_bpe(vocab, {"a b", "b c"}).encode("abc"), (Ids{3, 2}));
  // After "b c" (rank 0) the queued "a b" (rank 1) is stale: the pair at its place is now (a, bc), which has its
  // own merge "a bc" (rank 2) and must not be merged as "ab".
  Json with_abc = vocab;
  with_abc["abc"] = 5;
  EXPECT_EQ(plain_bpe(with_abc, {"b c", "a b", "a bc"}).encode("abc"), (Ids{5}));
  EXPECT_EQ(plain_bpe(with_abc, {"b c", "a b", "a bc"}).encode("abcab"), (Ids{5, 3}));
}

TEST(Bpe, RepeatedPairsMergeLeftmostFirst) {
  const Json vocab = {{"a", 0}, {"aa", 1}, {"aaaa", 2}};
  const Tokenizer tokenizer = plain_bpe(vocab, {"a a", "aa aa"});
  EXPECT_EQ(tokenizer.encode("aaa"), (Ids{1, 0}));
  EXPECT_EQ(tokenizer.encode("aaaa"), (Ids{2}));
  EXPECT_EQ(tokenizer.encode("aaaaa"), (Ids{2, 0}));
  EXPECT_EQ(tokenizer.decode({2, 0}), "aaaa a");  // decoder null: tokens joined with spaces, as in `tokenizers`
}

TEST(Bpe, UnknownCharacters) {
  const Json vocab = {{"a", 0}, {"<unk>", 1}};
  EXPECT_EQ(plain_bpe(vocab, Json::array(), {{"unk_token", "<unk>"}}).encode("abca"), (Ids{0, 1, 1, 0}));
  EXPECT_EQ(plain_bpe(vocab, Json::array(), {{"unk_token", "<unk>"}, {"fuse_unk", true}}).encode("abca"),
            (Ids{0, 1, 0}));
  const std::string message = error_of([&] { plain_bpe(vocab, Json::array()).encode("ab"); });
  EXPECT_NE(message.find("plain.json"), std::string::npos) << message;
  EXPECT_NE(message.find("unk_token is null"), std::string::npos) << message;
}

TEST(Bpe, ByteFallbackAndIgnoreMerges) {
  const Json vocab = {{"a", 0}, {"<0xC3>", 1}, {"<0xA9>", 2}, {"b", 3}, {"ab", 4}};
  EXPECT_EQ(plain_bpe(vocab, Json::array(), {{"byte_fallback", true}}).encode("aé"), (Ids{0, 1, 2}));
  EXPECT_EQ(plain_bpe(vocab, Json::array()).encode("ab"), (Ids{0, 3}));
  EXPECT_EQ(plain_bpe(vocab, Json::array(), {{"ignore_merges", true}}).encode("ab"), (Ids{4}));
}

// ---------------------------------------------------------------------------------------------------------------

TEST(WordLevel, WriterRoundTrip) {
  const std::string path = temp_path("words.json");
  write_word_level_tokenizer(path, {"pick", "up", "the", "red", "cube", "."});
  const Tokenizer tokenizer = Tokenizer::load(path);
  EXPECT_EQ(tokenizer.model(), TokenizerModel::kWordLevel);
  EXPECT_EQ(tokenizer.source(), path);
  EXPECT_EQ(tokenizer.id("[PAD]"), 0);
  EXPECT_EQ(tokenizer.id("[UNK]"), 1);
  EXPECT_EQ(tokenizer.id("[BOS]"), 2);
  EXPECT_EQ(tokenizer.id("[EOS]"), 3);
  EXPECT_EQ(tokenizer.pad_id(), 0);
  EXPECT_EQ(tokenizer.vocab_size(), 10);
  EXPECT_TRUE(tokenizer.is_special(1));
  EXPECT_FALSE(tokenizer.is_special(4));
  // Lowercase, then \w+|[^\w\s]+: "cube." → "cube" "."; the newline makes no token.
  EXPECT_EQ(tokenizer.encode("Pick up the RED cube.\n"), (Ids{4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(tokenizer.encode("pick up a cube"), (Ids{4, 5, 1, 8}));
  EXPECT_EQ(tokenizer.encode("[BOS] the cube [EOS]"), (Ids{2, 6, 8, 3}));
  EXPECT_EQ(tokenizer.encode("\n"), (Ids{}));
  EXPECT_EQ(tokenizer.decode({4, 5, 1, 8}), "pick up [UNK] cube");
  EXPECT_EQ(tokenizer.decode({2, 4, 5, 1, 8, 3}, true), "pick up cube");
  EXPECT_EQ(tokenizer.piece(8), "cube");
  EXPECT_EQ(tokenizer.token(0), "[PAD]");
  std::remove(path.c_str());
}

TEST(WordLevel, WriterUsesTheTokenizersLayout) {
  const auto root = nlohmann::ordered_json::parse(word_level_tokenizer_json({"low", "high"}));
  Strings keys;
  for (auto it = root.begin(); it != root.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (Strings{"version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer",
                           "post_processor", "decoder", "model"}));
  EXPECT_EQ(root["version"], "1.0");
  EXPECT_TRUE(root["truncation"].is_null());
  EXPECT_TRUE(root["padding"].is_null());
  EXPECT_TRUE(root["post_processor"].is_null());
  EXPECT_TRUE(root["decoder"].is_null());
  EXPECT_EQ(root["normalizer"], nlohmann::ordered_json({{"type", "Lowercase"}}));
  EXPECT_EQ(root["pre_tokenizer"], nlohmann::ordered_json({{"type", "Whitespace"}}));
  ASSERT_EQ(root["added_tokens"].size(), 4u);
  Strings token_keys;
  for (auto it = root["added_tokens"][1].begin(); it != root["added_tokens"][1].end(); ++it) {
    token_keys.push_back(it.key());
  }
  EXPECT_EQ(token_keys, (Strings{"id", "content", "single_word", "lstrip", "rstrip", "normalized", "special"}));
  EXPECT_EQ(root["added_tokens"][1]["content"], "[UNK]");
  EXPECT_EQ(root["added_tokens"][1]["special"], true);
  EXPECT_EQ(root["added_tokens"][1]["normalized"], false);
  const auto& model = root["model"];
  Strings model_keys, vocab_keys;
  for (auto it = model.begin(); it != model.end(); ++it) model_keys.push_back(it.key());
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) vocab_keys.push_back(it.key());
  EXPECT_EQ(model_keys, (Strings{"type", "vocab", "unk_token"}));
  EXPECT_EQ(vocab_keys, (Strings{"[PAD]", "[UNK]", "[BOS]", "[EOS]", "low", "high"}));  // in id order
  EXPECT_EQ(model["vocab"]["high"], 5);
  EXPECT_EQ(model["unk_token"], "[UNK]");
}

TEST(WordLevel, WriterRejectsWordsTheTokenizerCouldNeverProduce) {
  const auto fails = [](const Strings& words, const std::string& part) {
    const std::string message = error_of([&] { word_level_tokenizer_json(words); });
    EXPECT_NE(message.find(part), std::string::npos) << message;
  };
  fails({"cube", "cube"}, "word 1 \"cube\" is a duplicate");
  fails({"[UNK]"}, "word 0 \"[UNK]\"");
  fails({"Red"}, "not lowercase");
  fails({"red cube"}, "not one Whitespace piece");
  fails({"cube."}, "not one Whitespace piece");
  fails({""}, "word 0 is empty");
  fails({"\xFF"}, "not valid UTF-8");
  const std::string message =
      error_of([] { write_word_level_tokenizer("/nonexistent-directory/tokenizer.json", {"a"}); });
  EXPECT_NE(message.find("/nonexistent-directory/tokenizer.json"), std::string::npos) << message;
}

TEST(WordLevel, WhitespaceSplitVariant) {
  const Json root = {
      {"version", "1.0"},
      {"pre_tokenizer", {{"type", "WhitespaceSplit"}}},
      {"model", {{"type", "WordLevel"}, {"vocab", {{"<unk>", 0}, {"a", 1}, {"b.", 2}}}, {"unk_token", "<unk>"}}}};
  const Tokenizer tokenizer = Tokenizer::from_json(root.dump(), "ws.json");
  // No normalizer: case matters; WhitespaceSplit keeps punctuation attached.
  EXPECT_EQ(tokenizer.encode(" a\tb.\n A "), (Ids{1, 2, 0}));
}

TEST(WordLevel, EveryCaptionWordHasItsOwnId) {
  const std::string path = temp_path("captions.json");
  write_word_level_tokenizer(path, caption_vocabulary());
  const Tokenizer tokenizer = Tokenizer::load(path);
  const int64_t unk = *tokenizer.id("[UNK]");
  EXPECT_EQ(tokenizer.vocab_size(), static_cast<int64_t>(caption_vocabulary().size()) + 4);
  for (const std::string& word : caption_vocabulary()) {
    const Ids ids = tokenizer.encode(word);
    ASSERT_EQ(ids.size(), 1u) << word;
    EXPECT_NE(ids[0], unk) << word;
    EXPECT_EQ(tokenizer.id(word), ids[0]) << word;
  }
  const std::string caption =
      "the red cube is on the left near the robot . the gripper is low and open . the cube is on the table . "
      "the arm moves down slowly . the robot reaches for the cube .";
  const Ids ids = tokenizer.encode(caption);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), unk), 0);
  EXPECT_EQ(tokenizer.decode(ids), caption);
  std::remove(path.c_str());
}

namespace {

// Two frames of an episode: the cube resting at (x, y), the jaw centre at (ex, ey, ez), moving down slowly.
std::vector<Frame> cube_episode(float x, float y, float ex, float ey, float ez) {
  std::vector<Frame> frames(2);
  for (int i = 0; i < 2; ++i) {
    frames[i].timestamp = i / 30.0;
    frames[i].object_position = {x, y, 0.0125f};
    frames[i].ee_position = {ex, ey, ez - 0.001f * i};
    frames[i].state[5] = 80;  // open
    frames[i].phase = Phase::kReach;
  }
  return frames;
}

}  // namespace

TEST(Captions, SayWhereTheCubeIsAndWhereTheGripperMustGo) {
  EpisodeInfo info;
  info.scalars = {{"cube_r", 0.9}, {"cube_g", 0.1}, {"cube_b", 0.1}};
  const double pan_y = CaptionThresholds{}.pan_axis_y;
  // Straight ahead at 21.5 cm from the pan axis, the gripper 10 cm nearer the base: "ahead of the gripper".
  std::string c = caption_frame(info, cube_episode(0, pan_y - 0.215, 0, pan_y - 0.11, 0.1), 0);
  EXPECT_NE(c.find("the red cube is in the centre and distant ."), std::string::npos) << c;
  EXPECT_NE(c.find("the cube is ahead of the gripper ."), std::string::npos) << c;
  EXPECT_NE(c.find("the gripper is in the middle and open ."), std::string::npos) << c;
  // 0.3 rad to the robot's left (+x), very close; the gripper right of it.
  const double az = 0.3, r = 0.17;
  c = caption_frame(info, cube_episode(r * std::sin(az), pan_y - r * std::cos(az), 0, pan_y - r, 0.1), 0);
  EXPECT_NE(c.find("cube is on the far left and very close ."), std::string::npos) << c;
  EXPECT_NE(c.find("the cube is left of the gripper ."), std::string::npos) << c;
  // −0.1 rad (slightly right), the gripper right above it.
  c = caption_frame(info, cube_episode(0.23 * std::sin(-0.1), pan_y - 0.23 * std::cos(-0.1), 0.23 * std::sin(-0.1),
                                       pan_y - 0.23 * std::cos(-0.1), 0.03), 0);
  EXPECT_NE(c.find("cube is slightly right and very distant ."), std::string::npos) << c;
  EXPECT_NE(c.find("the gripper is over the cube ."), std::string::npos) << c;
  EXPECT_NE(c.find("the gripper is low"), std::string::npos) << c;
  // Every word of every caption is in the tokenizer's vocabulary.
  const Tokenizer tokenizer = Tokenizer::from_json(word_level_tokenizer_json(caption_vocabulary()), "captions");
  const int64_t unk = *tokenizer.id("[UNK]");
  for (double a = -0.5; a <= 0.5; a += 0.05)
    for (double d = 0.15; d <= 0.27; d += 0.01) {
      const std::string text =
          caption_frame(info, cube_episode(d * std::sin(a), pan_y - d * std::cos(a), 0.05, pan_y - 0.2, 0.2), 1);
      const Ids ids = tokenizer.encode(text);
      EXPECT_EQ(std::count(ids.begin(), ids.end(), unk), 0) << text;
    }
}

namespace {

std::vector<std::string> words_of(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

bool names_any(const std::string& text, const std::vector<std::string>& words) {
  for (const std::string& w : words_of(text))
    if (std::find(words.begin(), words.end(), w) != words.end()) return true;
  return false;
}

}  // namespace

TEST(Captions, ParaphrasesVaryButStayInTheVocabulary) {
  const Strings& vocabulary = caption_vocabulary();
  EXPECT_GE(vocabulary.size(), 250u);
  EXPECT_EQ(std::set<std::string>(vocabulary.begin(), vocabulary.end()).size(), vocabulary.size());
  for (const std::string concept : {"high", "low", "fast", "slow"}) {
    EXPECT_GE(concept_words(concept).size(), 8u) << concept;
    for (const std::string& word : concept_words(concept))
      EXPECT_NE(std::find(vocabulary.begin(), vocabulary.end(), word), vocabulary.end()) << concept << ": " << word;
  }
  EXPECT_THROW(concept_words("heavy"), Error);
  const Tokenizer tokenizer = Tokenizer::from_json(word_level_tokenizer_json(vocabulary), "captions");
  const int64_t unk = *tokenizer.id("[UNK]");
  EpisodeInfo info;
  info.scalars = {{"cube_r", 0.1}, {"cube_g", 0.2}, {"cube_b", 0.9}};
  const double pan_y = CaptionThresholds{}.pan_axis_y;
  // A held cube 18 cm up, moving up fast: every sentence slot is filled, the cube's height among them.
  std::vector<Frame> held = cube_episode(0, pan_y - 0.2, 0, pan_y - 0.2, 0.2);
  held[1].object_position[2] = 0.0125f + 0.18f;  // frame 0 keeps it on the table: the rise is measured from there
  for (int i = 0; i < 2; ++i) {
    held[i].ee_position[2] = 0.2f + 0.01f * i;
    held[i].state[5] = 10;  // closed
    held[i].phase = Phase::kLift;
  }
  const std::string canonical = caption_frame(info, held, 1);
  EXPECT_NE(canonical.find("the cube is high ."), std::string::npos) << canonical;
  EXPECT_NE(canonical.find("the arm moves up fast ."), std::string::npos) << canonical;
  std::set<std::string> distinct, words_used;
  for (uint64_t p = 1; p <= 400; ++p) {
    const std::string text = caption_frame(info, held, 1, {}, p);
    EXPECT_EQ(text, caption_frame(info, held, 1, {}, p)) << "paraphrase " << p << " is not reproducible";
    const Ids ids = tokenizer.encode(text);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), unk), 0) << text;
    distinct.insert(text);
    for (const std::string& w : words_of(text)) words_used.insert(w);
  }
  EXPECT_GE(distinct.size(), 390u);  // 400 seeds, practically all different
  // The height and speed are said with several of each concept's words, not one.
  int high_words = 0, fast_words = 0;
  for (const std::string& w : concept_words("high")) high_words += words_used.count(w);
  for (const std::string& w : concept_words("fast")) fast_words += words_used.count(w);
  EXPECT_GE(high_words, 3);
  EXPECT_GE(fast_words, 3);
}

TEST(Instructions, NeutralNamesNoConceptAndVariantsNameTheirOwn) {
  const Strings& vocabulary = caption_vocabulary();
  const Tokenizer tokenizer = Tokenizer::from_json(word_level_tokenizer_json(vocabulary), "captions");
  const int64_t unk = *tokenizer.id("[UNK]");
  std::vector<std::string> all_concepts;
  for (const std::string concept : {"high", "low", "fast", "slow"})
    for (const std::string& w : concept_words(concept)) all_concepts.push_back(w);
  EXPECT_EQ(neutral_instruction(0), "pick up the cube and lift it");
  EXPECT_EQ(variant_instruction("high", 0), "pick up the cube and lift it high");
  EXPECT_EQ(variant_instruction("slow", 0), "pick up the cube and lift it slowly");
  EXPECT_THROW(variant_instruction("sideways", 3), Error);
  const std::map<std::string, std::string> opposite = {{"high", "low"}, {"low", "high"}, {"fast", "slow"},
                                                       {"slow", "fast"}};
  std::set<std::string> neutral_wordings;
  for (uint64_t p = 1; p <= 2000; ++p) {
    const std::string neutral = neutral_instruction(p);
    neutral_wordings.insert(neutral);
    EXPECT_FALSE(names_any(neutral, all_concepts)) << neutral;
    for (const auto& [variant, other] : opposite) {
      const std::string text = variant_instruction(variant, p);
      const Ids ids = tokenizer.encode(text);
      EXPECT_EQ(std::count(ids.begin(), ids.end(), unk), 0) << text;
      EXPECT_FALSE(names_any(text, concept_words(other))) << variant << ": " << text;
    }
  }
  EXPECT_GE(neutral_wordings.size(), 20u);
  // Most variant wordings use one of the concept's own words; the rest say it otherwise ("to the sky", "at once").
  for (const std::string variant : {"high", "low", "fast", "slow"}) {
    int naming = 0;
    for (uint64_t p = 1; p <= 1000; ++p) naming += names_any(variant_instruction(variant, p), concept_words(variant));
    EXPECT_GE(naming, 500) << variant;
    EXPECT_LT(naming, 1000) << variant;
  }
}

TEST(Instructions, TheMixNamesTheVariantInTheAskedFraction) {
  EpisodeInfo labelled;
  labelled.instruction = "pick up the cube and lift it";
  labelled.variant = "low";
  EpisodeInfo unlabelled = labelled;
  unlabelled.variant = "";
  const InstructionMix mix{0.67, true};
  std::set<std::string> neutral;  // every wording of the neutral task (13 frames × up to 7 nouns)
  for (uint64_t p = 0; p < 20000; ++p) neutral.insert(neutral_instruction(p));
  int named = 0, canonical = 0;
  const int n = 6000;
  for (int draw = 0; draw < n; ++draw) {
    const std::string text = training_instruction(labelled, mix, draw);
    EXPECT_EQ(text, training_instruction(labelled, mix, draw));
    named += neutral.count(text) == 0;
    canonical += text == labelled.instruction;
    EXPECT_EQ(neutral.count(training_instruction(unlabelled, mix, draw)), 1u);
  }
  // Binomial(6000, 0.67): sd 36 samples; ±150 is over 4 sd.
  EXPECT_NEAR(named, 0.67 * n, 150);
  EXPECT_LT(canonical, n / 10);  // the neutral task is paraphrased, not always the episode's text
  // Without paraphrasing, the neutral samples are the episode's own instruction; with fraction 0, all are.
  for (int draw = 0; draw < 200; ++draw) {
    EXPECT_EQ(training_instruction(labelled, InstructionMix{0, false}, draw), labelled.instruction);
    const std::string text = training_instruction(labelled, InstructionMix{0.5, false}, draw);
    EXPECT_TRUE(text == labelled.instruction || neutral.count(text) == 0) << text;
  }
}

// ---------------------------------------------------------------------------------------------------------------

TEST(TokenizeTask, AppendsNewlinePadsRightAndMasks) {
  const Tokenizer tokenizer = byte_level();
  const TokenizedText short_task = tokenize_task(tokenizer, "the high", 8, true);
  // "the high\n" → t h e Ġhigh Ċ, then 3 × pad ("<|endoftext|>" = 0).
  EXPECT_EQ(short_task.ids, concat({bytes_of("the"), {kHigh, byte_id('\n')}, {kEndOfText, kEndOfText, kEndOfText}}));
  EXPECT_EQ(short_task.mask, (std::vector<uint8_t>{1, 1, 1, 1, 1, 0, 0, 0}));
  // A task that already ends with "\n" is not given a second one.
  EXPECT_EQ(tokenize_task(tokenizer, "the high\n", 8, true).ids, short_task.ids);
  // "longest" for a single prompt: its own length.
  const TokenizedText unpadded = tokenize_task(tokenizer, "the high", 8, false);
  EXPECT_EQ(unpadded.ids, concat({bytes_of("the"), {kHigh, byte_id('\n')}}));
  EXPECT_EQ(unpadded.mask, (std::vector<uint8_t>(5, 1)));
  // Truncation cuts the end, newline included.
  const TokenizedText cut = tokenize_task(tokenizer, "the high", 3, true);
  EXPECT_EQ(cut.ids, bytes_of("the"));
  EXPECT_EQ(cut.mask, (std::vector<uint8_t>{1, 1, 1}));
}

TEST(TokenizeTask, TruncationKeepsTheTemplateTokens) {
  ByteLevelOptions options;
  options.post_processor = template_processing({kBos, kSequenceA, kEos});
  const Tokenizer tokenizer = byte_level(options);
  EXPECT_EQ(tokenize_task(tokenizer, "the", 4, true).ids, (Ids{kImStart, byte_id('t'), byte_id('h'), kImEnd}));
  const TokenizedText padded = tokenize_task(tokenizer, "é", 6, true);
  EXPECT_EQ(padded.ids, (Ids{kImStart, kE, byte_id('\n'), kImEnd, kEndOfText, kEndOfText}));
  EXPECT_EQ(padded.mask, (std::vector<uint8_t>{1, 1, 1, 1, 0, 0}));
  EXPECT_THROW(tokenize_task(tokenizer, "the", 1, true), Error);
  EXPECT_THROW(tokenize_task(tokenizer, "the", 0, false), Error);
}

TEST(TokenizeTask, WordLevelPromptIsJustItsWords) {
  const Tokenizer tokenizer =
      Tokenizer::from_json(word_level_tokenizer_json({"pick", "up", "the", "cube"}), "words.json");
  const TokenizedText text = tokenize_task(tokenizer, "Pick up the cube", 6, true);
  EXPECT_EQ(text.ids, (Ids{4, 5, 6, 7, 0, 0}));
  EXPECT_EQ(text.mask, (std::vector<uint8_t>{1, 1, 1, 1, 0, 0}));
}

// ---------------------------------------------------------------------------------------------------------------

// Expects from_json(root) to fail with a message containing `part`.
void expect_error(const Json& root, const std::string& part) {
  const std::string message = error_of([&] { Tokenizer::from_json(root.dump(), "tokenizer.json"); });
  EXPECT_NE(message.find(part), std::string::npos) << message;
}

TEST(TokenizerErrors, MalformedFiles) {
  EXPECT_NE(error_of([] { Tokenizer::from_json("{\"model\": ", "broken.json"); }).find("broken.json: not valid JSON"),
            std::string::npos);
  EXPECT_NE(error_of([] { Tokenizer::from_json("[1, 2]", "list.json"); }).find("list.json"), std::string::npos);
  // A number beyond a double's range is an Error naming the file, not an escaped library exception.
  EXPECT_NE(error_of([] { Tokenizer::from_json("{\"version\": 1e400}", "huge.json"); }).find("huge.json: not valid JSON"),
            std::string::npos);
  const std::string missing_file = error_of([] { Tokenizer::load("/nonexistent/tokenizer.json"); });
  EXPECT_NE(missing_file.find("/nonexistent/tokenizer.json"), std::string::npos) << missing_file;
  expect_error({{"version", "1.0"}}, "tokenizer.json: model is missing");
  expect_error({{"model", {{"vocab", {{"a", 0}}}}}}, "tokenizer.json: model.type is missing");
}

TEST(TokenizerErrors, UnsupportedTypesNameTheField) {
  expect_error({{"model", {{"type", "Unigram"}, {"vocab", Json::array()}}}},
               "tokenizer.json: model.type \"Unigram\" is not supported");
  Json root = byte_level_json();
  root["normalizer"] = {{"type", "NFC"}};
  expect_error(root, "tokenizer.json: normalizer.type \"NFC\" is not supported");
  root = byte_level_json();
  root["pre_tokenizer"]["pretokenizers"][1] = {{"type", "Metaspace"}};
  expect_error(root, "tokenizer.json: pre_tokenizer.pretokenizers[1].type \"Metaspace\" is not supported");
  root = byte_level_json();
  root["post_processor"] = {{"type", "RobertaProcessing"}};
  expect_error(root, "tokenizer.json: post_processor.type \"RobertaProcessing\" is not supported");
  root = byte_level_json();
  root["decoder"] = {{"type", "WordPiece"}};
  expect_error(root, "tokenizer.json: decoder.type \"WordPiece\" is not supported");
  root = byte_level_json();
  root["model"]["dropout"] = 0.1;
  expect_error(root, "tokenizer.json: model.dropout 0.1 is not supported");
  root = byte_level_json();
  root["model"]["continuing_subword_prefix"] = "##";
  expect_error(root, "model.continuing_subword_prefix \"##\" is not supported");
}

TEST(TokenizerErrors, BadVocabulariesAndMerges) {
  Json root = byte_level_json();
  root["model"].erase("vocab");
  expect_error(root, "tokenizer.json: model.vocab is missing");
  root = byte_level_json();
  root["model"]["vocab"] = Json::array();
  expect_error(root, "model.vocab must be an object");
  root = byte_level_json();
  root["model"]["vocab"]["x"] = -1;
  expect_error(root, "model.vocab[\"x\"] must be an id");
  root = byte_level_json();
  root["model"]["vocab"]["x"] = "7";
  expect_error(root, "model.vocab[\"x\"] must be an integer id");
  root = byte_level_json();
  root["model"]["vocab"]["zz"] = byte_id('a');
  expect_error(root, "gives id 100 to both");
  root = byte_level_json();
  root["model"]["merges"][0] = "Ġ zzz";
  expect_error(root, "model.merges[0] names \"zzz\", which is not in model.vocab");
  root = byte_level_json();
  root["model"]["merges"][0] = "q q";  // "qq" is not in the vocabulary
  expect_error(root, "model.merges[0] names \"qq\"");
  root = byte_level_json();
  root["model"]["merges"][2] = "igh";
  expect_error(root, "model.merges[2] \"igh\" must be two tokens separated by one space");
  root = byte_level_json();
  root["model"]["merges"][3] = Json::array({"Ġh"});
  expect_error(root, "model.merges[3] must be a \"left right\" string or a [\"left\", \"right\"] pair");
  root = byte_level_json();
  root["model"].erase("merges");
  expect_error(root, "model.merges is missing");
  expect_error({{"model", {{"type", "WordLevel"}, {"vocab", {{"a", 0}}}, {"unk_token", "[UNK]"}}}},
               "model.unk_token \"[UNK]\" is not in model.vocab");
}

TEST(TokenizerErrors, BadAddedTokensAndTemplates) {
  Json root = byte_level_json();
  root["added_tokens"][1]["id"] = 5;
  expect_error(root, "added_tokens[1].id 5 differs from model.vocab's id 1 for \"<|im_start|>\"");
  root = byte_level_json();
  root["added_tokens"].push_back(added_token(byte_id('a'), "<new>", true));
  expect_error(root, "added_tokens[3].id 100 of \"<new>\" belongs to \"a\" in model.vocab");
  root = byte_level_json();
  root["added_tokens"][0].erase("content");
  expect_error(root, "added_tokens[0].content is missing");
  root = byte_level_json();
  root["added_tokens"].push_back(added_token(400, "<|im_end|>", true));
  expect_error(root, "appears twice");
  root = byte_level_json();
  root["post_processor"] = template_processing({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, kSequenceA});
  expect_error(root, "post_processor.single[0].SpecialToken.id \"<s>\" is not in post_processor.special_tokens");
  root = byte_level_json();
  root["post_processor"] = template_processing({kBos});
  expect_error(root, "post_processor.single has no sequence $A");
  root = byte_level_json();
  root["post_processor"] = template_processing({kBos, {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}});
  expect_error(root, "post_processor.single[1].Sequence.id \"B\" must be \"A\"");
}

// Every node of a valid file (all but a few vocabulary entries) replaced in turn by values of every JSON type:
// loading either works or throws Error, and so does using what loaded. Nothing else may escape.
TEST(TokenizerErrors, AnyValueAnywhereGivesErrorOrWorks) {
  ByteLevelOptions options;
  options.post_processor = template_processing({kBos, kSequenceA});
  options.padding = {{"pad_id", 0}};
  const Json valid = byte_level_json(options);
  std::vector<Json::json_pointer> nodes;
  const std::function<void(const Json&, const Json::json_pointer&)> walk = [&](const Json& node,
                                                                               const Json::json_pointer& at) {
    nodes.push_back(at);
    if (at == Json::json_pointer("/model/vocab")) {
      for (const char* key : {"<|endoftext|>", "a", "Ġhigh"}) nodes.push_back(at / key);
      return;
    }
    if (node.is_object()) {
      for (auto it = node.begin(); it != node.end(); ++it) walk(it.value(), at / it.key());
    } else if (node.is_array()) {
      for (size_t i = 0; i < node.size(); ++i) walk(node[i], at / i);
    }
  };
  walk(valid, Json::json_pointer());
  ASSERT_GT(nodes.size(), 100u);
  const std::vector<Json> replacements = {nullptr, 7, -1, 1.5, "x", "a b", Json::array(), Json::object(), true};
  int loaded = 0, rejected = 0;
  for (const Json::json_pointer& at : nodes) {
    for (const Json& replacement : replacements) {
      Json broken = valid;
      broken[at] = replacement;
      try {
        const Tokenizer tokenizer = Tokenizer::from_json(broken.dump(), "fuzz.json");
        const Ids ids = tokenizer.encode("the high cube 12 café <|im_end|>");
        tokenizer.decode(ids);
        tokenize_task(tokenizer, "the high", 8, true);
        ++loaded;
      } catch (const Error&) {
        ++rejected;
      } catch (const std::exception& e) {
        ADD_FAILURE() << at.to_string() << " = " << replacement.dump() << ": " << e.what();
      }
    }
  }
  EXPECT_GT(loaded, 0);
  EXPECT_GT(rejected, 0);
}

TEST(TokenizerErrors, BadInputToEncodeAndDecode) {
  const Tokenizer tokenizer = byte_level();
  const std::string message = error_of([&] { tokenizer.encode("caf\xC3"); });
  EXPECT_NE(message.find("not valid UTF-8 (byte 3)"), std::string::npos) << message;
  EXPECT_THROW(tokenizer.encode("\xED\xA0\x80"), Error);  // an encoded surrogate
  EXPECT_THROW(tokenizer.decode({100000}), Error);
  EXPECT_THROW(tokenizer.decode({-1}), Error);
  EXPECT_THROW(tokenizer.token(100000), Error);
  EXPECT_THROW(tokenizer.piece(-5), Error);
}

}  // namespace
}  // namespace vlascope
