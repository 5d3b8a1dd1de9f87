#pragma once

// Private files: the directories and files the harness keeps in a shared temp directory (server
// clusters, SQLite templates and run databases) are readable and writable by this user only, so
// nobody else can plant a file the harness would run or trust, or read what a test wrote.
//
// Rules, for every caller:
// - A new directory is made by mkdtemp: mode 0700 and exclusive, an existing path is never taken.
// - An existing directory is trusted only when lstat shows a real directory (not a symlink)
//   owned by the effective uid with permission bits exactly 0700.
// - A file in such a directory is created new (O_EXCL, no symlink followed) with mode 0600.

#include <filesystem>
#include <string>
#include <string_view>

namespace gamebot::harness::detail {

// Why `dir` is not a private directory of this user; "" when it is one.
std::string private_directory_problem(const std::filesystem::path& dir);

// Whether `dir` is a private directory of this user.
bool is_private_directory(const std::filesystem::path& dir);

// Creates `dir` (mode 0700) unless it exists, then checks that it is private. Its parent must
// exist. Throws gamebot::Error(configuration) naming the directory and the problem.
void ensure_private_directory(const std::filesystem::path& dir);

// Creates a new private directory `<parent>/<prefix>XXXXXX` (mkdtemp) and returns its path.
// Throws gamebot::Error(configuration) naming `parent` when it cannot.
std::filesystem::path make_private_directory(const std::filesystem::path& parent,
                                             std::string_view prefix);

// Creates `path` as a new empty file of mode 0600; an existing file or symlink there is an error.
// Throws gamebot::Error(provisioning) naming the file.
void create_private_file(const std::filesystem::path& path);

// Replaces `path` (in a private directory) with a file of mode 0600 holding `content`: written
// whole under a name of this process, then renamed, so a reader never sees half a file.
// Throws gamebot::Error(provisioning) naming the file.
void replace_private_file(const std::filesystem::path& path, std::string_view content);

}  // namespace gamebot::harness::detail
