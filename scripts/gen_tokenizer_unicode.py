#!/usr/bin/env python3
"""Writes policy/tokenizer_unicode.cpp: the Unicode tables behind policy/tokenizer.cpp.

Usage (from the repository root):
    python3 scripts/gen_tokenizer_unicode.py > policy/tokenizer_unicode.cpp

Only Python's standard library is used (unicodedata), so the tables follow the Unicode version of the Python
that runs this script; the generated file records it. The classes are the ones the Hugging Face `tokenizers`
library uses:
  letter     \\p{L}  general categories Lu Ll Lt Lm Lo (the GPT-2 split regex)
  number     \\p{N}  Nd Nl No (the GPT-2 split regex; Rust's char::is_numeric, used by the Digits pre-tokenizer)
  space      \\s     the White_Space property (Oniguruma's and Rust's \\s, Rust's char::is_whitespace)
  word       \\w     Rust regex's Unicode \\w = Alphabetic + M + Nd + Pc + Join_Control (the Whitespace
                     pre-tokenizer and single_word added tokens)
  lowercase  Rust's str::to_lowercase per code point (the Lowercase normalizer), from Python's str.lower()

unicodedata has neither White_Space nor Other_Alphabetic, so those two come from PropList.txt, copied below. Both
lists are stable: White_Space has not changed since Unicode 6.3, and the Other_Alphabetic code points outside
the M categories (circled and squared Latin letters, category So) since Unicode 6.1; every other
Other_Alphabetic code point is a combining mark, which \\w already contains.
"""

import sys
import unicodedata

WHITE_SPACE = [(0x0009, 0x000D), (0x0020, 0x0020), (0x0085, 0x0085), (0x00A0, 0x00A0), (0x1680, 0x1680),
               (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000)]
OTHER_ALPHABETIC_NOT_MARK = [(0x24B6, 0x24E9), (0x1F130, 0x1F149), (0x1F150, 0x1F169), (0x1F170, 0x1F189)]
JOIN_CONTROL = [(0x200C, 0x200D)]

MAX_CODEPOINT = 0x10FFFF


def ranges_of(predicate):
    out = []
    start = None
    for c in range(MAX_CODEPOINT + 2):
        inside = c <= MAX_CODEPOINT and predicate(c)
        if inside and start is None:
            start = c
        elif not inside and start is not None:
            out.append((start, c - 1))
            start = None
    return out


def in_ranges(ranges):
    members = set()
    for first, last in ranges:
        members.update(range(first, last + 1))
    return members


def category(c):
    return unicodedata.category(chr(c))


def lowercase_runs():
    """Single code point mappings as runs (first, last, stride, delta): lower(c) = c + delta for c = first,
    first + stride, …, last. Multi code point mappings are returned separately."""
    single = []
    multi = []
    for c in range(MAX_CODEPOINT + 1):
        if 0xD800 <= c <= 0xDFFF:
            continue
        lower = chr(c).lower()
        if lower == chr(c):
            continue
        if len(lower) == 1:
            single.append((c, ord(lower) - c))
        else:
            multi.append((c, [ord(x) for x in lower]))
    runs = []
    i = 0
    while i < len(single):
        first, delta = single[i]
        stride = 1
        if i + 1 < len(single) and single[i + 1][1] == delta and single[i + 1][0] - first in (1, 2):
            stride = single[i + 1][0] - first
        last = first
        j = i + 1
        while j < len(single) and single[j][1] == delta and single[j][0] == last + stride:
            last = single[j][0]
            j += 1
        runs.append((first, last, stride, delta))
        i = j
    return runs, multi


def emit_ranges(out, name, ranges):
    out.append(f"constexpr CodepointRange {name}[] = {{")
    line = "   "
    for first, last in ranges:
        item = f" {{0x{first:X}, 0x{last:X}}},"
        if len(line) + len(item) > 120:
            out.append(line)
            line = "   "
        line += item
    out.append(line)
    out.append("};")
    out.append("")


