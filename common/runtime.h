// Process-wide settings every vlascope program makes first thing in main(), before any tensor exists.
//
//   int main(int argc, char** argv) { vlascope::prepare_runtime(argv); … }
//
// 1. OpenBLAS picks its kernels from the CPU model when it loads, and Debian 12's OpenBLAS 0.3.21 does not know the
//    Sapphire Rapids models of these machines: it falls back to its generic "Prescott" kernels, 15 instead of 95
//    GFLOP/s per core on fp32 matmuls (libtorch's fp32 linear layers go through it). The choice can only be made
//    before the library loads, through OPENBLAS_CORETYPE, so a program that finds the fallback re-executes itself
//    once with the core type its CPU flags support.
// 2. libgomp's worker threads spin between parallel regions by default. libtorch and OpenBLAS open thousands of
//    short regions per forward pass, and on these 2-core machines the spinning thread starves the working one:
//    OMP_WAIT_POLICY=PASSIVE (unless the user set it) makes two threads 1.5–3× faster than the default, where
//    they were slower than one (smolvla_base's denoising loop: 1.4 s vs 5.2 s; a training step 1.0 s vs 2.0 s).
//    Re-measured 2026-12-02: on an idle machine libgomp's default spinning is faster (base denoising 0.91 vs 1.35 s),
//    but with one other busy process it takes 29 s instead of 2.5 s, so passive stays; smolvla.cpp instead keeps
//    the denoising loop's small ops off the second thread.
// 3. libtorch 1.13 as Debian builds it runs its elementwise and reduction kernels (softmax, GELU, LayerNorm, adds)
//    with its AVX2 variants on these AVX-512 machines unless ATEN_CPU_CAPABILITY=avx512 is set before it loads:
//    the AVX-512 ones are faster (a 1024×1024 fp32 softmax: 0.63 instead of 1.04–1.4 ms on one core).
// 4. glibc serves large allocations with fresh mmap pages and returns them on free, so every big activation tensor
//    page-faults its way into memory again (a 38 MB fc1 output: 100 ms instead of 67 ms). Keeping them on the heap
//    makes the second forward pass reuse the first one's memory.
#pragma once

#include <string>

namespace vlascope {

void prepare_runtime(char** argv);

// glibc's allocation policy of note 4 (no mmap, keep up to 1 GB of freed memory); prepare_runtime sets it, and code
// that changes it for a scope (a benchmark's baseline) restores it with this.
void keep_freed_memory_on_the_heap();

// Re-executes the program once (same arguments) with OPENBLAS_CORETYPE set when OpenBLAS runs its generic kernels on
// a CPU that has AVX2 or AVX-512, ATEN_CPU_CAPABILITY=avx512 on an AVX-512 CPU, and OMP_WAIT_POLICY=PASSIVE, unless
// the user set them; returns normally when nothing needs changing.
void ensure_runtime_settings(char** argv);
// OpenBLAS's current core name ("Cooperlake", "Prescott", …), or "" when OpenBLAS is not loaded.
std::string blas_core_name();

}  // namespace vlascope
