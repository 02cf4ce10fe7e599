#include "common/file_io.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <system_error>

#include "common/error.h"

namespace vlascope {

void write_file_atomically(const std::string& path, const std::string& bytes) {
  const std::string temporary = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    require(out.good(), path + ": cannot write (" + temporary + "; does the folder exist?)");
    out << bytes;
    out.flush();
    if (!out.good()) {
      out.close();
      std::filesystem::remove(temporary);
      throw Error(path + ": write failed (disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(temporary, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw Error(path + ": cannot replace it with the written file: " + ec.message());
  }
}

}  // namespace vlascope
