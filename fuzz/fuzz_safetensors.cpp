// safetensors files: the header (JSON, offsets, dtypes, shapes) and every tensor read back as floats.
#include <cstdint>

#include "common/error.h"
#include "fuzz/fuzz_input_file.h"
#include "policy/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const vlascope::SafetensorsFile file(vlascope::fuzz_input_file(data, size, "model.safetensors"));
    for (const vlascope::TensorInfo& t : file.tensors())
      if (t.nbytes <= (1u << 20)) (void)file.to_float(t);
    (void)file.metadata();
  } catch (const vlascope::Error&) {
  }
  return 0;
}
