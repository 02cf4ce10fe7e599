// vlascope parity: run vlascope's SmolVLA on the weights and inputs of a LeRobot run and print the largest absolute
// error of every recorded tensor (shared/parity/README.md). Exits 1 when any exceeds the tolerance.
#include <cstdio>

#include "apps/commands.h"
#include "common/cli.h"
#include "policy/parity.h"

namespace vlascope {

int run_parity_command(int argc, char** argv) {
  ArgParser args("vlascope parity",
                 "Compare vlascope's SmolVLA with LeRobot's recorded run, tensor by tensor (images, prefix, KV cache,\n"
                 "each Euler step's velocity, the action chunk with and without the cache).");
  args.required("config", "SmolVLA config.json of the run");
  args.required("vlm-config", "SmolVLM config.json of the backbone");
  args.required("weights", "model.safetensors (LeRobot keys)");
  args.required("io", "safetensors with the inputs, output and intermediates (same names as shared/parity)");
  args.option("tolerance", "1e-4", "largest allowed absolute error");
  args.option("precision", "fp32", "fp32 or bf16");
  args.option("threads", "2", "intra-op threads");
  if (!args.parse(argc, argv)) return 0;
  const ParityReport r = run_parity({args.get("config"), args.get("vlm-config"), args.get("weights"), args.get("io")},
                                    args.get_double("tolerance"), args.get("precision"), args.get_int("threads"));
  std::printf("%lld parameters; sample_actions %.2f ms (median of 7)\n", static_cast<long long>(r.parameters),
              r.seconds_per_chunk * 1e3);
  std::printf("%-28s %12s %12s %10s\n", "tensor", "max |error|", "max |ref|", "");
  for (const ParityRow& row : r.rows)
    std::printf("%-28s %12.3g %12.3g %10s\n", row.name.c_str(), row.max_abs_error, row.max_abs_reference,
                row.ok() ? "ok" : "TOO LARGE");
  std::printf("%s (tolerance %g)\n", r.ok() ? "parity: all tensors within tolerance" : "parity: FAILED",
              args.get_double("tolerance"));
  return r.ok() ? 0 : 1;
}

}  // namespace vlascope
