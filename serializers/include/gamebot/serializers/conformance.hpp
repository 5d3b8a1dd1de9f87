#pragma once

// The serializer conformance suite: checks every registered type with every
// codec before any test touches a database, so a serialization fault is
// reported as one. For each type and codec:
//
//   1. round_trip  every sample encodes and decodes back equal (operator==);
//   2. golden      every sample's encoding equals its golden file
//                  <golden_dir>/<name>@v<version>.<codec>; a changed encoding
//                  without a version bump fails with a diff. With update_golden
//                  (or GAMEBOT_UPDATE_GOLDEN=1) missing or changed files are
//                  written instead. Older versions' samples are checked against
//                  their own golden files the same way;
//   3. robustness  every truncation of every encoding and a set of byte
//                  corruptions (xor 0xff, xor 0x01, xor 0x80, set 0x00 at each
//                  position) give a SerializationError or a value, each within
//                  decode_time_limit (a crash or sanitizer report fails the process);
//   4. wrong_name  the bytes decoded under an unregistered name give an
//                  unknown_type error that suggests the right name, and under
//                  every other registered name a SerializationError or a value
//                  of that other type;
//   5. upcast      bytes of every older version that has an upcaster (its
//                  samples and its golden files) decode to the current type.
//
// Registry-wide, golden files whose name or version is not registered (a type
// was renamed or a version rolled back) are reported as problems.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gamebot/serializers/codec.hpp"
#include "gamebot/serializers/type_registry.hpp"

namespace gamebot::serializers {

enum class CheckKind { round_trip, golden, robustness, wrong_name, upcast };
inline constexpr CheckKind all_checks[] = {CheckKind::round_trip, CheckKind::golden,
                                           CheckKind::robustness, CheckKind::wrong_name,
                                           CheckKind::upcast};
std::string_view to_string(CheckKind check) noexcept;

enum class CheckStatus { passed, failed, not_applicable };
std::string_view to_string(CheckStatus status) noexcept;

struct CheckResult {
  CheckKind check = CheckKind::round_trip;
  CheckStatus status = CheckStatus::passed;
  std::string summary;               // one line: what was verified, or why it failed
  std::vector<std::string> details;  // failure details (diffs, offsets, messages), capped
};

struct TypeCodecReport {
  std::string type_name;
  std::uint32_t version = 0;
  Codec codec = Codec::json;
  std::vector<CheckResult> checks;  // one per CheckKind, in all_checks order

  bool passed() const noexcept;
  const CheckResult* check(CheckKind kind) const noexcept;
};

struct ConformanceReport {
  std::vector<TypeCodecReport> entries;        // one per checked type and codec
  std::vector<std::string> registry_problems;  // stale golden files, empty registry

  bool passed() const noexcept;
  std::size_t failed_count() const noexcept;
  const TypeCodecReport* find(std::string_view type_name, Codec codec) const noexcept;
  // One screen: a line per type and codec with pass/fail and why, registry
  // problems, then failure details (diffs) up to `max_detail_lines` lines.
  std::string to_string(std::size_t max_detail_lines = 40) const;
};

struct ConformanceOptions {
  // Directory of golden files; empty: the golden check is not applicable.
  std::filesystem::path golden_dir;
  // Write missing or changed golden files instead of failing. Also turned on
  // by the environment variable GAMEBOT_UPDATE_GOLDEN=1.
  bool update_golden = false;
  // Codecs to check.
  std::vector<Codec> codecs{all_codecs.begin(), all_codecs.end()};
  // Only check the type registered under this name (empty: every type).
  std::string only_type;
  // Report golden files of unregistered names or versions (when only_type is empty).
  bool check_stale_golden_files = true;
  // Truncation points per sample and codec; every truncation when the encoding
  // is at most this long, else this many evenly spread (0: no limit). Each is
  // one decode: a 16 KB JSON sample costs ~0.2 ms per decode (10x under ASan).
  std::size_t max_truncations = 2048;
  // Byte positions corrupted (4 ways each) per sample and codec, same rule (0: no limit).
  std::size_t max_corruption_positions = 512;
  // A single decode slower than this fails the robustness or wrong_name check
  // (a decoder that trusts a count it read is how hangs start).
  std::chrono::milliseconds decode_time_limit{1000};
  // Most detail lines kept per failed check.
  std::size_t max_details_per_check = 24;
};

// Runs the suite. Never throws for a failing check (that goes in the report);
// throws SerializationError (unknown_type) if only_type is not registered, and
// std::filesystem::filesystem_error if golden files cannot be written.
// Thread safety: reads the registry only; golden files must not be updated
// by two runs at once.
ConformanceReport run_conformance(const TypeRegistry& registry,
                                  const ConformanceOptions& options = {});

// Everything run_conformance()'s outcome depends on besides the code that encodes and decodes:
// the options, each checked type's name, version, C++ type and upcast versions, the bytes of
// every sample (current and older versions) in every checked codec, and the name and contents of
// every file in the golden directory; length-prefixed, so two equal texts mean equal inputs.
// The same code (the caller's business: the harness adds the loaded objects' build ids) given
// equal inputs gives the same report, which is what lets a passed suite be remembered.
// nullopt when the suite would write golden files (update_golden_requested()).
std::optional<std::string> conformance_inputs(const TypeRegistry& registry,
                                              const ConformanceOptions& options);

// Golden files in `golden_dir` named <name>@v<version>.<codec> whose name is not
// registered, whose version is newer than the registered one, or older without
// an upcaster; one message each.
std::vector<std::string> find_stale_golden_files(const TypeRegistry& registry,
                                                 const std::filesystem::path& golden_dir);

// True if options.update_golden or GAMEBOT_UPDATE_GOLDEN=1.
bool update_golden_requested(const ConformanceOptions& options);

// <golden_dir>/<name>@v<version>.<codec>
std::filesystem::path golden_file_path(const std::filesystem::path& golden_dir,
                                       std::string_view name, std::uint32_t version, Codec codec);

}  // namespace gamebot::serializers
