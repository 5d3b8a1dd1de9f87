#include "gamebot/repo/postgres_connection.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gamebot/repo/connection_budget.hpp"
#include "gamebot/repo/errors.hpp"
#include "gamebot/repo/logging.hpp"
#include "time_format.hpp"

namespace gamebot::repo {
namespace {

// Type OIDs (pg_type.dat); stable across PostgreSQL versions.
enum Oid : unsigned {
  kBool = 16,
  kBytea = 17,
  kChar = 18,
  kName = 19,
  kInt8 = 20,
  kInt2 = 21,
  kInt4 = 23,
  kText = 25,
  kOid = 26,
  kJson = 114,
  kXml = 142,
  kFloat4 = 700,
  kFloat8 = 701,
  kUnknown = 705,
  kBpchar = 1042,
  kVarchar = 1043,
  kDate = 1082,
  kTimestamp = 1114,
  kTimestamptz = 1184,
  kNumeric = 1700,
  kUuid = 2950,
  kJsonb = 3802,
};

constexpr std::int64_t kPgEpochMicros = 946'684'800'000'000LL;  // 2000-01-01 in Unix micros

bool is_text_oid(unsigned oid) {
  return oid == kText || oid == kVarchar || oid == kBpchar || oid == kName || oid == kJson ||
         oid == kXml || oid == kUnknown || oid == kChar;
}

std::string oid_name(unsigned oid) {
  switch (oid) {
    case kBool:
      return "boolean";
    case kBytea:
      return "bytea";
    case kChar:
      return "\"char\"";
    case kName:
      return "name";
    case kInt8:
      return "bigint";
    case kInt2:
      return "smallint";
    case kInt4:
      return "integer";
    case kText:
      return "text";
    case kOid:
      return "oid";
    case kJson:
      return "json";
    case kXml:
      return "xml";
    case kFloat4:
      return "real";
    case kFloat8:
      return "double precision";
    case kUnknown:
      return "unknown";
    case kBpchar:
      return "character";
    case kVarchar:
      return "character varying";
    case kDate:
      return "date";
    case kTimestamp:
      return "timestamp";
    case kTimestamptz:
      return "timestamptz";
    case kNumeric:
      return "numeric";
    case kUuid:
      return "uuid";
    case kJsonb:
      return "jsonb";
    default:
      return fmt::format("type oid {} (cast it to text in SQL)", oid);
  }
}

std::uint64_t read_be(const char* data, int bytes) {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value = (value << 8) | static_cast<unsigned char>(data[i]);
  return value;
}

std::string snippet(std::string_view sql) {
  constexpr std::size_t limit = 160;
  std::string out(sql.substr(0, limit));
  for (char& c : out) {
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
  }
  if (sql.size() > limit) out += "...";
  return out;
}

std::string trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// Decodes the binary numeric format to its decimal text.
std::string numeric_to_string(const char* data, int length) {
  if (length < 8) return "NaN";
  int ndigits = static_cast<std::int16_t>(read_be(data, 2));
  int weight = static_cast<std::int16_t>(read_be(data + 2, 2));
  unsigned sign = static_cast<unsigned>(read_be(data + 4, 2));
  int dscale = static_cast<std::int16_t>(read_be(data + 6, 2));
  if (sign == 0xC000) return "NaN";
  if (sign == 0xD000) return "Infinity";
  if (sign == 0xF000) return "-Infinity";
  if (length < 8 + 2 * ndigits) return "NaN";
  auto digit = [&](int i) -> int {
    if (i < 0 || i >= ndigits) return 0;
    return static_cast<int>(read_be(data + 8 + std::ptrdiff_t{2} * i, 2));
  };
  std::string out;
  if (sign == 0x4000) out.push_back('-');
  if (weight < 0) {
    out.push_back('0');
  } else {
    for (int i = 0; i <= weight; ++i) {
      out += i == 0 ? std::to_string(digit(i)) : fmt::format("{:04}", digit(i));
    }
  }
  if (dscale > 0) {
    out.push_back('.');
    std::string fraction;
    for (int i = weight + 1; static_cast<int>(fraction.size()) < dscale; ++i) {
      fraction += fmt::format("{:04}", digit(i));
    }
    fraction.resize(static_cast<std::size_t>(dscale));
    out += fraction;
  }
  return out;
}

class PgCursor final : public internal::Cursor {
 public:
  explicit PgCursor(PGresult* result) : result_(result), rows_(PQntuples(result)) {
    column_count_ = PQnfields(result);
    const char* tuples = PQcmdTuples(result);
    if (tuples != nullptr && *tuples != '\0') {
      std::from_chars(tuples, tuples + std::strlen(tuples), affected_);
    }
  }
  ~PgCursor() override { PQclear(result_); }

