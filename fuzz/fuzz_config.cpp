// LeRobot's config.json (with the preset backbone) and SmolVLM's config.json.
#include <cstdint>
#include <string>

#include "common/error.h"
#include "fuzz/fuzz_input_file.h"
#include "policy/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)vlascope::read_lerobot_config(vlascope::fuzz_input_file(data, size, "config.json"));
  } catch (const vlascope::Error&) {
  }
  try {
    vlascope::SmolVLAConfig c = vlascope::smolvla_small_config();
    vlascope::parse_vlm_config(std::string(reinterpret_cast<const char*>(data), size), "fuzz vlm_config.json", c);
  } catch (const vlascope::Error&) {
  }
  return 0;
}