def main():
    space = in_ranges(WHITE_SPACE)
    extra_word = in_ranges(OTHER_ALPHABETIC_NOT_MARK + JOIN_CONTROL)
    letters = ranges_of(lambda c: category(c)[0] == "L")
    numbers = ranges_of(lambda c: category(c)[0] == "N")
    words = ranges_of(lambda c: category(c)[0] in "LM" or category(c) in ("Nd", "Nl", "Pc") or c in extra_word)
    spaces = ranges_of(lambda c: c in space)
    runs, multi = lowercase_runs()

    out = []
    out.append("// Unicode tables for policy/tokenizer.cpp. GENERATED, do not edit: regenerate with")
    out.append("//   python3 scripts/gen_tokenizer_unicode.py > policy/tokenizer_unicode.cpp")
    out.append(f"// from Python {sys.version.split()[0]}'s unicodedata, Unicode {unicodedata.unidata_version} "
               "(White_Space and Other_Alphabetic from PropList.txt,")
    out.append("// listed in the script). The script's docstring says which tokenizers behaviour each table serves.")
    out.append('#include "policy/tokenizer_unicode.h"')
    out.append("")
    out.append("#include <algorithm>")
    out.append("#include <iterator>")
    out.append("")
    out.append("namespace vlascope::unicode {")
    out.append("")
    out.append("namespace {")
    out.append("")
    out.append("struct CodepointRange {")
    out.append("  char32_t first, last;")
    out.append("};")
    out.append("")
    out.append("// lower(c) = c + delta for c = first, first + stride, ..., last.")
    out.append("struct LowercaseRun {")
    out.append("  char32_t first, last;")
    out.append("  int32_t stride, delta;")
    out.append("};")
    out.append("")
    out.append("// clang-format off")
    emit_ranges(out, "kLetter", letters)
    emit_ranges(out, "kNumber", numbers)
    emit_ranges(out, "kSpace", spaces)
    emit_ranges(out, "kWord", words)
    out.append("constexpr LowercaseRun kLowercase[] = {")
    line = "   "
    for first, last, stride, delta in runs:
        item = f" {{0x{first:X}, 0x{last:X}, {stride}, {delta}}},"
        if len(line) + len(item) > 120:
            out.append(line)
            line = "   "
        line += item
    out.append(line)
    out.append("};")
    out.append("// clang-format on")
    out.append("")
    out.append("template <size_t N>")
    out.append("bool contains(const CodepointRange (&table)[N], char32_t c) {")
    out.append("  const CodepointRange* end = table + N;")
    out.append("  const CodepointRange* it =")
    out.append("      std::upper_bound(table, end, c, [](char32_t v, const CodepointRange& r) { return v < r.first; });")
    out.append("  return it != table && c <= std::prev(it)->last;")
    out.append("}")
    out.append("")
    out.append("}  // namespace")
    out.append("")
    out.append("bool is_letter(char32_t c) { return contains(kLetter, c); }")
    out.append("bool is_number(char32_t c) { return contains(kNumber, c); }")
    out.append("bool is_space(char32_t c) { return contains(kSpace, c); }")
    out.append("bool is_word(char32_t c) { return contains(kWord, c); }")
    out.append("")
    out.append("int lowercase(char32_t c, char32_t out[3]) {")
    for cp, lower in multi:
        assert len(lower) <= 3
        values = ", ".join(f"0x{x:X}" for x in lower)
        out.append(f"  if (c == 0x{cp:X}) {{")
        out.append(f"    constexpr char32_t kMapped[] = {{{values}}};")
        out.append("    std::copy(std::begin(kMapped), std::end(kMapped), out);")
        out.append(f"    return {len(lower)};")
        out.append("  }")
    out.append("  const LowercaseRun* end = std::end(kLowercase);")
    out.append("  const LowercaseRun* it =")
    out.append("      std::upper_bound(std::begin(kLowercase), end, c, "
               "[](char32_t v, const LowercaseRun& r) { return v < r.first; });")
    out.append("  out[0] = c;")
    out.append("  if (it == std::begin(kLowercase)) return 1;")
    out.append("  const LowercaseRun& run = *std::prev(it);")
    out.append("  if (c <= run.last && (c - run.first) % static_cast<char32_t>(run.stride) == 0) {")
    out.append("    out[0] = static_cast<char32_t>(static_cast<int32_t>(c) + run.delta);")
    out.append("  }")
    out.append("  return 1;")
    out.append("}")
    out.append("")
    out.append("}  // namespace vlascope::unicode")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
