#pragma once

// Encode/decode of one value with one codec; the templates are instantiated
// per registered type in the user's translation unit, the error handling is
// out of line. Not part of the public API.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "gamebot/serializers/codec.hpp"
#include "gamebot/serializers/internal/cereal_archives.hpp"
#include "gamebot/serializers/internal/streams.hpp"

namespace gamebot::serializers::internal {

// Who is being encoded/decoded, for error messages.
struct CodecContext {
  std::string_view type_name;
  std::uint32_t version = 0;
  Codec codec = Codec::json;
};

// The archive options used everywhere, so bytes are identical on every host.
inline cereal::JSONOutputArchive::Options json_output_options() {
  return cereal::JSONOutputArchive::Options::NoIndent();
}
inline cereal::PortableBinaryOutputArchive::Options binary_output_options() {
  return cereal::PortableBinaryOutputArchive::Options::LittleEndian();
}

// Must be called from inside a catch block; translate the current exception.
[[noreturn]] void rethrow_encode_failure(const CodecContext& context);
[[noreturn]] void rethrow_json_decode_failure(const CodecContext& context, std::string_view json,
                                              const cereal::JSONInputArchive* archive);
[[noreturn]] void rethrow_binary_decode_failure(const CodecContext& context, std::size_t offset);
[[noreturn]] void throw_trailing_bytes(const CodecContext& context, std::size_t offset,
                                       std::size_t size);

// Throws SerializationError(unrepresentable) if `json` is not something
// PostgreSQL jsonb accepts: NaN/Infinity tokens, \u0000, invalid UTF-8.
void check_json_output(std::string_view json, const CodecContext& context);

// Makes untrusted JSON safe for rapidjson 1.1.0 (Debian's), whose full-precision
// number parser reads out of bounds or hits undefined behaviour on some valid
// numbers (a zero significand with a far exponent, long runs of leading zeros,
// more than 17 digits with a small exponent). Numbers of any other shape than
// the ones rapidjson's own writer produces are rewritten, into `storage`, to
// their shortest round-trip form (same value); the returned view is what to
// parse: `json` itself when nothing needed rewriting (the usual case).
// Throws SerializationError(malformed_input) if the document nests deeper than
// rapidjson's recursive parser can take safely, or holds a number outside the
// range of a double.
std::string_view prepare_json_input(std::string_view json, std::string& storage,
                                    const CodecContext& context);

template <class T>
void encode_value(const T& value, std::string& out, std::size_t reserve,
                  const CodecContext& context) {
  try {
    OutputStreamLease lease(out, reserve);
    if (context.codec == Codec::json) {
      {
        cereal::JSONOutputArchive archive(lease.stream(), json_output_options());
        archive(value);
      }
      lease.finish();
    } else {
      {
        cereal::PortableBinaryOutputArchive archive(lease.stream(), binary_output_options());
        archive(value);
      }
      lease.finish();
    }
  } catch (...) {
    rethrow_encode_failure(context);
  }
  if (context.codec == Codec::json) check_json_output(out, context);
}

template <class T>
void decode_value(T& value, std::string_view bytes, const CodecContext& context) {
  if (context.codec == Codec::json) {
    std::string storage;
    const std::string_view json = prepare_json_input(bytes, storage, context);
    InputStreamLease lease(json);
    std::optional<cereal::JSONInputArchive> archive;
    try {
      archive.emplace(lease.stream());
      (*archive)(value);
    } catch (...) {
      rethrow_json_decode_failure(context, json, archive ? &*archive : nullptr);
    }
  } else {
    std::optional<BoundedPortableBinaryInputArchive> archive;
    try {
      archive.emplace(bytes);
      (*archive)(value);
    } catch (...) {
      rethrow_binary_decode_failure(context, archive ? archive->position() : 0);
    }
    if (archive->remaining() != 0) throw_trailing_bytes(context, archive->position(), bytes.size());
  }
}

}  // namespace gamebot::serializers::internal
