#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace gamebot::harness::detail {

// Facts about a process from /proc (Linux).
struct ProcessFacts {
  std::uint64_t start_ticks = 0;  // start time, clock ticks since boot
  char state = '?';               // R, S, D, Z (zombie), X (dead), ...
};

// nullopt when the process does not exist or /proc is unavailable.
std::optional<ProcessFacts> process_facts(pid_t pid);

// The kernel's boot id; empty when unavailable.
std::string current_boot_id();

}  // namespace gamebot::harness::detail
