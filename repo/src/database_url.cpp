#include "gamebot/repo/database_url.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <algorithm>
#include <charconv>
#include <mutex>
#include <set>

#include "gamebot/core/error.hpp"

namespace gamebot::repo {

std::string_view to_string(Driver driver) noexcept {
  switch (driver) {
    case Driver::sqlite:
      return "sqlite";
    case Driver::postgres:
      return "postgres";
    case Driver::memory:
      return "memory";
  }
  return "sqlite";
}

bool is_secret_keyword(std::string_view key) noexcept {
  return std::find(kSecretKeywords.begin(), kSecretKeywords.end(), key) != kSecretKeywords.end();
}

namespace {

[[noreturn]] void bad(const std::string& what) {
  throw gamebot::Error(FaultClass::configuration, "malformed database URL: " + what);
}

const std::set<std::string, std::less<>>& libpq_keywords() {
  static const std::set<std::string, std::less<>> keywords = [] {
    std::set<std::string, std::less<>> out;
    PQconninfoOption* options = PQconndefaults();
    if (options != nullptr) {
      for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) out.insert(o->keyword);
      PQconninfoFree(options);
    }
    return out;
  }();
  return keywords;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `text`; `part` names it in the error (the text itself is not echoed, so a
// password is never shown).
std::string percent_decode(std::string_view text, std::string_view part) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) bad(fmt::format("bad percent-encoding in the {}", part));
    int hi = hex_digit(text[i + 1]);
    int lo = hex_digit(text[i + 2]);
    if (hi < 0 || lo < 0) bad(fmt::format("bad percent-encoding in the {}", part));
    char decoded = static_cast<char>((hi << 4) | lo);
    if (decoded == '\0') bad(fmt::format("percent-encoded NUL in the {}", part));
    out.push_back(decoded);
    i += 2;
  }
  return out;
}

std::string percent_encode(std::string_view text, bool keep_slash = false) {
  std::string out;
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out.push_back(c);
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A port that is not digits is not echoed: in "postgres://user:secret" (no '@host') the
// password stands where a port would.
void check_port(std::string_view port) {
  if (!all_digits(port)) bad("a port is not a number between 1 and 65535");
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || ptr != port.data() + port.size() || value == 0 || value > 65535) {
    bad(fmt::format("port '{}' is not a number between 1 and 65535", port));
  }
}

bool equals_nocase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && equals_nocase(text.substr(0, prefix.size()), prefix);
}

bool is_store_parameter(std::string_view key) {
  return std::find(kStoreParameters.begin(), kStoreParameters.end(), key) != kStoreParameters.end();
}

// Checks a store parameter's value; returns it normalised (json_data: "true" or "false").
std::string check_store_parameter(std::string_view key, std::string value) {
  if (key == "schema") {
    if (value.empty()) bad("store parameter 'schema' is empty");
    return value;
  }
  if (key == "notify") {
    if (value != "listen" && value != "poll") {
      bad(fmt::format("store parameter 'notify' must be listen or poll, not '{}'", value));
    }
    return value;
  }
  if (key == "pooling") {
    if (value != "none" && value != "transaction") {
      bad(fmt::format("store parameter 'pooling' must be none or transaction, not '{}'", value));
    }
    return value;
  }
  for (std::string_view yes : {"true", "1", "on", "yes"}) {
    if (equals_nocase(value, yes)) return "true";
  }
  for (std::string_view no : {"false", "0", "off", "no"}) {
    if (equals_nocase(value, no)) return "false";
  }
  bad(fmt::format("store parameter '{}' must be true or false, not '{}'", key, value));
}

const std::set<std::string, std::less<>> kSqliteKeys = {
    "mode", "busy_timeout", "synchronous", "journal_mode", "foreign_keys", "shared"};

