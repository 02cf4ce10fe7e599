// Tokenizers read from Hugging Face `tokenizer.json` files (the `tokenizers` library's serialisation), doing
// exactly what the file says for the two kinds vlascope uses:
//
//  - Byte-level BPE, as in SmolVLM2 / SmolLM2 (the SmolVLA backbone). Pipeline, as in `tokenizers`:
//      1. added tokens are cut out of the raw text (leftmost, then longest match; lstrip / rstrip / single_word
//         honoured). Tokens with "normalized": true are matched afterwards, in the normalized text;
//      2. the normalizer runs on the remaining pieces (null, Lowercase, or a Sequence of those);
//      3. the pre-tokenizer splits them: Digits (individual_digits), ByteLevel (the GPT-2 split regex, then
//         bytes → printable characters, so " high" becomes "Ġhigh"), Whitespace, WhitespaceSplit, or a
//         Sequence of those;
//      4. the model: BPE merges by rank, then vocabulary lookup (or WordLevel: one lookup per word);
//      5. with add_special_tokens, the post-processor (TemplateProcessing "single" adds e.g. a BOS; ByteLevel
//         and null do nothing to ids).
//    Decoding maps tokens back through the ByteLevel byte table (decoder ByteLevel), or joins tokens with
//    spaces (decoder null, the `tokenizers` default).
//
//  - WordLevel, for vlascope's own small model, written by write_word_level_tokenizer(): Lowercase normalizer,
//    Whitespace pre-tokenizer (\w+ | [^\w\s]+), unknown words → [UNK]. Whitespace — including the "\n" that
//    tokenize_task() appends, as SmolVLA does — produces no token, exactly as in `tokenizers`; so the small
//    model's prompt is just its words.
//
// Anything else in a file (another model, pre-tokenizer, normalizer, post-processor or decoder type, or a
// feature such as BPE dropout) is an Error naming the file and the JSON path, e.g.
//   tokenizer.json: model.type "Unigram" is not supported
// The file's "truncation" and "padding" sections are not applied by encode(): transformers overrides them on
// every call, and tokenize_task() truncates and pads the way SmolVLA asks. padding.pad_id only feeds pad_id().
//
// Known differences from `tokenizers`, none of which matter for SmolVLM2 or vlascope's files:
//  - Text to encode must be valid UTF-8 (Python strings always are); anything else is an Error.
//  - A character missing from a BPE vocabulary without unk_token is an Error (`tokenizers` drops it).
//  - An unknown id given to decode() is an Error (`tokenizers` skips it).
//  - added_tokens ids are taken from the file; an added token whose content is in model.vocab under another id
//    is an Error (`tokenizers` keeps the vocabulary's id and warns).
//  - Lowercase maps U+03A3 (Σ) to σ everywhere; Rust's to_lowercase writes ς at the end of a word.
//  - Unicode classes follow the Unicode version in policy/tokenizer_unicode.cpp (14.0).
//
// A Tokenizer is cheap to copy (shared, immutable state plus a thread-safe word cache) and safe to use from
// several threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace vlascope {

enum class TokenizerModel { kBpe, kWordLevel };

class Tokenizer {
 public:
  // Reads a tokenizer.json file. Error on a missing or malformed file, naming the file and the JSON path.
  static Tokenizer load(const std::string& path);
  // The same, from the file's text; source_name stands for the file in error messages.
  static Tokenizer from_json(const std::string& json_text, const std::string& source_name);

  // Token ids of text (UTF-8). With add_special_tokens, the post-processor's template is applied.
  std::vector<int64_t> encode(const std::string& text, bool add_special_tokens = true) const;
  // The post-processor's template applied to already-encoded ids ("single": [ ... $A ... ]), and how many ids it
  // adds. tokenize_task() uses these to truncate before the template, as transformers does.
  std::vector<int64_t> post_process(const std::vector<int64_t>& ids) const;
  int num_special_tokens_to_add() const;

  // Text of ids. skip_special_tokens drops added tokens marked "special". Error on an unknown id.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = false) const;

  // The vocabulary entry of id, raw (e.g. "Ġhigh"); added tokens take precedence, as in `tokenizers`.
  std::string token(int64_t id) const;
  // The human-readable text of one token (e.g. " high"): decode({id}); a token that is only part of a UTF-8
  // character shows as U+FFFD. Meant for labels in plots.
  std::string piece(int64_t id) const;
  // The id of a vocabulary entry or added token, if any.
  std::optional<int64_t> id(const std::string& token) const;
  bool is_special(int64_t id) const;  // an added token marked "special"

  int64_t vocab_size() const;  // max id + 1 over model.vocab and added_tokens
  // The padding id: padding.pad_id if the file has a padding section; else the id of the first of "[PAD]",
  // "<pad>", "<|pad|>", "<|endoftext|>" the tokenizer knows; else 0. (transformers takes SmolVLM2's pad token from
  // tokenizer_config.json instead; padded positions are masked, so the id does not change the model's output.)
  int64_t pad_id() const;
  TokenizerModel model() const;
  // The pieces the model receives for text, for inspection: added tokens as they appear, the rest after
  // normalization and pre-tokenization (for ByteLevel, in its byte characters, e.g. "Ġhigh").
  std::vector<std::string> pre_tokenize(const std::string& text) const;
  const std::string& source() const;  // the path or source_name it was read from

  struct Impl;  // defined in tokenizer.cpp

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

// The ByteLevel pre-tokenizer's split of UTF-8 text (GPT-2's regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// implemented by hand), e.g. "a   b" → "a", "  ", " b". Error if text is not valid UTF-8.
std::vector<std::string> gpt2_split(const std::string& text);

struct TokenizedText {
  std::vector<int64_t> ids;
  std::vector<uint8_t> mask;  // 1 = real token, 0 = padding
};

// SmolVLA's language preprocessing (smolvla.md §4.3): append "\n" unless the task already ends with one, encode
// with special tokens, truncate to max_length (content first, the template's special tokens kept), then, if
// pad_to_max_length (smolvla_base's "max_length"), pad on the right with pad_id() up to max_length; otherwise
// leave it at its own length ("longest" for a single prompt). Error if max_length < 1 or is too small for the
// template's special tokens.
TokenizedText tokenize_task(const Tokenizer& tokenizer, const std::string& task, int max_length,
                            bool pad_to_max_length);

// Special tokens of the word-level tokenizers vlascope writes, with their fixed ids; words follow from id 4 in
// the order given. [PAD] is also what pad_id() finds. [BOS]/[EOS] are for training code that wants to mark
// caption boundaries; encode() adds neither (post_processor null), so a prompt is just its words.
inline constexpr const char* kWordLevelSpecialTokens[] = {"[PAD]", "[UNK]", "[BOS]", "[EOS]"};

// tokenizer.json text for a word-level tokenizer over words, in the layout the `tokenizers` library writes
// (version "1.0", truncation and padding null, the special tokens as added_tokens and in model.vocab, Lowercase
// normalizer, Whitespace pre-tokenizer, decoder null), so `tokenizers.Tokenizer.from_file` can load it.
// Error if a word is empty, duplicated, a special token, not lowercase, not valid UTF-8, or not something the
// Whitespace pre-tokenizer can produce as one piece (all word characters, or all punctuation/symbols).
std::string word_level_tokenizer_json(const std::vector<std::string>& words);
// Writes word_level_tokenizer_json(words) to path (through a temporary file, so a failed write leaves no
// half-written tokenizer). Error naming the path if it cannot be written.
void write_word_level_tokenizer(const std::string& path, const std::vector<std::string>& words);

}  // namespace vlascope
