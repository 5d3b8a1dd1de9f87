#pragma once

// The preflight's memory of suites that passed: a process per test case would otherwise run the
// whole serializer conformance suite (tens of thousands of hostile decodes, ~55 ms for the
// example's 10 entries) again in every process of a run, with the same code on the same inputs.
//
// What counts as the same: the build id of every object loaded in the process (the code that
// encodes and decodes; an object without one: its file's device, inode, size and mtime) and
// serializers::conformance_inputs() (options, types, every sample's bytes in every codec, the
// golden directory's files). The key is the SHA-256 of both; a passed suite leaves a file named
// by the key in this user's private cache directory (caches.hpp). Only a pass is remembered: a
// failure is diagnosed afresh every time. Nothing is remembered when the suite would write
// golden files, or when some loaded object can be identified neither way.

#include <cstddef>
#include <optional>
#include <string>

#include "gamebot/serializers/conformance.hpp"
#include "gamebot/serializers/type_registry.hpp"

namespace gamebot::harness::detail {

// The key of this process's suite over `registry` with `options`; nullopt: not rememberable.
std::optional<std::string> preflight_key(const serializers::TypeRegistry& registry,
                                         const serializers::ConformanceOptions& options);

// The entry count of the passed suite remembered under `key`; nullopt when none is.
std::optional<std::size_t> remembered_pass(const std::string& key);

// Remembers that the suite under `key` passed with `entries` type/codec entries. Never throws: a
// cache that cannot be written only costs the next process the full suite.
void remember_pass(const std::string& key, std::size_t entries) noexcept;

}  // namespace gamebot::harness::detail