void check_sqlite_parameter(std::string_view key, std::string_view value) {
  auto one_of = [&](std::initializer_list<std::string_view> allowed) {
    if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
      bad(fmt::format("sqlite parameter '{}' has an invalid value '{}'", key, value));
    }
  };
  if (key == "mode") {
    one_of({"ro", "rw", "rwc"});
  } else if (key == "busy_timeout") {
    if (!all_digits(value))
      bad(fmt::format("sqlite parameter 'busy_timeout' must be milliseconds"));
  } else if (key == "synchronous") {
    one_of({"off", "normal", "full", "extra"});
  } else if (key == "journal_mode") {
    one_of({"wal", "delete", "truncate", "persist", "memory", "off"});
  } else if (key == "foreign_keys") {
    one_of({"on", "off", "true", "false", "1", "0"});
  } else if (key == "shared") {
    if (value.empty()) bad("sqlite parameter 'shared' needs a name");
  } else {
    bad(fmt::format("unknown sqlite parameter '{}'", key));
  }
}

void check_postgres_keyword(std::string_view key) {
  if (!libpq_keywords().contains(key)) {
    bad(fmt::format("unknown PostgreSQL connection parameter '{}'", key));
  }
}

}  // namespace

class DatabaseUrlParser {
 public:
  static void set_postgres_parameter(DatabaseUrl& url, std::string_view key, std::string value) {
    if (key == "password") {
      url.password_ = std::move(value);
    } else if (key == "user") {
      url.user_ = std::move(value);
    } else if (key == "host") {
      url.host_ = std::move(value);
    } else if (key == "port") {
      for (std::size_t start = 0; start <= value.size();) {
        std::size_t comma = value.find(',', start);
        std::string_view one = std::string_view(value).substr(
            start, comma == std::string::npos ? std::string::npos : comma - start);
        check_port(one);
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
      url.port_ = std::move(value);
    } else if (key == "dbname") {
      url.database_ = std::move(value);
    } else if (is_store_parameter(key)) {
      set_pair(url.store_parameters_, key, check_store_parameter(key, std::move(value)));
    } else {
      check_postgres_keyword(key);
      set_pair(url.parameters_, key, std::move(value));
    }
  }

  static void set_pair(std::vector<std::pair<std::string, std::string>>& pairs,
                       std::string_view key, std::string value) {
    auto it =
        std::find_if(pairs.begin(), pairs.end(), [&](const auto& p) { return p.first == key; });
    if (it != pairs.end()) {
      it->second = std::move(value);
    } else {
      pairs.emplace_back(std::string(key), std::move(value));
    }
  }

  static void set_sqlite_parameter(DatabaseUrl& url, std::string_view key, std::string value) {
    check_sqlite_parameter(key, value);
    if (key == "shared") {
      if (!url.in_memory_) bad("sqlite parameter 'shared' applies to sqlite::memory: only");
      url.shared_name_ = std::move(value);
      return;
    }
    set_pair(url.parameters_, key, std::move(value));
  }

  static void parse_query(DatabaseUrl& url, std::string_view query) {
    std::string previous_key;
    while (!query.empty()) {
      std::size_t amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      if (pair.empty()) continue;
      std::size_t eq = pair.find('=');
      // Not echoed: a secret with an unencoded '&' is cut there.
      if (eq == std::string_view::npos) {
        bad(previous_key.empty()
                ? std::string("a query parameter has no '='")
                : fmt::format("the query text after parameter '{}' has no '=' (percent-encode "
                              "'&' in values)",
                              previous_key));
      }
      std::string key = percent_decode(pair.substr(0, eq), "query parameter name");
      if (key.empty()) bad("query parameter with an empty name");
      previous_key = key;
      std::string value =
          percent_decode(pair.substr(eq + 1), is_secret_keyword(key) ? std::string("a secret")
                                                                     : "value of '" + key + "'");
      if (url.driver_ == Driver::sqlite) {
        set_sqlite_parameter(url, key, std::move(value));
      } else {
        set_postgres_parameter(url, key, std::move(value));
      }
    }
  }

  static DatabaseUrl parse_sqlite(std::string_view rest) {
    DatabaseUrl url;
    url.driver_ = Driver::sqlite;
    std::string_view query;
    if (std::size_t q = rest.find('?'); q != std::string_view::npos) {
      query = rest.substr(q + 1);
      rest = rest.substr(0, q);
    }
    if (rest == ":memory:") {
      url.in_memory_ = true;
    } else {
      if (rest.starts_with("//")) {
        if (rest.size() < 3 || rest[2] != '/') {
          bad("sqlite URLs take a path (sqlite:relative/file.db, sqlite:/abs/file.db or "
              "sqlite:///abs/file.db), not a host");
        }
        rest.remove_prefix(2);
      }
      if (rest.empty()) bad("sqlite URL without a path");
      url.path_ = percent_decode(rest, "sqlite path");
    }
    parse_query(url, query);
    return url;
  }

  static DatabaseUrl parse_postgres_uri(std::string_view text, std::size_t scheme_end) {
    DatabaseUrl url;
    url.driver_ = Driver::postgres;
    std::string_view rest = text.substr(scheme_end);
    std::size_t authority_end = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, authority_end);
    std::string_view after =
        authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
    if (after.find('#') != std::string_view::npos) bad("fragments ('#') are not allowed");

    std::size_t at = authority.rfind('@');
    if (at == std::string_view::npos) {
      // "user:pa/ss@host": an unencoded '/', '?' or '#' in the password cut the authority short.
      std::size_t colon = authority.rfind(':');
      bool port_like =
          colon != std::string_view::npos &&
          (all_digits(authority.substr(colon + 1)) || authority.substr(colon + 1).empty() ||
           authority.find(']') != std::string_view::npos);
      if (colon != std::string_view::npos && !port_like &&
          after.find('@') != std::string_view::npos) {
        bad("the user/password part contains '/', '?' or '#'; percent-encode them");
      }
    } else {
      std::string_view userinfo = authority.substr(0, at);
      authority = authority.substr(at + 1);
      std::size_t colon = userinfo.find(':');
      url.user_ = percent_decode(userinfo.substr(0, colon), "user name");
      if (colon != std::string_view::npos) {
        url.password_ = percent_decode(userinfo.substr(colon + 1), "password");
      }
    }

    // Host list: h1:p1,h2:p2 ; [v6]:port ; percent-encoded socket dirs.
    std::string hosts;
    std::string ports;
    bool any_port = false;
    std::size_t count = 0;
    while (true) {
      std::size_t comma = authority.find(',');
      std::string_view one = authority.substr(0, comma);
      std::string_view host_part = one;
      std::string_view port_part;
      if (one.starts_with('[')) {
        std::size_t close = one.find(']');
        if (close == std::string_view::npos) bad("IPv6 host without a closing ']'");
        host_part = one.substr(1, close - 1);
        std::string_view tail = one.substr(close + 1);
        if (!tail.empty()) {
          if (tail[0] != ':') bad(fmt::format("unexpected text after IPv6 host '{}'", host_part));
          port_part = tail.substr(1);
        }
      } else if (std::size_t colon = one.rfind(':'); colon != std::string_view::npos) {
        host_part = one.substr(0, colon);
        port_part = one.substr(colon + 1);
      }
      if (!port_part.empty()) {
        check_port(port_part);
        any_port = true;
      }
      std::string host = percent_decode(host_part, "host");
      if (count > 0) {
        hosts += ',';
        ports += ',';
      }
      hosts += host;
      ports += port_part;
      ++count;
      if (comma == std::string_view::npos) break;
      authority = authority.substr(comma + 1);
    }
    url.host_ = hosts;
    if (std::all_of(url.host_.begin(), url.host_.end(), [](char c) { return c == ','; })) {
      url.host_.clear();
    }
    if (any_port) url.port_ = ports;

    std::string_view query;
    if (!after.empty() && after[0] == '/') {
      std::size_t q = after.find('?');
      url.database_ =
          percent_decode(after.substr(1, q == std::string_view::npos ? q : q - 1), "database name");
      after = q == std::string_view::npos ? std::string_view() : after.substr(q);
    }
    if (!after.empty() && after[0] == '?') query = after.substr(1);
    parse_query(url, query);
    return url;
  }

