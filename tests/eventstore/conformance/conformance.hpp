#pragma once

// The backend conformance suite: one test source, compiled once and linked
// once per backend with that backend's factory (see gamebot_eventstore_conformance
// in tests/eventstore/CMakeLists.txt). A backend provides, in its factory source:
//
//   std::unique_ptr<ConformanceBackend> make_conformance_backend();
//   std::string conformance_backend_name();
//
// No backend may skip a case.

#include <memory>
#include <string>
#include <vector>

#include "gamebot/eventstore/eventstore.hpp"

namespace gamebot::eventstore::conformance {

// One isolated backend state per test case.
class ConformanceBackend {
 public:
  virtual ~ConformanceBackend() = default;

  // Opens a store on this state. The first call sees an empty store; later
  // calls see the same data, as a new process (or a restarted subscriber)
  // would: for durable backends, a new connection to the same database; for
  // memory, a new EventStore over the same backend object.
  virtual EventStore open(StoreOptions options) = 0;
};

// Provided by the backend's factory source.
std::unique_ptr<ConformanceBackend> make_conformance_backend();
std::string conformance_backend_name();

// ---- helpers shared by the suite -------------------------------------------------

// Options the suite uses: hard deletes allowed, a short poll interval.
inline StoreOptions suite_options() {
  StoreOptions options;
  options.allow_hard_delete = true;
  options.poll_interval = std::chrono::milliseconds(50);
  return options;
}

inline EventData event(std::string type, std::string data = {}, std::string metadata = {}) {
  EventData e;
  e.type = std::move(type);
  e.data = std::move(data);
  e.metadata = std::move(metadata);
  return e;
}

// `count` events "<prefix>-<i>" with data "<prefix>-data-<i>", i from `first`.
inline std::vector<EventData> events(std::size_t count, const std::string& prefix = "Event",
                                     std::size_t first = 1) {
  std::vector<EventData> out;
  out.reserve(count);
  for (std::size_t i = first; i < first + count; ++i) {
    out.push_back(event(prefix + "-" + std::to_string(i), prefix + "-data-" + std::to_string(i)));
  }
  return out;
}

inline std::vector<StreamVersion> event_numbers(const std::vector<RecordedEvent>& events) {
  std::vector<StreamVersion> out;
  for (const auto& e : events) out.push_back(e.event_number);
  return out;
}

inline std::vector<GlobalPosition> positions(const std::vector<RecordedEvent>& events) {
  std::vector<GlobalPosition> out;
  for (const auto& e : events) out.push_back(e.global_position);
  return out;
}

inline std::vector<std::string> types(const std::vector<RecordedEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.emplace_back(e.type);
  return out;
}

inline std::vector<StreamVersion> range(StreamVersion first, StreamVersion last) {
  std::vector<StreamVersion> out;
  for (StreamVersion v = first; v <= last; ++v) out.push_back(v);
  return out;
}

// A fresh backend and a store opened on it, for the common case.
struct Fixture {
  std::unique_ptr<ConformanceBackend> backend = make_conformance_backend();
  EventStore store = backend->open(suite_options());
};

}  // namespace gamebot::eventstore::conformance