  bool next() override {
    if (row_ + 1 >= rows_) {
      row_ = rows_;
      return false;
    }
    ++row_;
    return true;
  }
  std::string_view column_name(int column) const noexcept override {
    const char* name = PQfname(result_, column);
    return name ? name : "";
  }
  std::string type_name(int column) const override { return oid_name(oid(column)); }
  bool is_null(int column) const override { return PQgetisnull(result_, row_, column) != 0; }
  bool get_bool(int column) const override {
    if (oid(column) != kBool) mismatch(column, "bool");
    return *data(column) != 0;
  }
  std::int64_t get_int64(int column) const override {
    switch (oid(column)) {
      case kInt2:
        return static_cast<std::int16_t>(read_be(data(column), 2));
      case kInt4:
        return static_cast<std::int32_t>(read_be(data(column), 4));
      case kInt8:
        return static_cast<std::int64_t>(read_be(data(column), 8));
      case kOid:
        return static_cast<std::uint32_t>(read_be(data(column), 4));
      case kNumeric: {
        std::string text = numeric_to_string(data(column), length(column));
        std::size_t dot = text.find('.');
        if (dot != std::string::npos && text.find_first_not_of('0', dot + 1) != std::string::npos) {
          bad_value(column, fmt::format("numeric {} is not an integer", text));
        }
        std::int64_t value = 0;
        const char* end = text.data() + (dot == std::string::npos ? text.size() : dot);
        auto [ptr, ec] = std::from_chars(text.data(), end, value);
        if (ec != std::errc() || ptr != end) {
          bad_value(column, fmt::format("numeric {} does not fit a 64-bit integer", text));
        }
        return value;
      }
      default:
        mismatch(column, "an integer");
    }
  }
  double get_double(int column) const override {
    switch (oid(column)) {
      case kFloat4: {
        auto bits = static_cast<std::uint32_t>(read_be(data(column), 4));
        float value;
        std::memcpy(&value, &bits, 4);
        return value;
      }
      case kFloat8: {
        std::uint64_t bits = read_be(data(column), 8);
        double value;
        std::memcpy(&value, &bits, 8);
        return value;
      }
      case kInt2:
      case kInt4:
      case kInt8:
      case kOid:
        return static_cast<double>(get_int64(column));
      case kNumeric: {
        std::string text = numeric_to_string(data(column), length(column));
        if (text == "NaN") return std::numeric_limits<double>::quiet_NaN();
        if (text == "Infinity") return std::numeric_limits<double>::infinity();
        if (text == "-Infinity") return -std::numeric_limits<double>::infinity();
        double value = 0;
        std::from_chars(text.data(), text.data() + text.size(), value);
        return value;
      }
      default:
        mismatch(column, "double");
    }
  }
  std::string get_string(int column) const override {
    unsigned type = oid(column);
    if (type == kNumeric) return numeric_to_string(data(column), length(column));
    if (type == kUuid) return get_uuid(column).to_string();
    return std::string(get_text_view(column));
  }
  std::string_view get_text_view(int column) const override {
    unsigned type = oid(column);
    if (is_text_oid(type)) {
      return {data(column), static_cast<std::size_t>(length(column))};
    }
    if (type == kJsonb && length(column) >= 1) {
      return {data(column) + 1, static_cast<std::size_t>(length(column) - 1)};
    }
    mismatch(column, "text");
  }
  std::span<const std::uint8_t> get_bytes_view(int column) const override {
    unsigned type = oid(column);
    if (type != kBytea && !is_text_oid(type)) mismatch(column, "bytes");
    return {reinterpret_cast<const std::uint8_t*>(data(column)),
            static_cast<std::size_t>(length(column))};
  }
  Uuid get_uuid(int column) const override {
    unsigned type = oid(column);
    if (type == kUuid) {
      if (length(column) != 16) bad_value(column, "uuid value is not 16 bytes");
      Uuid::Bytes bytes{};
      std::memcpy(bytes.data(), data(column), 16);
      return Uuid(bytes);
    }
    if (is_text_oid(type)) {
      auto parsed = Uuid::parse(get_text_view(column));
      if (!parsed) bad_value(column, "text is not a UUID");
      return *parsed;
    }
    mismatch(column, "uuid");
  }
  Timestamp get_timestamp(int column) const override {
    unsigned type = oid(column);
    std::int64_t micros = 0;
    if (type == kTimestamptz || type == kTimestamp) {
      auto raw = static_cast<std::int64_t>(read_be(data(column), 8));
      if (raw == std::numeric_limits<std::int64_t>::max() ||
          raw == std::numeric_limits<std::int64_t>::min()) {
        bad_value(column, "infinite timestamp");
      }
      micros = raw + kPgEpochMicros;
    } else if (type == kDate) {
      auto days = static_cast<std::int32_t>(read_be(data(column), 4));
      if (days == std::numeric_limits<std::int32_t>::max() ||
          days == std::numeric_limits<std::int32_t>::min()) {
        bad_value(column, "infinite date");
      }
      micros = static_cast<std::int64_t>(days) * 86'400'000'000LL + kPgEpochMicros;
    } else {
      mismatch(column, "timestamp");
    }
    return Timestamp(
        std::chrono::duration_cast<Timestamp::duration>(std::chrono::microseconds(micros)));
  }
  std::int64_t affected_rows() const noexcept override { return affected_; }
  void release() noexcept override { delete this; }