  // libpq key=value syntax: spaces around '=', single-quoted values with \' and \\ escapes.
  static DatabaseUrl parse_keyword_value(std::string_view text) {
    DatabaseUrl url;
    url.driver_ = Driver::postgres;
    std::size_t i = 0;
    auto skip_space = [&] {
      while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    };
    while (true) {
      skip_space();
      if (i >= text.size()) break;
      std::size_t key_start = i;
      while (i < text.size() && text[i] != '=' &&
             !std::isspace(static_cast<unsigned char>(text[i]))) {
        ++i;
      }
      std::string key(text.substr(key_start, i - key_start));
      skip_space();
      if (i >= text.size() || text[i] != '=') {
        // Only a known keyword is echoed: the stray word may be part of an unquoted secret.
        if (libpq_keywords().contains(key) || is_store_parameter(key)) {
          bad(fmt::format("missing '=' after '{}' in the key=value string", key));
        }
        bad("a word without '=' in the key=value string (quote values containing spaces)");
      }
      ++i;
      skip_space();
      std::string value;
      if (i < text.size() && text[i] == '\'') {
        ++i;
        bool closed = false;
        while (i < text.size()) {
          char c = text[i++];
          if (c == '\\' && i < text.size()) {
            value.push_back(text[i++]);
          } else if (c == '\'') {
            closed = true;
            break;
          } else {
            value.push_back(c);
          }
        }
        if (!closed) bad(fmt::format("unterminated quoted value of '{}'", key));
      } else {
        while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) {
          char c = text[i++];
          if (c == '\\' && i < text.size()) c = text[i++];
          value.push_back(c);
        }
      }
      set_postgres_parameter(url, key, std::move(value));
    }
    return url;
  }
};

