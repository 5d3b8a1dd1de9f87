#pragma once

// Input rules shared by every backend. The EventStore applies them before a
// backend sees a call, so backends may assume valid input.

#include <string_view>

#include "gamebot/core/utf8.hpp"

namespace gamebot::eventstore {

// True if `text` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
using gamebot::is_valid_utf8;

// Throws InvalidArgument unless `id` is a valid stream id: 1..kMaxStreamIdBytes
// bytes of UTF-8 without NUL. `what` names the argument in the message
// ("stream id", "snapshot source id"). `$all` passes (it is a valid name to
// read); writes reject it separately with WriteStatus::cannot_append_to_all.
void validate_stream_id(std::string_view id, std::string_view what = "stream id");

// Throws InvalidArgument unless `type` is 1..kMaxEventTypeBytes bytes of UTF-8
// without NUL.
void validate_event_type(std::string_view type, std::string_view what = "event type");

}  // namespace gamebot::eventstore
