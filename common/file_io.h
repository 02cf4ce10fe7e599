// Whole-file writes that never leave half a file: the bytes go to a temporary file next to the target, which then
// replaces it in one rename. A reader sees the old file or the new one; an interrupted write (Ctrl-C, a full disk,
// a crash) leaves the old file in place. Every error names the target.
#pragma once

#include <string>

namespace vlascope {

// Throws Error naming `path` when the folder is missing or unwritable, the write fails, or the rename fails; the
// temporary file is removed on failure. The temporary name carries the process id, so two processes writing the
// same target do not write into one temporary file.
void write_file_atomically(const std::string& path, const std::string& bytes);

}  // namespace vlascope