const std::string& DatabaseUrl::password() const noexcept {
  static const std::string empty;
  return password_ ? *password_ : empty;
}

DatabaseUrl DatabaseUrl::parse(std::string_view text) {
  if (text.empty()) bad("empty URL");
  if (starts_with_nocase(text, "memory:")) {
    if (text.size() != 7 && !equals_nocase(text, "memory://")) {
      bad("memory: takes no path or parameters (use memory:)");
    }
    DatabaseUrl url;
    url.driver_ = Driver::memory;
    return url;
  }
  if (starts_with_nocase(text, "sqlite:")) return DatabaseUrlParser::parse_sqlite(text.substr(7));
  if (starts_with_nocase(text, "postgresql://")) {
    return DatabaseUrlParser::parse_postgres_uri(text, 13);
  }
  if (starts_with_nocase(text, "postgres://")) {
    return DatabaseUrlParser::parse_postgres_uri(text, 11);
  }
  std::size_t colon = text.find(':');
  std::size_t eq = text.find('=');
  if (eq != std::string_view::npos && (colon == std::string_view::npos || eq < colon)) {
    return DatabaseUrlParser::parse_keyword_value(text);
  }
  if (colon != std::string_view::npos) {
    std::string_view scheme = text.substr(0, colon);
    bool plausible = !scheme.empty() && std::all_of(scheme.begin(), scheme.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
    });
    if (plausible) {
      bad(fmt::format(
          "unsupported scheme '{}' (use memory:, sqlite:, postgres:// or postgresql://)", scheme));
    }
  }
  bad("no scheme (use memory:, sqlite:PATH, sqlite::memory:, postgres://... or libpq "
      "key=value)");
}

DatabaseUrl DatabaseUrl::sqlite_file(std::string path) {
  if (path.empty()) bad("sqlite URL without a path");
  DatabaseUrl url;
  url.driver_ = Driver::sqlite;
  url.path_ = std::move(path);
  return url;
}

DatabaseUrl DatabaseUrl::sqlite_memory(std::string shared_name) {
  DatabaseUrl url;
  url.driver_ = Driver::sqlite;
  url.in_memory_ = true;
  url.shared_name_ = std::move(shared_name);
  return url;
}

std::optional<std::string> DatabaseUrl::parameter(std::string_view key) const {
  for (const auto& [k, v] : parameters_) {
    if (k == key) return v;
  }
  return std::nullopt;
}

std::optional<std::string> DatabaseUrl::store_parameter(std::string_view key) const {
  for (const auto& [k, v] : store_parameters_) {
    if (k == key) return v;
  }
  return std::nullopt;
}

