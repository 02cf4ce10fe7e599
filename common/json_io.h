// JSON documents from bytes vlascope did not write itself (checkpoints, tokenizers, calibration and neuron files, run
// descriptions): every way the text can be wrong — a syntax error, a number beyond a double's range, a top level
// that is not an object — is an Error naming the source, never a library exception.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace vlascope {

// "<source>: not valid JSON: …" or "<source>: the top level must be a JSON object".
nlohmann::json parse_json_object(const std::string& text, const std::string& source);
// The same for a file; "<source>: cannot open" when it cannot be read. `source` defaults to the path.
nlohmann::json read_json_object(const std::string& path, const std::string& source = "");

}  // namespace vlascope
