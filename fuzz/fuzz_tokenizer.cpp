// tokenizer.json, then encoding: the first two bytes (little-endian) say how long the file's text is; the rest is a
// text to encode.
#include <cstdint>
#include <string>

#include "common/error.h"
#include "policy/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t split = std::min<size_t>(size - 2, data[0] | (data[1] << 8));
  const std::string json(reinterpret_cast<const char*>(data + 2), split);
  const std::string text(reinterpret_cast<const char*>(data + 2 + split), size - 2 - split);
  try {
    const vlascope::Tokenizer tok = vlascope::Tokenizer::from_json(json, "fuzz tokenizer.json");
    for (int64_t id : tok.encode(text)) (void)tok.piece(id);
  } catch (const vlascope::Error&) {
  }
  return 0;
}
