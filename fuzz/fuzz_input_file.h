// The parsers that read files take a path: a harness writes its input to a file of its own (in /dev/shm when there
// is one) and hands over that path.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

namespace vlascope {

inline std::string fuzz_input_file(const uint8_t* data, size_t size, const char* name) {
  static const std::string path = std::string(access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp") + "/vlascope_fuzz_" +
                                   std::to_string(getpid()) + "_" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) __builtin_trap();
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
  return path;
}

}  // namespace vlascope
