// Parity with LeRobot: run vlascope's SmolVLA on the weights and inputs of a LeRobot run and compare every
// recorded tensor (shared/parity/README.md describes the files and tensor names).
//
//   ParityReport r = run_parity({config, vlm_config, weights, io});
//   for (const ParityRow& row : r.rows) printf("%s %g\n", row.name.c_str(), row.max_abs_error);
#pragma once

#include <string>
#include <vector>

namespace vlascope {

struct ParityFiles {
  std::string config;      // SmolVLA config.json
  std::string vlm_config;  // SmolVLM config.json of the backbone
  std::string weights;     // model.safetensors (LeRobot keys)
  std::string io;          // inputs, output and intermediates of LeRobot's sample_actions
};

struct ParityRow {
  std::string name;       // the io file's tensor name ("actions", "kv_cache.1.key_states", …)
  double max_abs_error = 0;
  double max_abs_reference = 0;  // scale of the reference tensor
  double tolerance = 0;
  bool ok() const { return max_abs_error <= tolerance; }
};

struct ParityReport {
  std::vector<ParityRow> rows;
  int64_t parameters = 0;
  double seconds_per_chunk = 0;  // vlascope's sample_actions on these inputs (median of a few runs)
  bool ok() const;
};

// Compares everything the io file records. `tolerance` applies to actions and intermediates alike (1e-4 in fp32).
// `precision` "fp32" or "bf16" (bf16 is reported against the same references with a tolerance the caller sets).
// Throws Error naming the file and tensor on missing or mis-shaped data.
ParityReport run_parity(const ParityFiles& files, double tolerance = 1e-4, const std::string& precision = "fp32",
                        int threads = 0);

}  // namespace vlascope
