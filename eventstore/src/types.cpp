#include "gamebot/eventstore/types.hpp"

#include "gamebot/eventstore/results.hpp"

namespace gamebot::eventstore {

Timestamp now() noexcept {
  return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

std::string_view to_string(WriteStatus status) noexcept {
  switch (status) {
    case WriteStatus::ok:
      return "ok";
    case WriteStatus::wrong_expected_version:
      return "wrong_expected_version";
    case WriteStatus::stream_exists:
      return "stream_exists";
    case WriteStatus::stream_not_found:
      return "stream_not_found";
    case WriteStatus::stream_deleted:
      return "stream_deleted";
    case WriteStatus::duplicate_event_id:
      return "duplicate_event_id";
    case WriteStatus::cannot_append_to_all:
      return "cannot_append_to_all";
    case WriteStatus::event_not_found:
      return "event_not_found";
  }
  return "unknown";
}

std::string_view to_string(ReadStatus status) noexcept {
  switch (status) {
    case ReadStatus::ok:
      return "ok";
    case ReadStatus::stream_not_found:
      return "stream_not_found";
    case ReadStatus::stream_deleted:
      return "stream_deleted";
  }
  return "unknown";
}

}  // namespace gamebot::eventstore