 private:
  unsigned oid(int column) const { return PQftype(result_, column); }
  const char* data(int column) const { return PQgetvalue(result_, row_, column); }
  int length(int column) const { return PQgetlength(result_, row_, column); }

  PGresult* result_;
  int rows_;
  int row_ = -1;
  std::int64_t affected_ = 0;
};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

struct PgStatement {
  std::string name;  // empty until prepared: the first uses run unnamed (prepare_threshold)
  int param_count = 0;
  std::size_t runs = 0;  // unnamed runs before it was prepared
  std::uint64_t last_used = 0;
};

void notice_to_log(void*, const char* message) {
  logger()->debug("postgres notice: {}", trim(message ? message : ""));
}

}  // namespace

class PostgresConnection::Impl {
 public:
  PGconn* conn = nullptr;
  PostgresOptions options;
  // Its secrets (DatabaseUrl::scrub) are scrubbed from every message: defence in depth, as
  // libpq messages do not quote them, but nothing we raise or log ever may.
  DatabaseUrl url;
  std::unordered_map<std::string, PgStatement, StringHash, std::equal_to<>> cache;
  std::uint64_t tick = 0;
  std::uint64_t next_name = 0;
  std::vector<std::string> storage;
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  ConnectionBudget::Slot budget_slot;  // given back after the connection closed

  ~Impl() {
    if (conn != nullptr) PQfinish(conn);
  }
};

namespace {

constexpr std::string_view kTooManyConnections = "53300";
constexpr std::chrono::seconds kSlotWaitProgress{5};

}  // namespace

std::unique_ptr<PostgresConnection> PostgresConnection::open(const DatabaseUrl& url,
                                                             const PostgresOptions& options) {
  if (options.budget) {
    ConnectionBudget::Admission admission =
        options.budget->admit(url, options.connection_slot_wait);
    std::unique_ptr<PostgresConnection> connection = std::move(admission.placeholder);
    if (!connection) {
      PostgresOptions admitted = options;
      admitted.budget = nullptr;
      if (!admission.slot.may_wait_for_server())
        admitted.connection_slot_wait = std::chrono::milliseconds(0);
      connection = open(url, admitted);
    }
    // A placeholder was opened with reserve()'s options: the holder's, which opens all with one
    // set (its client-side settings are taken from these).
    connection->impl_->options = options;
    connection->impl_->options.statement_cache_capacity =
        std::max<std::size_t>(1, options.statement_cache_capacity);
    connection->impl_->budget_slot = std::move(admission.slot);
    return connection;
  }
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  auto next_progress = start;
  auto pause = std::chrono::milliseconds(10);
  std::minstd_rand jitter(static_cast<unsigned>(start.time_since_epoch().count()));
  for (;;) {
    try {
      return open_once(url, options);
    } catch (const DatabaseError& error) {
      if (error.sqlstate() != kTooManyConnections) throw;
      const auto now = Clock::now();
      const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - start);
      if (options.connection_slot_wait.count() == 0) throw;
      if (waited >= options.connection_slot_wait) {
        throw DatabaseError(error.fault(),
                            fmt::format("{} (no connection slot freed within {:.1f} s)",
                                        error.what(), waited.count() / 1000.0),
                            error.details());
      }
      if (now >= next_progress) {
        logger()->warn(
            "PostgreSQL at {} has no free connection slot (too many clients, SQLSTATE 53300); "
            "waited {:.1f} s, waiting up to {:.0f} s for one",
            url.describe_target(), waited.count() / 1000.0,
            options.connection_slot_wait.count() / 1000.0);
        next_progress = now + kSlotWaitProgress;
      }
      const auto left = options.connection_slot_wait - waited;
      std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(
          left, pause + std::chrono::milliseconds(jitter() % (pause.count() + 1))));
      pause = std::min(pause * 2, std::chrono::milliseconds(200));
    }
  }
}

