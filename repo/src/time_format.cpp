#include "time_format.hpp"

#include <fmt/format.h>

#include <charconv>
#include <chrono>

namespace gamebot::repo::internal {
namespace {

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

bool read_int(std::string_view text, std::size_t& pos, std::size_t digits, int& out) {
  if (pos + digits > text.size()) return false;
  int value = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    char c = text[pos + i];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  pos += digits;
  out = value;
  return true;
}

}  // namespace

std::string format_timestamp_utc(std::int64_t unix_micros) {
  using namespace std::chrono;
  std::int64_t days = floor_div(unix_micros, 86'400'000'000LL);
  std::int64_t rem = unix_micros - days * 86'400'000'000LL;
  year_month_day ymd{sys_days{std::chrono::days{days}}};
  std::int64_t secs = rem / 1'000'000;
  std::int64_t micros = rem % 1'000'000;
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                     secs / 3600, (secs / 60) % 60, secs % 60, micros);
}

std::optional<std::int64_t> parse_timestamp(std::string_view text) {
  using namespace std::chrono;
  std::size_t pos = 0;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!read_int(text, pos, 4, y) || pos >= text.size() || text[pos++] != '-') return std::nullopt;
  if (!read_int(text, pos, 2, mo) || pos >= text.size() || text[pos++] != '-') return std::nullopt;
  if (!read_int(text, pos, 2, d)) return std::nullopt;
  std::int64_t micros = 0;
  if (pos < text.size()) {
    if (text[pos] != ' ' && text[pos] != 'T') return std::nullopt;
    ++pos;
    if (!read_int(text, pos, 2, h) || pos >= text.size() || text[pos++] != ':') return std::nullopt;
    if (!read_int(text, pos, 2, mi)) return std::nullopt;
    if (pos < text.size() && text[pos] == ':') {
      ++pos;
      if (!read_int(text, pos, 2, s)) return std::nullopt;
      if (pos < text.size() && text[pos] == '.') {
        ++pos;
        std::int64_t scale = 100000;
        std::size_t start = pos;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
          if (scale > 0) micros += (text[pos] - '0') * scale;
          scale /= 10;
          ++pos;
        }
        if (pos == start) return std::nullopt;
      }
    }
  }
  std::int64_t offset_minutes = 0;
  if (pos < text.size()) {
    char z = text[pos];
    if (z == 'Z' || z == 'z') {
      ++pos;
    } else if (z == '+' || z == '-') {
      ++pos;
      int oh = 0, om = 0;
      if (!read_int(text, pos, 2, oh)) return std::nullopt;
      if (pos < text.size() && text[pos] == ':') ++pos;
      if (pos < text.size()) {
        if (!read_int(text, pos, 2, om)) return std::nullopt;
      }
      offset_minutes = (std::int64_t{oh} * 60 + om) * (z == '+' ? 1 : -1);
    } else {
      return std::nullopt;
    }
  }
  if (pos != text.size()) return std::nullopt;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 60) return std::nullopt;
  std::int64_t days = sys_days{ymd}.time_since_epoch().count();
  std::int64_t seconds =
      days * 86400 + std::int64_t{h} * 3600 + std::int64_t{mi} * 60 + s - offset_minutes * 60;
  return seconds * 1'000'000 + micros;
}

std::string format_wall_clock(std::int64_t unix_micros) {
  std::int64_t rem = unix_micros - floor_div(unix_micros, 86'400'000'000LL) * 86'400'000'000LL;
  std::int64_t secs = rem / 1'000'000;
  return fmt::format("{:02}:{:02}:{:02}.{:03} UTC", secs / 3600, (secs / 60) % 60, secs % 60,
                     (rem % 1'000'000) / 1000);
}

}  // namespace gamebot::repo::internal
