// neuron_sets.json and interventions.json.
#include <cstdint>
#include <string>

#include "common/error.h"
#include "interp/neuron_set.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    for (const vlascope::NeuronSet& s : vlascope::parse_neuron_sets(text, "fuzz neuron_sets.json"))
      (void)vlascope::neuron_sets_to_json({s});
  } catch (const vlascope::Error&) {
  }
  try {
    (void)vlascope::parse_interventions(text, "fuzz interventions.json");
  } catch (const vlascope::Error&) {
  }
  return 0;
}