namespace {

// libpq's connection keywords for `url` under `options`: the URL's own values win.
std::vector<std::pair<std::string, std::string>> connection_parameters(
    const DatabaseUrl& url, const PostgresOptions& options) {
  if (url.driver() != Driver::postgres) {
    throw gamebot::Error(FaultClass::configuration,
                         "PostgresConnection::open needs a postgres URL, got " + url.redacted());
  }
  std::vector<std::pair<std::string, std::string>> params;
  auto set = [&](std::string key, std::string value) {
    for (auto& p : params) {
      if (p.first == key) return;  // the URL's value wins
    }
    params.emplace_back(std::move(key), std::move(value));
  };
  if (!url.host().empty()) set("host", url.host());
  if (!url.port().empty()) set("port", url.port());
  if (!url.user().empty()) set("user", url.user());
  if (url.has_password()) set("password", url.password());
  if (!url.database().empty()) set("dbname", url.database());
  std::string options_param;
  for (const auto& [key, value] : url.parameters()) {
    if (key == "options") {
      options_param = value;
      continue;
    }
    set(key, value);
  }
  set("application_name", options.application_name);
  set("connect_timeout",
      std::to_string(std::max<std::int64_t>(options.connect_timeout.count(), 1)));
  set("client_encoding", "UTF8");
  if (options.keepalives) {
    set("keepalives", "1");
    set("keepalives_idle", std::to_string(options.keepalives_idle.count()));
    set("keepalives_interval", std::to_string(options.keepalives_interval.count()));
    set("keepalives_count", std::to_string(options.keepalives_count));
  } else {
    set("keepalives", "0");
  }
  if (options.statement_timeout.count() > 0) {
    if (!options_param.empty()) options_param += ' ';
    options_param += fmt::format("-c statement_timeout={}", options.statement_timeout.count());
  }
  if (!options_param.empty()) set("options", options_param);
  return params;
}

// Starts one connection (PQconnectdbParams when `blocking`, else PQconnectStartParams).
PGconn* start_connection(const std::vector<std::pair<std::string, std::string>>& params,
                         bool blocking) {
  std::vector<const char*> keys;
  std::vector<const char*> vals;
  for (const auto& [key, value] : params) {
    keys.push_back(key.c_str());
    vals.push_back(value.c_str());
  }
  keys.push_back(nullptr);
  vals.push_back(nullptr);
  PGconn* conn = blocking ? PQconnectdbParams(keys.data(), vals.data(), 0)
                          : PQconnectStartParams(keys.data(), vals.data(), 0);
  if (conn == nullptr) {
    throw DatabaseError(FaultClass::internal, "libpq could not allocate a connection",
                        DatabaseErrorDetails{Driver::postgres, {}, 0, {}, false, true});
  }
  return conn;
}

// The DatabaseError for a connection attempt that failed with libpq's `message` (the password
// scrubbed): its fault class and the SQLSTATE it stands for (libpq reports none for these).
DatabaseError connect_failure(const DatabaseUrl& url, PGconn* conn, std::string message) {
  message = url.scrub(trim(message));
  bool needs_password = conn != nullptr && PQconnectionNeedsPassword(conn) != 0;
  FaultClass fault = FaultClass::connectivity;
  std::string state = "08001";
  if (needs_password || message.find("password authentication failed") != std::string::npos ||
      message.find("authentication failed") != std::string::npos ||
      message.find("no password supplied") != std::string::npos ||
      message.find("pg_hba.conf") != std::string::npos ||
      (message.find("role \"") != std::string::npos &&
       message.find("does not exist") != std::string::npos)) {
    fault = FaultClass::authentication;
    state = "28000";
  } else if (message.find("database \"") != std::string::npos &&
             message.find("does not exist") != std::string::npos) {
    fault = FaultClass::configuration;
    state = "3D000";
  } else if (message.find("too many clients") != std::string::npos ||
             message.find("remaining connection slots are reserved") != std::string::npos) {
    fault = FaultClass::connectivity;
    state = "53300";
  } else if (message.find("starting up") != std::string::npos ||
             message.find("shutting down") != std::string::npos) {
    fault = FaultClass::connectivity;
    state = "57P03";
  }
  std::string text =
      fmt::format("cannot connect to PostgreSQL ({}): {}", url.describe_target(), message);
  return DatabaseError(fault, std::move(text),
                       DatabaseErrorDetails{Driver::postgres, state, 0, {}, false, true});
}

}  // namespace

std::unique_ptr<PostgresConnection> PostgresConnection::adopt(const DatabaseUrl& url,
                                                              const PostgresOptions& options,
                                                              pg_conn* conn) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (impl->options.statement_cache_capacity == 0) impl->options.statement_cache_capacity = 1;
  impl->url = url;
  impl->conn = conn;
  PQsetNoticeProcessor(impl->conn, notice_to_log, nullptr);
  return std::unique_ptr<PostgresConnection>(new PostgresConnection(url, std::move(impl)));
}

std::unique_ptr<PostgresConnection> PostgresConnection::open_once(const DatabaseUrl& url,
                                                                  const PostgresOptions& options) {
  PGconn* conn = start_connection(connection_parameters(url, options), true);
  if (PQstatus(conn) != CONNECTION_OK) {
    DatabaseError failure = connect_failure(url, conn, PQerrorMessage(conn));
    PQfinish(conn);
    throw failure;
  }
  return adopt(url, options, conn);
}

