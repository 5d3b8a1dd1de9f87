#pragma once

// A cereal input archive for cereal's portable binary format that reads from
// memory and never trusts the input: every read is bounds-checked, every
// length prefix (cereal::SizeTag) is checked against the bytes that are left
// before any container is sized from it, and bools must be 0 or 1. cereal's own
// PortableBinaryInputArchive would resize a std::string or std::vector to
// whatever a corrupted prefix says (gigabytes, or an allocator abort under
// AddressSanitizer), and would load any byte into a bool (undefined behaviour).
//
// The wire format is exactly cereal's: bytes written by
// cereal::PortableBinaryOutputArchive read back here, and vice versa.
//
// Serialize functions must be templates on the archive (cereal's usual
// `template <class Archive> void serialize(Archive&)`); overloads written for
// cereal::PortableBinaryInputArchive only are not used.
//
// Limitation: a container whose elements encode to zero bytes (a vector of
// empty classes) cannot hold more elements than there are bytes left.

#include <cereal/archives/portable_binary.hpp>
#include <cereal/cereal.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

namespace gamebot::serializers {

class BoundedPortableBinaryInputArchive
    : public cereal::InputArchive<BoundedPortableBinaryInputArchive,
                                  cereal::AllowEmptyClassElision> {
 public:
  // Reads the endianness marker cereal writes first. The archive only borrows
  // `bytes`; they must outlive it. Throws cereal::Exception on a bad marker.
  explicit BoundedPortableBinaryInputArchive(std::string_view bytes)
      : cereal::InputArchive<BoundedPortableBinaryInputArchive, cereal::AllowEmptyClassElision>(
            this),
        bytes_(bytes) {
    std::uint8_t little_endian = 0;
    loadBinary<1>(&little_endian, 1);
    if (little_endian > 1) {
      throw cereal::Exception("bad endianness marker " + std::to_string(little_endian) +
                              " (cereal portable binary starts with 0 or 1)");
    }
    swap_bytes_ = (little_endian == 1) != host_is_little_endian();
  }

  BoundedPortableBinaryInputArchive(const BoundedPortableBinaryInputArchive&) = delete;
  BoundedPortableBinaryInputArchive& operator=(const BoundedPortableBinaryInputArchive&) = delete;
  ~BoundedPortableBinaryInputArchive() noexcept override = default;

  // Reads `size` bytes (whole elements of DataSize bytes) and fixes their byte
  // order. Throws cereal::Exception, leaving position() at the failed read.
  template <std::size_t DataSize>
  void loadBinary(void* data, std::size_t size) {
    if (size > remaining()) {
      throw cereal::Exception("needs " + std::to_string(size) + " bytes, only " +
                              std::to_string(remaining()) + " left");
    }
    if (size != 0) std::memcpy(data, bytes_.data() + position_, size);
    position_ += size;
    if constexpr (DataSize > 1) {
      if (swap_bytes_) {
        auto* p = static_cast<unsigned char*>(data);
        for (std::size_t i = 0; i + DataSize <= size; i += DataSize) {
          for (std::size_t j = 0; j < DataSize / 2; ++j)
            std::swap(p[i + j], p[i + DataSize - 1 - j]);
        }
      }
    }
  }

  // Rejects a length prefix that claims more elements than bytes are left.
  void check_length_prefix(std::uint64_t length) const {
    if (length > remaining()) {
      throw cereal::Exception("length prefix " + std::to_string(length) + " exceeds the " +
                              std::to_string(remaining()) + " bytes left");
    }
  }

  std::size_t position() const noexcept { return position_; }
  std::size_t remaining() const noexcept { return bytes_.size() - position_; }

 private:
  static bool host_is_little_endian() noexcept {
    const std::uint16_t probe = 1;
    unsigned char first = 0;
    std::memcpy(&first, &probe, 1);
    return first == 1;
  }

  std::string_view bytes_;
  std::size_t position_ = 0;
  bool swap_bytes_ = false;
};

// cereal finds these through argument-dependent lookup on the archive type.

template <class T>
std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_LOAD_FUNCTION_NAME(
    BoundedPortableBinaryInputArchive& archive, T& value) {
  static_assert(!std::is_floating_point_v<T> || std::numeric_limits<T>::is_iec559,
                "portable binary only supports IEEE 754 floating point");
  if constexpr (std::is_same_v<T, bool>) {
    std::uint8_t byte = 0;
    archive.loadBinary<1>(&byte, 1);
    if (byte > 1) throw cereal::Exception("bool byte is " + std::to_string(byte) + ", not 0 or 1");
    value = byte == 1;
  } else {
    archive.loadBinary<sizeof(T)>(std::addressof(value), sizeof(T));
  }
}

template <class T>
void CEREAL_SERIALIZE_FUNCTION_NAME(BoundedPortableBinaryInputArchive& archive,
                                    cereal::NameValuePair<T>& pair) {
  archive(pair.value);
}

template <class T>
void CEREAL_SERIALIZE_FUNCTION_NAME(BoundedPortableBinaryInputArchive& archive,
                                    cereal::SizeTag<T>& tag) {
  archive(tag.size);
  archive.check_length_prefix(static_cast<std::uint64_t>(tag.size));
}

template <class T>
void CEREAL_LOAD_FUNCTION_NAME(BoundedPortableBinaryInputArchive& archive,
                               cereal::BinaryData<T>& data) {
  using Element = std::remove_cv_t<std::remove_pointer_t<T>>;
  if constexpr (std::is_void_v<Element>) {
    archive.loadBinary<1>(data.data, static_cast<std::size_t>(data.size));
  } else {
    static_assert(!std::is_floating_point_v<Element> || std::numeric_limits<Element>::is_iec559,
                  "portable binary only supports IEEE 754 floating point");
    archive.loadBinary<sizeof(Element)>(data.data, static_cast<std::size_t>(data.size));
  }
}

}  // namespace gamebot::serializers

CEREAL_REGISTER_ARCHIVE(gamebot::serializers::BoundedPortableBinaryInputArchive)

// Pairs the archive with its output archive for cereal's save/load_minimal
// checks. Only this direction: cereal already maps PortableBinaryOutputArchive
// back to its own input archive.
namespace cereal::traits::detail {
template <>
struct get_output_from_input<gamebot::serializers::BoundedPortableBinaryInputArchive> {
  using type = cereal::PortableBinaryOutputArchive;
};
}  // namespace cereal::traits::detail
