#pragma once

// Type-erased operations on one registered C++ type, one constant table per
// type. Not part of the public API.

#include <any>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

#include "gamebot/serializers/internal/codec_io.hpp"

namespace gamebot::serializers::internal {

struct TypeOps {
  const std::type_info* type;
  // Encodes the T at `value` into `out` (replacing its contents).
  void (*encode)(const void* value, std::string& out, std::size_t reserve,
                 const CodecContext& context);
  // Decodes bytes into a T held by the returned std::any.
  std::any (*decode)(std::string_view bytes, const CodecContext& context);
  // operator== on two std::any that hold a T.
  bool (*equal)(const std::any& a, const std::any& b);
  // Address of the T inside `value`, or nullptr when it holds something else.
  const void* (*address)(const std::any& value) noexcept;
};

template <class T>
void encode_erased(const void* value, std::string& out, std::size_t reserve,
                   const CodecContext& context) {
  encode_value(*static_cast<const T*>(value), out, reserve, context);
}

template <class T>
std::any decode_erased(std::string_view bytes, const CodecContext& context) {
  std::any result(std::in_place_type<T>);
  decode_value(*std::any_cast<T>(&result), bytes, context);
  return result;
}

template <class T>
bool equal_erased(const std::any& a, const std::any& b) {
  const T* left = std::any_cast<T>(&a);
  const T* right = std::any_cast<T>(&b);
  return left != nullptr && right != nullptr && *left == *right;
}

template <class T>
const void* address_erased(const std::any& value) noexcept {
  return std::any_cast<T>(&value);
}

template <class T>
inline constexpr TypeOps type_ops{&typeid(T), &encode_erased<T>, &decode_erased<T>,
                                  &equal_erased<T>, &address_erased<T>};

// One step of an upcaster chain: bytes of `from_version` decode with `ops`
// (the old C++ type) and `apply` turns that value into version from_version + 1.
struct Upcaster {
  std::uint32_t from_version = 0;
  const TypeOps* ops = nullptr;
  const std::type_info* to_type = nullptr;
  std::function<std::any(std::any&&)> apply;
  std::vector<std::any> samples;  // values of the old type
};

// Demangled C++ type name for messages.
std::string type_display_name(const std::type_info& type);

}  // namespace gamebot::serializers::internal