std::vector<std::unique_ptr<PostgresConnection>> PostgresConnection::open_together(
    const DatabaseUrl& url, std::size_t count, const PostgresOptions& options) {
  const std::vector<DatabaseUrl> urls(count, url);
  return open_together(urls, options);
}

std::vector<std::unique_ptr<PostgresConnection>> PostgresConnection::open_together(
    std::span<const DatabaseUrl> urls, const PostgresOptions& options) {
  if (options.budget) {
    throw std::logic_error(
        "PostgresConnection::open_together: connections of a budget are "
        "opened one by one (ConnectionBudget::reserve holds the together set)");
  }
  struct Attempt {
    const DatabaseUrl* url = nullptr;
    PGconn* conn = nullptr;
    PostgresPollingStatusType state = PGRES_POLLING_WRITING;
  };
  std::vector<Attempt> attempts(urls.size());
  for (std::size_t i = 0; i < urls.size(); ++i) attempts[i].url = &urls[i];
  auto finish_all = [&] {
    for (Attempt& a : attempts)
      if (a.conn != nullptr) PQfinish(a.conn);
  };
  try {
    for (Attempt& a : attempts) {
      a.conn = start_connection(connection_parameters(*a.url, options), false);
      if (PQstatus(a.conn) == CONNECTION_BAD)
        throw connect_failure(*a.url, a.conn, PQerrorMessage(a.conn));
    }
    // libpq's connect_timeout is not applied to PQconnectPoll: the deadline is ours.
    const auto deadline =
        std::chrono::steady_clock::now() +
        std::chrono::seconds(std::max<std::int64_t>(options.connect_timeout.count(), 1));
    for (;;) {
      std::vector<pollfd> fds;
      std::vector<Attempt*> waiting;
      for (Attempt& a : attempts) {
        if (a.state == PGRES_POLLING_OK) continue;
        if (a.state == PGRES_POLLING_FAILED)
          throw connect_failure(*a.url, a.conn, PQerrorMessage(a.conn));
        short events = a.state == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        fds.push_back(pollfd{PQsocket(a.conn), events, 0});
        waiting.push_back(&a);
      }
      if (waiting.empty()) break;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        throw connect_failure(*waiting.front()->url, nullptr, "timeout expired while connecting");
      const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
      if (ready < 0 && errno != EINTR) {
        throw connect_failure(*waiting.front()->url, nullptr,
                              std::string("poll() failed: ") + std::strerror(errno));
      }
      for (std::size_t i = 0; i < fds.size(); ++i)
        if (fds[i].revents != 0) waiting[i]->state = PQconnectPoll(waiting[i]->conn);
    }
  } catch (...) {
    finish_all();
    throw;
  }
  std::vector<std::unique_ptr<PostgresConnection>> connections;
  for (Attempt& a : attempts) {
    PGconn* conn = std::exchange(a.conn, nullptr);
    try {
      connections.push_back(adopt(*a.url, options, conn));
    } catch (...) {
      PQfinish(conn);
      finish_all();
      throw;
    }
  }
  return connections;
}

PostgresConnection::PostgresConnection(DatabaseUrl url, std::unique_ptr<Impl> impl)
    : Connection(std::move(url)), impl_(std::move(impl)) {}

PostgresConnection::~PostgresConnection() = default;

void PostgresConnection::throw_error(pg_result* result, std::string_view context) {
  PGconn* conn = impl_->conn;
  std::string state;
  std::string primary;
  std::string detail;
  std::string constraint;
  if (result != nullptr) {
    if (const char* s = PQresultErrorField(result, PG_DIAG_SQLSTATE)) state = s;
    if (const char* s = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY)) primary = s;
    if (const char* s = PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL)) detail = s;
    if (const char* s = PQresultErrorField(result, PG_DIAG_CONSTRAINT_NAME)) constraint = s;
    if (primary.empty()) primary = trim(PQresultErrorMessage(result));
    PQclear(result);
  }
  if (primary.empty()) primary = trim(PQerrorMessage(conn));
  bool lost = PQstatus(conn) == CONNECTION_BAD;
  if (lost) mark_broken();
  FaultClass fault = state.empty() ? (lost ? FaultClass::connectivity : FaultClass::internal)
                                   : classify_sqlstate(state);
  if (lost && fault != FaultClass::connectivity && fault != FaultClass::authentication) {
    fault = FaultClass::connectivity;
  }
  std::string message = primary;
  if (!detail.empty()) message += " (" + detail + ")";
  if (!context.empty()) message += " [in: " + snippet(context) + "]";
  message = impl_->url.scrub(std::move(message));
  DatabaseErrorDetails details{Driver::postgres,
                               state,
                               0,
                               std::move(constraint),
                               sqlstate_transaction_retryable(state),
                               lost};
  throw DatabaseError(fault, std::move(message), std::move(details));
}

