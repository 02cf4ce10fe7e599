// LeRobot calibration files (the JSON LeRobot writes per arm).
#include <cstdint>

#include "common/error.h"
#include "fuzz/fuzz_input_file.h"
#include "hardware/calibration.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)vlascope::read_calibration(vlascope::fuzz_input_file(data, size, "calibration.json"));
  } catch (const vlascope::Error&) {
  }
  return 0;
}
