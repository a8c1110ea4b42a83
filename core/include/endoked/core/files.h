#pragma once
// Small file-system helpers with the atomic-write discipline of the project:
// write to "<path>.tmp-<pid>-<n>", fsync, rename over <path>, fsync the directory.
#include <string>
#include <string_view>

namespace endoked::files {

/// Atomically replaces `path` with `content`. Throws Error naming the path on failure.
void atomic_write(const std::string& path, std::string_view content);
/// Plain write (no fsync, no rename): for files inside a directory that is itself committed
/// atomically (a store's partial directory).
void write_file(const std::string& path, std::string_view content);
/// fsync of a file or a directory by path.
void fsync_path(const std::string& path);
/// rename(2) + fsync of the target's directory.
void atomic_rename(const std::string& from, const std::string& to);
/// Swaps two existing paths (files or directories) in one step (renameat2 RENAME_EXCHANGE), so
/// that each name always refers to something complete; fsyncs the directory. Returns false when
/// the file system cannot exchange (then nothing changed); throws Error on other failures.
bool exchange(const std::string& a, const std::string& b);
/// Puts directory `from` at `to`. When `to` exists, the two are exchanged in one step where the
/// file system can (so `to` always names something complete), else the old one is parked at
/// "<to>.old" between two renames (callers look there after a crash; an existing "<to>.old" is
/// an error, never deleted here); the old content is then removed.
void replace_directory(const std::string& from, const std::string& to);
/// Whole file as bytes; throws Error naming the file.
std::string read_all(const std::string& path);
/// Appends one line (a '\n' is added) and flushes; used for JSON-lines metrics.
void append_line(const std::string& path, std::string_view line);
/// A temporary name next to `path` that is unique to this process.
std::string temp_name(const std::string& path);
/// Creates `dir` (and its parents) for a command's output files, refusing an existing `dir` that
/// is not an empty folder (`what` names the output in the error: "exports go to a new folder").
void new_folder(const std::string& dir, const std::string& what);

}  // namespace endoked::files
