#pragma once

// gamebot::serializers: stable event-type names and versions for C++ types,
// JSON and portable-binary codecs on cereal, upcasters, and the conformance
// suite. The Catch2 adapter is separate: gamebot/serializers/catch2_conformance.hpp.

#include "gamebot/serializers/binary_input_archive.hpp"
#include "gamebot/serializers/codec.hpp"
#include "gamebot/serializers/conformance.hpp"
#include "gamebot/serializers/decoded_value.hpp"
#include "gamebot/serializers/encoded.hpp"
#include "gamebot/serializers/error.hpp"
#include "gamebot/serializers/type_info.hpp"
#include "gamebot/serializers/type_registry.hpp"
#include "gamebot/serializers/type_tag.hpp"