namespace {

bool result_ok(PGresult* result) {
  if (result == nullptr) return false;
  ExecStatusType status = PQresultStatus(result);
  return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY;
}

bool has_sqlstate(PGresult* result, const char* sqlstate) {
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  return state != nullptr && std::strcmp(state, sqlstate) == 0;
}

[[noreturn]] void throw_usage(std::string message) {
  throw DatabaseError(FaultClass::internal, std::move(message),
                      DatabaseErrorDetails{Driver::postgres, {}, 0, {}, false, false});
}

}  // namespace

template <typename Send, typename Blocking>
pg_result* PostgresConnection::run(Send&& send, Blocking&& blocking, std::string_view context) {
  Impl& d = *impl_;
  const auto limit = d.options.operation_timeout;
  if (limit.count() <= 0) return blocking();
  if (send() == 0) return nullptr;  // the error is in PQerrorMessage; throw_error reads it
  const auto deadline = std::chrono::steady_clock::now() + limit;
  PGresult* kept = nullptr;
  for (;;) {
    while (PQisBusy(d.conn) != 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd fd{PQsocket(d.conn), POLLIN, 0};
      const int ready = left.count() > 0 ? ::poll(&fd, 1, static_cast<int>(left.count())) : 0;
      if (ready == 0) {
        // No answer in time: the connection's state is unknown, so it is never used again.
        PQclear(kept);
        mark_broken();
        throw DatabaseError(FaultClass::timeout,
                            d.url.scrub(fmt::format(
                                "no answer from the server within the operation timeout ({} ms) "
                                "[in: {}]",
                                limit.count(), snippet(context))),
                            DatabaseErrorDetails{Driver::postgres, {}, 0, {}, false, true});
      }
      if (ready < 0 && errno == EINTR) continue;
      if (PQconsumeInput(d.conn) == 0) break;  // lost: PQgetResult reports it
    }
    PGresult* next = PQgetResult(d.conn);
    if (next == nullptr) return kept;
    // Like PQexec: the first error wins; otherwise the last result.
    if (kept != nullptr && !result_ok(kept)) {
      PQclear(next);
      continue;
    }
    PQclear(kept);
    kept = next;
  }
}

std::int64_t PostgresConnection::execute_params(std::string_view sql,
                                                std::span<const Param> params) {
  Result result = query_params(sql, params);
  return result.affected_rows();
}

