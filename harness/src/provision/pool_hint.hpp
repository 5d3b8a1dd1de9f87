#pragma once

// Which pooled run database (marked_resources.hpp, claims) of a template a process of this user
// released last on a server: the one the next process will most likely claim, since under
// `ctest -j N` a test process starts when another ends. A process opens its first connection to
// that database together with its admin connection, before the claim names it, so a right guess
// takes one connection set-up off its critical path and a wrong one costs what no guess costs.
//
// Only a guess, never trusted: the caller checks the name against its template's pooled names
// and claims a database as ever (the guess is tried first). Kept in the caches directory
// caches::pool_hints() (a private directory of this user), a file per server and template.

#include <optional>
#include <string>

namespace gamebot::harness::provision {

// The name last remembered for `server` (a described target, no secrets) and `pool` (the
// template's key);
// nullopt when none is, or the directory is not private to this user. Never throws.
std::optional<std::string> last_released_pooled(const std::string& server,
                                                const std::string& pool) noexcept;

// Remembers `database` as the one last released. Never throws: a hint not written costs the
// next process its guess only.
void remember_released_pooled(const std::string& server, const std::string& pool,
                              const std::string& database) noexcept;

}  // namespace gamebot::harness::provision
