// Whole-file writes that never leave half a file, and file identities.
//
// Writes: the bytes go to a temporary file next to the target, which then replaces it in one rename. A reader sees the
// old file or the new one; an interrupted write (Ctrl-C, a full disk, a crash) leaves the old file in place. Every
// error names the target.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace vlascope {

// Throws Error naming `path` when the folder is missing or unwritable, the write fails, or the rename fails; the
// temporary file is removed on failure. The temporary name carries the process id, so two processes writing the
// same target do not write into one temporary file.
void write_file_atomically(const std::string& path, const std::string& bytes);

// 64-bit FNV-1a over bytes, continuing from `hash` (start with kFnv1aOffset): a cheap, stable identity for keys and
// files (not a cryptographic one). The offset basis is not the standard's 14695981039346656037 but that number
// without its last digit, as the first implementation had it; it stays, because init_random's per-tensor streams
// (and so every recorded training run) and the digests in eval's run.json files depend on it.
constexpr uint64_t kFnv1aOffset = 1469598103934665603ull;
uint64_t fnv1a(const void* data, size_t size, uint64_t hash = kFnv1aOffset);

// "<size> bytes, fnv1a <16 hex digits>" of a file's contents: two runs used the same weights (a path alone does not
// say so on a cluster). Throws Error naming the file when it cannot be read.
std::string file_digest(const std::string& path);

}  // namespace vlascope
