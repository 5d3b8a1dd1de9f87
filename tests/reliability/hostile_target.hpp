#pragma once

// The backend under the hostile-input tests. hostile_input_test.cpp is
// compiled once per backend with that backend's target source (see
// tests/reliability/CMakeLists.txt), which defines make_hostile_target() and
// hostile_target_name(). No backend skips a case.

#include <memory>
#include <string>
#include <vector>

#include "gamebot/eventstore/eventstore.hpp"

namespace gamebot::reliability {

// One isolated store per test case.
class HostileTarget {
 public:
  virtual ~HostileTarget() = default;
  // A store on this case's data. The first call sees an empty store; later
  // calls see the same data through a new backend (SQL: new connections to the
  // same database, as a restarted process would; memory: the same backend).
  virtual eventstore::EventStore open() = 0;
  // The store's tables as the database itself lists them (sorted); empty for
  // the memory backend, which has none. Compared before and after hostile
  // input: no table may disappear or appear.
  virtual std::vector<std::string> tables() = 0;
};

std::unique_ptr<HostileTarget> make_hostile_target();
std::string hostile_target_name();

}  // namespace gamebot::reliability
