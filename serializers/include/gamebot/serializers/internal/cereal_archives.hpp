#pragma once

// The one place the serializers include cereal's archives. cereal makes
// rapidjson's assertions throw (cereal::RapidJSONException) by defining
// RAPIDJSON_ASSERT before including rapidjson; if rapidjson was included first,
// its assertions would call assert() (abort, or nothing under NDEBUG) on
// malformed JSON. Refuse to compile in that order.
#if defined(RAPIDJSON_RAPIDJSON_H_) && !defined(CEREAL_ARCHIVES_JSON_HPP_)
#error \
    "rapidjson was included before cereal/archives/json.hpp: include gamebot/serializers (or cereal/archives/json.hpp) first so rapidjson assertions throw"
#endif

#include <cereal/archives/json.hpp>
#include <cereal/archives/portable_binary.hpp>
#include <cereal/cereal.hpp>

#include "gamebot/serializers/binary_input_archive.hpp"

#ifndef RAPIDJSON_ASSERT_THROWS
#error "cereal/archives/json.hpp no longer makes rapidjson assertions throw"
#endif
