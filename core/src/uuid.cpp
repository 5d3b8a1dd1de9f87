#include "gamebot/core/uuid.hpp"

#include <chrono>
#include <cstring>
#include <mutex>
#include <random>

namespace gamebot {
namespace {

std::uint64_t random_u64() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return engine();
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Uuid Uuid::v7() {
  // A process-wide monotonic (millis, counter) pair keeps ids strictly
  // increasing even when many are made within one millisecond.
  static std::mutex mutex;
  static std::uint64_t last_millis = 0;
  static std::uint16_t counter = 0;

  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::uint64_t millis = static_cast<std::uint64_t>(now);
  std::uint16_t seq = 0;
  {
    std::lock_guard lock(mutex);
    if (millis <= last_millis) {
      millis = last_millis;
      if (++counter > 0x0FFF) {  // counter overflow: borrow the next millisecond
        ++millis;
        counter = 0;
      }
    } else {
      counter = static_cast<std::uint16_t>(random_u64() & 0x01FF);
    }
    last_millis = millis;
    seq = counter;
  }
  Bytes b{};
  for (int i = 0; i < 6; ++i) b[i] = static_cast<std::uint8_t>(millis >> (8 * (5 - i)));
  b[6] = static_cast<std::uint8_t>(0x70 | ((seq >> 8) & 0x0F));
  b[7] = static_cast<std::uint8_t>(seq & 0xFF);
  std::uint64_t r = random_u64();
  for (int i = 8; i < 16; ++i) b[i] = static_cast<std::uint8_t>(r >> (8 * (i - 8)));
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3F) | 0x80);
  return Uuid(b);
}

Uuid Uuid::v4() {
  Bytes b{};
  std::uint64_t hi = random_u64();
  std::uint64_t lo = random_u64();
  std::memcpy(b.data(), &hi, 8);
  std::memcpy(b.data() + 8, &lo, 8);
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0F) | 0x40);
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3F) | 0x80);
  return Uuid(b);
}

std::optional<Uuid> Uuid::parse(std::string_view text) noexcept {
  if (text.size() != 36) return std::nullopt;
  Bytes b{};
  std::size_t out = 0;
  for (std::size_t i = 0; i < text.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return std::nullopt;
      ++i;
      continue;
    }
    int hi = hex_value(text[i]);
    int lo = hex_value(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    b[out++] = static_cast<std::uint8_t>((hi << 4) | lo);
    i += 2;
  }
  return Uuid(b);
}

bool Uuid::is_nil() const noexcept {
  for (auto byte : bytes_) {
    if (byte != 0) return false;
  }
  return true;
}

std::string Uuid::to_string() const {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(digits[bytes_[i] >> 4]);
    s.push_back(digits[bytes_[i] & 0x0F]);
  }
  return s;
}

}  // namespace gamebot

std::size_t std::hash<gamebot::Uuid>::operator()(const gamebot::Uuid& id) const noexcept {
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  std::memcpy(&a, id.bytes().data(), 8);
  std::memcpy(&b, id.bytes().data() + 8, 8);
  return static_cast<std::size_t>(a ^ (b * 0x9E3779B97F4A7C15ULL));
}