std::vector<std::string> DatabaseUrl::secrets() const {
  std::vector<std::string> out;
  if (password_ && !password_->empty()) out.push_back(*password_);
  for (const auto& [key, value] : parameters_) {
    if (is_secret_keyword(key) && !value.empty()) out.push_back(value);
  }
  return out;
}

std::string DatabaseUrl::scrub(std::string text) const {
  for (const std::string& secret : secrets()) {
    for (std::size_t at = text.find(secret); at != std::string::npos;
         at = text.find(secret, at + 3)) {
      text.replace(at, secret.size(), "***");
    }
  }
  return text;
}

DatabaseUrl DatabaseUrl::with_database(std::string database) const {
  DatabaseUrl copy = *this;
  if (driver_ == Driver::memory) bad("memory: names no database");
  if (driver_ == Driver::postgres) {
    copy.database_ = std::move(database);
  } else if (in_memory_) {
    copy.shared_name_ = std::move(database);
  } else {
    if (database.empty()) bad("sqlite URL without a path");
    copy.path_ = std::move(database);
  }
  return copy;
}

DatabaseUrl DatabaseUrl::with_parameter(std::string_view key, std::string value) const {
  DatabaseUrl copy = *this;
  if (driver_ == Driver::memory) bad("memory: takes no parameters");
  if (driver_ == Driver::postgres) {
    DatabaseUrlParser::set_postgres_parameter(copy, key, std::move(value));
  } else {
    DatabaseUrlParser::set_sqlite_parameter(copy, key, std::move(value));
  }
  return copy;
}

std::string DatabaseUrl::redacted() const {
  std::string query;
  auto add = [&](std::string_view key, std::string_view value) {
    query += query.empty() ? '?' : '&';
    query += percent_encode(key);
    query += '=';
    query += is_secret_keyword(key) ? std::string("***") : percent_encode(value, true);
  };
  if (driver_ == Driver::memory) return "memory:";
  if (driver_ == Driver::sqlite) {
    std::string out = in_memory_ ? "sqlite::memory:" : "sqlite:" + path_;
    if (!shared_name_.empty()) add("shared", shared_name_);
    for (const auto& [k, v] : parameters_) add(k, v);
    return out + query;
  }
  std::string out = "postgresql://";
  if (!user_.empty() || password_) {
    out += percent_encode(user_);
    if (password_) out += ":***";
    out += '@';
  }
  bool socket_host = host_.find('/') != std::string::npos;
  if (socket_host) {
    add("host", host_);
    if (!port_.empty()) add("port", port_);
  } else {
    // Pair hosts with ports.
    std::string_view hosts = host_;
    std::string_view ports = port_;
    bool first = true;
    while (!hosts.empty() || !ports.empty() || first) {
      std::size_t hc = hosts.find(',');
      std::size_t pc = ports.find(',');
      std::string_view h = hosts.substr(0, hc);
      std::string_view p = ports.substr(0, pc);
      if (!first) out += ',';
      if (h.find(':') != std::string_view::npos) {
        out += '[';
        out.append(h);
        out += ']';
      } else {
        out += percent_encode(h);
      }
      if (!p.empty()) {
        out += ':';
        out.append(p);
      }
      first = false;
      hosts = hc == std::string_view::npos ? std::string_view() : hosts.substr(hc + 1);
      ports = pc == std::string_view::npos ? std::string_view() : ports.substr(pc + 1);
    }
  }
  out += '/';
  out += percent_encode(database_);
  for (const auto& [k, v] : parameters_) add(k, v);
  for (const auto& [k, v] : store_parameters_) add(k, v);
  return out + query;
}

std::string DatabaseUrl::describe_target() const {
  if (driver_ == Driver::memory) return "in-process memory store";
  if (driver_ == Driver::sqlite) {
    if (in_memory_) {
      return shared_name_.empty() ? "sqlite in-memory database"
                                  : "sqlite shared in-memory database '" + shared_name_ + "'";
    }
    return "sqlite file " + path_;
  }
  return fmt::format("host {} port {} user {} database {}", host_.empty() ? "(default)" : host_,
                     port_.empty() ? "(default)" : port_, user_.empty() ? "(default)" : user_,
                     database_.empty() ? "(default)" : database_);
}

}  // namespace gamebot::repo
