#include "common/runtime.h"

#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace vlascope {
namespace {

// The best OpenBLAS core type the CPU's flags allow, or "" for none known.
std::string core_type_for_cpu() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    bool amx = false, bf16 = false, avx512 = false, avx2 = false;
    for (std::string w; words >> w;) {
      amx |= w == "amx_tile";
      bf16 |= w == "avx512_bf16";
      avx512 |= w == "avx512f";
      avx2 |= w == "avx2";
    }
    if (amx && bf16) return "SapphireRapids";
    if (bf16) return "Cooperlake";
    if (avx512) return "SkylakeX";
    if (avx2) return "Haswell";
    return "";
  }
  return "";
}

}  // namespace

std::string blas_core_name() {
  using CoreName = char* (*)();
  auto fn = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (fn == nullptr) return "";
  const char* name = fn();
  return name ? name : "";
}

void ensure_fast_blas(char** argv) {
  // Both settings are read when the libraries load, so a process that lacks either re-executes itself once.
  if (std::getenv("VLASCOPE_RUNTIME_READY") != nullptr) return;
  bool changed = false;
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr) {
    const std::string current = blas_core_name();
    const std::string wanted = core_type_for_cpu();
    if ((current == "Prescott" || current == "Nehalem" || current == "Core2") && !wanted.empty()) {
      setenv("OPENBLAS_CORETYPE", wanted.c_str(), 1);
      changed = true;
    }
  }
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    changed = true;
  }
  if (!changed) return;
  setenv("VLASCOPE_RUNTIME_READY", "1", 1);
  execv("/proc/self/exe", argv);
  std::fprintf(stderr, "vlascope: could not re-execute with the runtime settings of common/runtime.h\n");
}

void prepare_runtime(char** argv) {
  ensure_fast_blas(argv);
  // Never mmap (large blocks stay on the heap and are reused) and keep up to 1 GB of freed memory.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

}  // namespace vlascope
