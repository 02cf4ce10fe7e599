// The token table of one forward pass: what every sequence position is. The model publishes it with each
// prefix so interpretability code never re-derives positions by hand.
//
// Sequence = [camera 0 tokens | camera 1 tokens | … | language tokens | state token] (the prefix, Lp long)
// followed by the chunk of action tokens (the suffix). Image tokens sit on the connector's grid
// (grid_rows × grid_cols per camera, row-major); language tokens carry their id and text piece.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vlascope {

enum class TokenKind : int8_t { kImage, kLanguage, kState, kAction };
const char* token_kind_name(TokenKind kind);

struct LayoutToken {
  TokenKind kind = TokenKind::kImage;
  int camera = -1;          // image tokens: camera index in config order
  int row = -1, col = -1;   // image tokens: connector grid cell (each covers scale_factor² patches)
  int64_t token_id = -1;    // language tokens
  std::string piece;        // language tokens: the token's text (filled when a tokenizer is known)
  int action = -1;          // suffix: action index 0 … chunk−1
  bool padding = false;     // masked out (padded language, or a camera whose image mask is false)
  int position = -1;        // RoPE position id
};

struct PrefixLayout {
  int batch = 0;
  int prefix_len = 0;  // Lp
  int suffix_len = 0;  // chunk size
  int grid_rows = 0, grid_cols = 0;
  std::vector<std::string> camera_names;  // config order
  int image_begin = 0;      // first image token (always 0)
  int language_begin = 0;   // first language token
  int language_len = 0;
  int state_index = 0;      // the state token (last prefix position)
  std::vector<std::vector<LayoutToken>> tokens;  // [batch][prefix_len + suffix_len]

  // Index of camera c's token at grid (row, col).
  int image_token(int camera, int row, int col) const {
    return image_begin + camera * grid_rows * grid_cols + row * grid_cols + col;
  }
  // A readable table (one line per position) for batch element b.
  std::string describe(int b = 0) const;
};

}  // namespace vlascope
