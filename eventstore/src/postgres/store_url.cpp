// parse_postgres_store_url: the store's own query parameters are taken out of a
// postgres:// URL before the rest goes to repo::DatabaseUrl (which accepts only
// libpq keywords).

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "gamebot/eventstore/errors.hpp"
#include "gamebot/eventstore/postgres_backend.hpp"

namespace gamebot::eventstore {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view text, std::string_view key) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%') {
      const int high = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
      const int low = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
      if (high < 0 || low < 0) {
        throw InvalidArgument(fmt::format("bad percent-encoding in URL parameter '{}'", key));
      }
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else if (text[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

bool parse_flag(std::string value, std::string_view key) {
  std::transform(value.begin(), value.end(), value.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (value == "true" || value == "1" || value == "on" || value == "yes") return true;
  if (value == "false" || value == "0" || value == "off" || value == "no") return false;
  throw InvalidArgument(
      fmt::format("URL parameter '{}' must be true or false, not '{}'", key, value));
}

}  // namespace

PostgresStoreUrl parse_postgres_store_url(std::string_view url, PostgresBackendOptions defaults) {
  if (!url.starts_with("postgres://") && !url.starts_with("postgresql://")) {
    throw InvalidArgument(fmt::format(
        "a PostgreSQL event store URL starts with postgres:// or postgresql:// (got a URL with "
        "scheme '{}')",
        url.substr(0, url.find(':'))));
  }
  PostgresStoreUrl result;
  result.options = std::move(defaults);
  const std::size_t question = url.find('?');
  if (question == std::string_view::npos) {
    result.database_url = std::string(url);
    return result;
  }
  std::string kept;
  std::string_view query = url.substr(question + 1);
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    const std::string_view key = item.substr(0, eq);
    const std::string value =
        eq == std::string_view::npos ? std::string() : percent_decode(item.substr(eq + 1), key);
    if (key == "schema") {
      if (value.empty()) throw InvalidArgument("URL parameter 'schema' is empty");
      result.options.schema = value;
    } else if (key == "notify") {
      if (value == "listen") {
        result.options.notifications = PostgresNotifications::listen;
      } else if (value == "poll") {
        result.options.notifications = PostgresNotifications::poll;
      } else {
        throw InvalidArgument(
            fmt::format("URL parameter 'notify' must be listen or poll, not '{}'", value));
      }
    } else if (key == "json_data") {
      result.options.json_data = parse_flag(value, key);
    } else {
      if (!kept.empty()) kept.push_back('&');
      kept.append(item);
    }
  }
  result.database_url = std::string(url.substr(0, question));
  if (!kept.empty()) result.database_url += "?" + kept;
  return result;
}

}  // namespace gamebot::eventstore
