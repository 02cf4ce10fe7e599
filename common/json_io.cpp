#include "common/json_io.h"

#include <fstream>
#include <sstream>

#include "common/error.h"

namespace vlascope {

nlohmann::json parse_json_object(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for a number beyond a double's range
    throw Error(source + ": not valid JSON: " + e.what());
  }
  require(j.is_object(), source + ": the top level must be a JSON object");
  return j;
}

nlohmann::json read_json_object(const std::string& path, const std::string& source) {
  const std::string name = source.empty() ? path : source;
  std::ifstream in(path, std::ios::binary);
  require(in.good(), name + ": cannot open");
  std::stringstream text;
  text << in.rdbuf();
  require(!in.bad(), name + ": cannot read");
  return parse_json_object(text.str(), name);
}

}  // namespace vlascope
