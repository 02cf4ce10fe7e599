// vlascope: one program, many subcommands. `vlascope --help` lists them; `vlascope <cmd> --help` explains one.
#include <cstdio>
#include <cstring>
#include <c10/util/Exception.h>

#include <exception>

#include "apps/commands.h"
#include "common/runtime.h"
#include "common/error.h"

namespace {

void print_usage() {
  std::printf("usage: vlascope <command> [options]\n\n"
              "vlascope opens up vision-language-action robot policies (SmolVLA on an SO-100 arm),\n"
              "in a MuJoCo digital twin and on the real arm.\n\ncommands:\n");
  for (const vlascope::Command& c : vlascope::kCommands) std::printf("  %-18s %s\n", c.name, c.summary);
  std::printf("\nRun `vlascope <command> --help` for a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage();
    return argc < 2 ? 2 : 0;
  }
  for (const vlascope::Command& c : vlascope::kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    if (c.tensors) vlascope::prepare_runtime(argv);
    try {
      return c.run(argc - 1, argv + 1);
    } catch (const vlascope::Error& e) {
      std::fprintf(stderr, "vlascope %s: error: %s\n", c.name, e.what());
      return 1;
    } catch (const c10::Error& e) {
      std::fprintf(stderr, "vlascope %s: error in libtorch: %s\n", c.name, e.what_without_backtrace());
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "vlascope %s: unexpected error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "vlascope: unknown command '%s'\n\n", argv[1]);
  print_usage();
  return 2;
}
