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

struct CpuFlags {
  bool amx = false, bf16 = false, avx512 = false, avx2 = false;
};

CpuFlags cpu_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  CpuFlags f;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    int avx512_parts = 0;  // ATen's AVX-512 kernels need F, BW, VL and DQ
    for (std::string w; words >> w;) {
      f.amx |= w == "amx_tile";
      f.bf16 |= w == "avx512_bf16";
      avx512_parts += w == "avx512f" || w == "avx512bw" || w == "avx512vl" || w == "avx512dq";
      f.avx2 |= w == "avx2";
    }
    f.avx512 = avx512_parts == 4;
    break;
  }
  return f;
}

// The best OpenBLAS core type the CPU's flags allow, or "" for none known.
std::string core_type_for_cpu(const CpuFlags& f) {
  if (f.amx && f.bf16) return "SapphireRapids";
  if (f.bf16) return "Cooperlake";
  if (f.avx512) return "SkylakeX";
  if (f.avx2) return "Haswell";
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

void ensure_runtime_settings(char** argv) {
  // The settings are read when the libraries load, so a process that lacks one re-executes itself once.
  if (std::getenv("VLASCOPE_RUNTIME_READY") != nullptr) return;
  bool changed = false;
  const CpuFlags flags = cpu_flags();
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr) {
    const std::string current = blas_core_name();
    const std::string wanted = core_type_for_cpu(flags);
    if ((current == "Prescott" || current == "Nehalem" || current == "Core2") && !wanted.empty()) {
      setenv("OPENBLAS_CORETYPE", wanted.c_str(), 1);
      changed = true;
    }
  }
  if (std::getenv("ATEN_CPU_CAPABILITY") == nullptr && flags.avx512) {
    setenv("ATEN_CPU_CAPABILITY", "avx512", 1);
    changed = true;
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

void keep_freed_memory_on_the_heap() {
  // Never mmap (large blocks stay on the heap and are reused) and keep up to 1 GB of freed memory.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

void prepare_runtime(char** argv) {
  ensure_runtime_settings(argv);
  keep_freed_memory_on_the_heap();
}

}  // namespace vlascope
