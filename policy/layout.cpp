#include "policy/layout.h"

#include <cstdio>

namespace vlascope {

const char* token_kind_name(TokenKind kind) {
  switch (kind) {
    case TokenKind::kImage: return "image";
    case TokenKind::kLanguage: return "language";
    case TokenKind::kState: return "state";
    case TokenKind::kAction: return "action";
  }
  return "?";
}

std::string PrefixLayout::describe(int b) const {
  std::string out;
  if (b < 0 || b >= static_cast<int>(tokens.size())) return out;
  char line[256];
  for (size_t i = 0; i < tokens[b].size(); ++i) {
    const LayoutToken& t = tokens[b][i];
    std::string what;
    switch (t.kind) {
      case TokenKind::kImage: {
        const std::string cam = t.camera >= 0 && t.camera < static_cast<int>(camera_names.size())
                                    ? camera_names[t.camera] : std::to_string(t.camera);
        std::snprintf(line, sizeof line, "%s r%d c%d", cam.c_str(), t.row, t.col);
        what = line;
        break;
      }
      case TokenKind::kLanguage: what = "id " + std::to_string(t.token_id) + " '" + t.piece + "'"; break;
      case TokenKind::kState: what = "state"; break;
      case TokenKind::kAction: what = "action " + std::to_string(t.action); break;
    }
    std::snprintf(line, sizeof line, "%4zu  %-8s pos %4d%s  %s\n", i, token_kind_name(t.kind), t.position,
                  t.padding ? " pad" : "    ", what.c_str());
    out += line;
  }
  return out;
}

}  // namespace vlascope
