#include "gamebot/harness/url.hpp"

#include <algorithm>
#include <cctype>
#include <string>

#include "gamebot/core/error.hpp"

namespace gamebot::harness {
namespace {

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  return std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) ==
           std::tolower(static_cast<unsigned char>(b));
  });
}

// Redacts the value of every `password=` parameter (query string or libpq
// keyword/value form; quoted values included).
std::string redact_password_parameters(std::string text) {
  static constexpr std::string_view key = "password=";
  std::size_t search_from = 0;
  while (search_from < text.size()) {
    std::size_t found = std::string::npos;
    for (std::size_t i = search_from; i + key.size() <= text.size(); ++i) {
      bool at_boundary = i == 0 || text[i - 1] == '?' || text[i - 1] == '&' ||
                         std::isspace(static_cast<unsigned char>(text[i - 1]));
      if (at_boundary && starts_with_nocase(std::string_view(text).substr(i), key)) {
        found = i;
        break;
      }
    }
    if (found == std::string::npos) break;
    std::size_t value_begin = found + key.size();
    std::size_t value_end = value_begin;
    if (value_end < text.size() && text[value_end] == '\'') {
      ++value_end;
      while (value_end < text.size() && text[value_end] != '\'') {
        if (text[value_end] == '\\') ++value_end;
        ++value_end;
      }
      value_end = std::min(text.size(), value_end + 1);
    } else {
      while (value_end < text.size() && text[value_end] != '&' && text[value_end] != '#' &&
             !std::isspace(static_cast<unsigned char>(text[value_end]))) {
        ++value_end;
      }
    }
    text.replace(value_begin, value_end - value_begin, "***");
    search_from = value_begin + 3;
  }
  return text;
}

}  // namespace

Backend backend_of_url(std::string_view url, std::string_view option_name) {
  if (starts_with_nocase(url, "memory:")) return Backend::memory;
  if (starts_with_nocase(url, "sqlite:")) {
    if (url.size() == std::string_view("sqlite:").size()) {
      throw Error(FaultClass::configuration,
                  std::string(option_name) +
                      ": 'sqlite:' needs a path (sqlite:/path/file.db or sqlite::memory:)");
    }
    return Backend::sqlite;
  }
  if (starts_with_nocase(url, "postgres://") || starts_with_nocase(url, "postgresql://")) {
    return Backend::postgres;
  }
  throw Error(FaultClass::configuration,
              std::string(option_name) + ": unrecognised database URL '" + redact_url(url) +
                  "' (expected memory:, sqlite:PATH, sqlite::memory:, postgres://... or "
                  "postgresql://...)");
}

std::string redact_url(std::string_view url) {
  std::string text(url);
  if (std::size_t scheme_end = text.find("://"); scheme_end != std::string::npos) {
    std::size_t authority_begin = scheme_end + 3;
    std::size_t authority_end = text.find_first_of("?#", authority_begin);
    if (authority_end == std::string::npos) authority_end = text.size();
    std::size_t at = text.rfind('@', authority_end == 0 ? 0 : authority_end - 1);
    if (at != std::string::npos && at >= authority_begin) {
      std::size_t colon = text.find(':', authority_begin);
      if (colon != std::string::npos && colon < at) {
        text.replace(colon + 1, at - colon - 1, "***");
      }
    }
  }
  return redact_password_parameters(std::move(text));
}

std::string percent_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~' || c == '/') {
      out += c;
    } else {
      out += '%';
      out += hex[byte >> 4];
      out += hex[byte & 0x0f];
    }
  }
  return out;
}

}  // namespace gamebot::harness