Result PostgresConnection::query_params(std::string_view sql, std::span<const Param> params) {
  Impl& d = *impl_;
  if (broken()) {
    throw DatabaseError(FaultClass::connectivity,
                        fmt::format("connection #{} is broken (lost earlier)", id()),
                        DatabaseErrorDetails{Driver::postgres, {}, 0, {}, false, true});
  }
  std::size_t n = params.size();
  if (d.storage.size() < n) d.storage.resize(n);
  d.values.resize(n);
  d.lengths.resize(n);
  d.formats.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const Param& p = params[i];
    std::string& buffer = d.storage[i];
    d.lengths[i] = 0;
    d.formats[i] = 0;
    switch (p.type()) {
      case Param::Type::null:
        d.values[i] = nullptr;
        continue;
      case Param::Type::boolean:
        d.values[i] = p.as_bool() ? "t" : "f";
        continue;
      case Param::Type::int64: {
        char digits[24];
        auto [end, ec] = std::to_chars(digits, digits + sizeof digits, p.as_int64());
        buffer.assign(digits, end);
        break;
      }
      case Param::Type::float64: {
        double value = p.as_double();
        if (std::isnan(value)) {
          buffer = "NaN";
        } else if (std::isinf(value)) {
          buffer = value > 0 ? "Infinity" : "-Infinity";
        } else {
          char digits[32];
          auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
          buffer.assign(digits, end);
        }
        break;
      }
      case Param::Type::text:
        buffer.assign(p.as_text());
        break;
      case Param::Type::bytes: {
        static const char empty = 0;
        auto bytes = p.as_bytes();
        d.values[i] = bytes.empty() ? &empty : reinterpret_cast<const char*>(bytes.data());
        d.lengths[i] = static_cast<int>(bytes.size());
        d.formats[i] = 1;
        continue;
      }
      case Param::Type::uuid:
        buffer = p.as_uuid().to_string();
        break;
      case Param::Type::timestamp:
        buffer = internal::format_timestamp_utc(p.as_unix_micros());
        break;
    }
    d.values[i] = buffer.c_str();
  }
  // The unnamed statement: parse, bind and execute in one round trip.
  auto run_unnamed = [&] {
    std::string text(sql);
    return run(
        [&] {
          return PQsendQueryParams(d.conn, text.c_str(), static_cast<int>(n), nullptr,
                                   d.values.data(), d.lengths.data(), d.formats.data(), 1);
        },
        [&] {
          return PQexecParams(d.conn, text.c_str(), static_cast<int>(n), nullptr, d.values.data(),
                              d.lengths.data(), d.formats.data(), 1);
        },
        sql);
  };
  if (!d.options.prepared_statements) {
    PGresult* result = run_unnamed();
    if (result_ok(result)) return Result(new PgCursor(result));
    throw_error(result, sql);
  }
  // This connection's statement names are its own (gb_1, gb_2, ...): the server lacking one it
  // has just prepared (26000), or having one it never prepared (42P05), means its statements
  // reach more than one server session: a pooler in transaction mode stands in front. That is
  // the setup's fault (configuration), whatever statement met it.
  auto throw_shared_session = [&](PGresult* failed) {
    try {
      throw_error(failed, sql);
    } catch (const DatabaseError& e) {
      throw DatabaseError(
          FaultClass::configuration,
          e.message() +
              "; this connection's statements reach more than one server session: a pooler in "
              "transaction mode (PgBouncer pool_mode = transaction) cannot serve named prepared "
              "statements. Turn them off (PostgresOptions::prepared_statements = false; for the "
              "event store: pooling=transaction in its URL)",
          e.details());
    }
  };
  for (int attempt = 0;; ++attempt) {
    auto it = d.cache.find(sql);
    if (it == d.cache.end()) {
      if (d.cache.size() >= d.options.statement_cache_capacity) {
        auto victim = d.cache.begin();
        for (auto i = d.cache.begin(); i != d.cache.end(); ++i) {
          if (i->second.last_used < victim->second.last_used) victim = i;
        }
        if (!victim->second.name.empty() && PQtransactionStatus(d.conn) != PQTRANS_INERROR) {
          const std::string deallocate = "DEALLOCATE " + victim->second.name;
          PQclear(run([&] { return PQsendQuery(d.conn, deallocate.c_str()); },
                      [&] { return PQexec(d.conn, deallocate.c_str()); }, deallocate));
        }
        d.cache.erase(victim);
      }
      it = d.cache.emplace(std::string(sql), PgStatement{}).first;
    }
    PgStatement& statement = it->second;
    statement.last_used = ++d.tick;
    // A short-lived process runs most statements once: below the threshold a run costs one
    // round trip instead of three (prepare, describe, execute).
    if (statement.name.empty() && statement.runs + 1 < d.options.prepare_threshold) {
      PGresult* result = run_unnamed();
      if (result_ok(result)) {
        ++statement.runs;
        return Result(new PgCursor(result));
      }
      // A wrong parameter count fails the bind (08P01); the parsed statement tells the count.
      if (has_sqlstate(result, "08P01")) {
        PGresult* described = run([&] { return PQsendDescribePrepared(d.conn, ""); },
                                  [&] { return PQdescribePrepared(d.conn, ""); }, sql);
        const int expected = result_ok(described) ? PQnparams(described) : -1;
        PQclear(described);
        if (expected >= 0 && expected != static_cast<int>(n)) {
          PQclear(result);
          throw_usage(fmt::format("statement takes {} parameters, {} given [in: {}]", expected, n,
                                  snippet(sql)));
        }
      }
      throw_error(result, sql);
    }
    if (statement.name.empty()) {
      const std::string name = fmt::format("gb_{}", ++d.next_name);
      const std::string text(sql);
      PGresult* prepared =
          run([&] { return PQsendPrepare(d.conn, name.c_str(), text.c_str(), 0, nullptr); },
              [&] { return PQprepare(d.conn, name.c_str(), text.c_str(), 0, nullptr); }, sql);
      if (!result_ok(prepared)) {
        if (has_sqlstate(prepared, "42P05")) throw_shared_session(prepared);
        throw_error(prepared, sql);
      }
      PQclear(prepared);
      PGresult* described = run([&] { return PQsendDescribePrepared(d.conn, name.c_str()); },
                                [&] { return PQdescribePrepared(d.conn, name.c_str()); }, sql);
      if (!result_ok(described)) {
        if (has_sqlstate(described, "26000")) throw_shared_session(described);
        throw_error(described, sql);
      }
      statement.param_count = PQnparams(described);
      statement.name = name;
      PQclear(described);
    }
    if (static_cast<int>(params.size()) != statement.param_count) {
      throw_usage(fmt::format("statement takes {} parameters, {} given [in: {}]",
                              statement.param_count, params.size(), snippet(sql)));
    }
    PGresult* result = run(
        [&] {
          return PQsendQueryPrepared(d.conn, statement.name.c_str(), static_cast<int>(n),
                                     d.values.data(), d.lengths.data(), d.formats.data(), 1);
        },
        [&] {
          return PQexecPrepared(d.conn, statement.name.c_str(), static_cast<int>(n),
                                d.values.data(), d.lengths.data(), d.formats.data(), 1);
        },
        sql);
    if (result_ok(result)) return Result(new PgCursor(result));
    const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    bool stale =
        state != nullptr && (std::strcmp(state, "26000") == 0 || std::strcmp(state, "0A000") == 0);
    if (stale) {
      // The server forgot the statement (DISCARD/DEALLOCATE) or its result type changed after
      // DDL: drop it so the next use prepares it afresh; retry once outside a transaction.
      d.cache.erase(it);
      if (attempt == 0 && PQtransactionStatus(d.conn) == PQTRANS_IDLE) {
        PQclear(result);
        continue;
      }
      // Prepared afresh outside a transaction a moment ago, and gone again.
      if (attempt > 0 && std::strcmp(state, "26000") == 0) throw_shared_session(result);
    }
    throw_error(result, sql);
  }
}

