// vlascope::Error: the one exception type for bad input and device failures.
// Its message names what was wrong and where: the file, the field, the device.
#pragma once

#include <stdexcept>
#include <string>

namespace vlascope {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Throws Error(message) unless condition holds.
inline void require(bool condition, const std::string& message) {
  if (!condition) throw Error(message);
}

}  // namespace vlascope
