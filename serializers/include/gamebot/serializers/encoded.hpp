#pragma once

#include <cstdint>
#include <string>

#include "gamebot/serializers/codec.hpp"

namespace gamebot::serializers {

// One encoded value: what an event store keeps next to the data to decode it
// again (type name, schema version, codec) and the bytes themselves.
struct Encoded {
  std::string type;           // registered event type name ("guess_processed")
  std::uint32_t version = 0;  // schema version the bytes were written with
  Codec codec = Codec::json;  // how the bytes are encoded
  std::string bytes;          // the encoding (UTF-8 JSON text or portable binary)
};

}  // namespace gamebot::serializers