void PostgresConnection::execute_batch(std::string_view sql) {
  std::string script(sql);
  PGconn* conn = impl_->conn;
  PGresult* result = run([&] { return PQsendQuery(conn, script.c_str()); },
                         [&] { return PQexec(conn, script.c_str()); }, sql);
  if (!result_ok(result)) throw_error(result, sql);
  PQclear(result);
}

void PostgresConnection::run_control(std::string_view sql) {
  std::string text(sql);
  PGconn* conn = impl_->conn;
  PGresult* result = run([&] { return PQsendQuery(conn, text.c_str()); },
                         [&] { return PQexec(conn, text.c_str()); }, sql);
  if (!result_ok(result)) throw_error(result, sql);
  PQclear(result);
}

void PostgresConnection::ping() {
  PGconn* conn = impl_->conn;
  PGresult* result =
      run([&] { return PQsendQuery(conn, ""); }, [&] { return PQexec(conn, ""); }, "ping");
  if (!result_ok(result)) throw_error(result, "ping");
  PQclear(result);
}

bool PostgresConnection::is_alive() noexcept {
  if (broken()) return false;
  PGconn* conn = impl_->conn;
  if (PQstatus(conn) != CONNECTION_OK) {
    mark_broken();
    return false;
  }
  pollfd fd{};
  fd.fd = PQsocket(conn);
  fd.events = POLLIN | POLLRDHUP;
  if (fd.fd < 0) {
    mark_broken();
    return false;
  }
  int ready = ::poll(&fd, 1, 0);
  if (ready <= 0) return ready == 0;
  if ((fd.revents & (POLLHUP | POLLERR | POLLNVAL | POLLRDHUP)) != 0) {
    mark_broken();
    return false;
  }
  if ((fd.revents & POLLIN) != 0) {
    if (PQconsumeInput(conn) == 0 || PQstatus(conn) != CONNECTION_OK) {
      mark_broken();
      return false;
    }
  }
  return true;
}

bool PostgresConnection::in_transaction() const noexcept {
  PGTransactionStatusType status = PQtransactionStatus(impl_->conn);
  return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE;
}

std::size_t PostgresConnection::cached_statements() const noexcept {
  return static_cast<std::size_t>(
      std::count_if(impl_->cache.begin(), impl_->cache.end(),
                    [](const auto& entry) { return !entry.second.name.empty(); }));
}

void PostgresConnection::clear_statement_cache() {
  if (cached_statements() > 0 && PQtransactionStatus(impl_->conn) != PQTRANS_INERROR) {
    PGresult* result = PQexec(impl_->conn, "DEALLOCATE ALL");
    if (!result_ok(result)) {
      impl_->cache.clear();
      throw_error(result, "DEALLOCATE ALL");
    }
    PQclear(result);
  }
  impl_->cache.clear();
}

pg_result* PostgresConnection::exec_params_binary(std::string_view sql, int count,
                                                  const unsigned int* types,
                                                  const char* const* values, const int* lengths,
                                                  const int* formats) {
  Impl& d = *impl_;
  if (broken()) {
    throw DatabaseError(FaultClass::connectivity,
                        fmt::format("connection #{} is broken (lost earlier)", id()),
                        DatabaseErrorDetails{Driver::postgres, {}, 0, {}, false, true});
  }
  const std::string text(sql);
  PGresult* result = run(
      [&] {
        return PQsendQueryParams(d.conn, text.c_str(), count, types, values, lengths, formats, 1);
      },
      [&] { return PQexecParams(d.conn, text.c_str(), count, types, values, lengths, formats, 1); },
      sql);
  if (!result_ok(result)) throw_error(result, sql);
  return result;
}

pg_conn* PostgresConnection::native_handle() const noexcept {
  return impl_->conn;
}

int PostgresConnection::backend_pid() const noexcept {
  return PQbackendPID(impl_->conn);
}

int PostgresConnection::server_version() const noexcept {
  return PQserverVersion(impl_->conn);
}

PostgresConnection& as_postgres(Connection& connection) {
  if (connection.driver() != Driver::postgres) {
    throw std::logic_error("as_postgres: connection #" + std::to_string(connection.id()) +
                           " is a " + std::string(to_string(connection.driver())) + " connection");
  }
  return static_cast<PostgresConnection&>(connection);
}

}  // namespace gamebot::repo
