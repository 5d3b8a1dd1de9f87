#include "gamebot/eventstore/postgres_backend.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cstring>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "background.hpp"
#include "commit_groups.hpp"
#include "gamebot/eventstore/errors.hpp"
#include "gamebot/eventstore/open.hpp"
#include "gamebot/eventstore/postgres_schema.hpp"
#include "gamebot/repo/errors.hpp"
#include "gamebot/repo/logging.hpp"
#include "gamebot/repo/pool.hpp"
#include "gamebot/repo/postgres_connection.hpp"
#include "gamebot/repo/transaction.hpp"
#include "pg_binary.hpp"
#include "replica.hpp"
#include "sql_names.hpp"
#include "watermark.hpp"

namespace gamebot::eventstore {

using postgres_detail::Background;
using postgres_detail::BinaryArray;
using postgres_detail::SqlNames;
using postgres_detail::WalPosition;
using postgres_detail::WatermarkOutcome;
using postgres_detail::WatermarkProbe;
using postgres_detail::WatermarkTracker;

namespace {

// How long a read waits for in-flight writers it has no bound for (see
// watermark.hpp) before it answers with the older, still safe watermark.
constexpr std::chrono::milliseconds kSettleLimit{200};
// How long the first subscriber (and a construction inside a transaction)
// waits for the background connection's LISTEN and first bound.
constexpr std::chrono::milliseconds kStartWait{5000};

constexpr std::string_view kEventColumns =
    "e.position, e.event_id, e.stream_id, e.stream_version, e.type, e.data, e.metadata, "
    "e.causation_id, e.correlation_id, e.created_at";

// Expected-version kind as the SQL functions take it.
int kind_code(ExpectedVersion expected) {
  switch (expected.kind()) {
    case ExpectedVersion::Kind::any:
      return 0;
    case ExpectedVersion::Kind::no_stream:
      return 1;
    case ExpectedVersion::Kind::stream_exists:
      return 2;
    case ExpectedVersion::Kind::exact:
      return 3;
  }
  return 0;
}

// Whether `expected` can hold for a stream that exists (the one-statement and
// group paths only append to existing streams; the others go to append_events).
bool allows_existing_stream(ExpectedVersion expected) {
  return expected.kind() != ExpectedVersion::Kind::no_stream &&
         !(expected.kind() == ExpectedVersion::Kind::exact && expected.version() == 0);
}

WriteStatus status_of(int code) {
  switch (code) {
    case 0:
      return WriteStatus::ok;
    case 1:
      return WriteStatus::wrong_expected_version;
    case 2:
      return WriteStatus::stream_exists;
    case 3:
      return WriteStatus::stream_not_found;
    case 4:
      return WriteStatus::stream_deleted;
    case 5:
      return WriteStatus::duplicate_event_id;
    case 6:
      return WriteStatus::event_not_found;
    default:
      throw Error(FaultClass::internal,
                  fmt::format("PostgreSQL event store function returned status {}", code));
  }
}

// 2000-01-01 00:00:00 UTC, PostgreSQL's timestamp epoch, in Unix microseconds.
constexpr std::int64_t kPostgresEpochMicros = 946'684'800'000'000LL;

// Pages at least this large are read with a native libpq call that decodes
// straight into the events' storage (the planning of an unnamed statement is
// then small beside the rows); smaller reads use the repo's prepared statements.
constexpr std::size_t kNativeReadMinimum = 256;

Timestamp to_timestamp(repo::Timestamp time) {
  return std::chrono::floor<std::chrono::microseconds>(time);
}

repo::Timestamp to_repo(Timestamp time) {
  return repo::Timestamp(time.time_since_epoch());
}

repo::Param bytes_param(const BinaryArray& array) {
  return repo::Param(array.bytes());
}

std::span<const std::uint8_t> as_bytes(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

// The new events' columns as binary arrays, one element per event, in the
// order the append statements take them (a lone append and a commit group).
struct EventColumns {
  explicit EventColumns(std::size_t n)
      : ids(postgres_detail::kUuidOid, n),
        types(postgres_detail::kTextOid, n),
        data(postgres_detail::kByteaOid, n),
        metadata(postgres_detail::kByteaOid, n),
        causation(postgres_detail::kUuidOid, n),
        correlation(postgres_detail::kUuidOid, n),
        created(postgres_detail::kTimestamptzOid, n) {}

  void add(const NewEvent& e) {
    ids.add(e.id);
    types.add(e.type);
    data.add(e.data);
    metadata.add(e.metadata);
    if (e.causation_id) {
      causation.add(*e.causation_id);
    } else {
      causation.add_null();
    }
    if (e.correlation_id) {
      correlation.add(*e.correlation_id);
    } else {
      correlation.add_null();
    }
    created.add(e.created_at);
  }

  BinaryArray ids;
  BinaryArray types;
  BinaryArray data;
  BinaryArray metadata;
  BinaryArray causation;
  BinaryArray correlation;
  BinaryArray created;
};

// Copies rows (columns from `first`, in kEventColumns order) into events that
// share one storage. Repeated stream ids and types are stored once.
class EventReader {
 public:
  void add(std::vector<RecordedEvent>& out, const repo::Row& row, int first,
           StreamVersion event_number) {
    RecordedEvent& e = out.emplace_back();
    e.global_position = row.get<std::int64_t>(first);
    e.event_number = event_number == 0 ? e.global_position : event_number;
    e.event_id = row.get<Uuid>(first + 1);
    e.stream_id = intern(row.get<std::string_view>(first + 2), last_stream_);
    e.stream_version = row.get<std::int64_t>(first + 3);
    e.type = intern(row.get<std::string_view>(first + 4), last_type_);
    const repo::Bytes data = row.get<repo::Bytes>(first + 5);
    e.data = storage_.keep({reinterpret_cast<const char*>(data.data()), data.size()});
    const repo::Bytes metadata = row.get<repo::Bytes>(first + 6);
    e.metadata = storage_.keep({reinterpret_cast<const char*>(metadata.data()), metadata.size()});
    e.causation_id = row.get<std::optional<Uuid>>(first + 7);
    e.correlation_id = row.get<std::optional<Uuid>>(first + 8);
    e.created_at = to_timestamp(row.get<repo::Timestamp>(first + 9));
  }

  // The global position (first column) of a binary-format row.
  static GlobalPosition position_at(const PGresult* result, int row) {
    std::uint64_t value = 0;
    const char* bytes = PQgetvalue(result, row, 0);
    for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<unsigned char>(bytes[i]);
    return static_cast<GlobalPosition>(value);
  }

  // The same from a binary-format libpq result (columns in kEventColumns order).
  void add_native(std::vector<RecordedEvent>& out, const PGresult* result, int row) {
    auto text = [&](int column) {
      return std::string_view(PQgetvalue(result, row, column),
                              static_cast<std::size_t>(PQgetlength(result, row, column)));
    };
    auto int64 = [&](int column) {
      std::uint64_t value = 0;
      for (char c : text(column)) value = (value << 8) | static_cast<unsigned char>(c);
      return static_cast<std::int64_t>(value);
    };
    auto uuid = [&](int column) -> std::optional<Uuid> {
      if (PQgetisnull(result, row, column) || PQgetlength(result, row, column) != 16) {
        return std::nullopt;
      }
      Uuid::Bytes bytes{};
      std::memcpy(bytes.data(), PQgetvalue(result, row, column), 16);
      return Uuid(bytes);
    };
    RecordedEvent& e = out.emplace_back();
    e.global_position = int64(0);
    e.event_number = e.global_position;
    e.event_id = uuid(1).value_or(Uuid{});
    e.stream_id = intern(text(2), last_stream_);
    e.stream_version = int64(3);
    e.type = intern(text(4), last_type_);
    e.data = storage_.keep(text(5));
    e.metadata = storage_.keep(text(6));
    e.causation_id = uuid(7);
    e.correlation_id = uuid(8);
    e.created_at = Timestamp(std::chrono::microseconds(int64(9) + kPostgresEpochMicros));
  }

  void finish(std::vector<RecordedEvent>& events) const {
    for (RecordedEvent& e : events) e.storage = storage_.storage();
  }

 private:
  std::string_view intern(std::string_view text, std::string_view& last) {
    if (last.data() == nullptr || last != text) last = storage_.keep(text);
    return last;
  }

  EventStorageBuilder storage_;
  std::string_view last_stream_;
  std::string_view last_type_;
};

// "xid:bound,xid:,..." from probe_watermark.
std::vector<postgres_detail::ProbedWriter> parse_writers(std::string_view text) {
  std::vector<postgres_detail::ProbedWriter> writers;
  auto bad = [&text]() {
    return Error(FaultClass::internal,
                 fmt::format("probe_watermark returned a malformed writer list '{}'", text));
  };
  std::string_view rest = text;
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    const std::size_t colon = item.find(':');
    if (colon == std::string_view::npos) throw bad();
    postgres_detail::ProbedWriter writer;
    auto [end, error] = std::from_chars(item.data(), item.data() + colon, writer.xid);
    if (error != std::errc() || end != item.data() + colon) throw bad();
    const std::string_view bound = item.substr(colon + 1);
    if (!bound.empty()) {
      GlobalPosition value = 0;
      auto [bound_end, bound_error] =
          std::from_chars(bound.data(), bound.data() + bound.size(), value);
      if (bound_error != std::errc() || bound_end != bound.data() + bound.size()) throw bad();
      writer.logged_bound = value;
    }
    writers.push_back(writer);
  }
  return writers;
}

// A replica statement (or checkout) failed: the read goes to the primary.
struct ReplicaFault : std::exception {
  const char* what() const noexcept override { return "read replica fault"; }
};

// Runs `fn` (work on the replica) and turns its database faults into ReplicaFault.
template <typename F>
decltype(auto) on_replica(F&& fn) {
  try {
    return std::forward<F>(fn)();
  } catch (const repo::DatabaseError&) {
    throw ReplicaFault();
  } catch (const repo::PoolExhaustedError&) {
    throw ReplicaFault();
  }
}

std::string wal_text(WalPosition wal) {
  return fmt::format("{:X}/{:X}", wal >> 32, wal & 0xffffffffULL);
}

}  // namespace

// ---- leases --------------------------------------------------------------------

namespace postgres_detail {

// Connections for persistent-subscription leases. A failed try keeps its
// connection for the next try; a released lease gives its connection back.
// Shared by the backend and its leases, so a lease may outlive the backend.
class LeaseHub {
 public:
  LeaseHub(repo::DatabaseUrl url, repo::PostgresOptions connect)
      : url_(std::move(url)), connect_(std::move(connect)) {}

  std::unique_ptr<repo::Connection> take() {
    {
      std::lock_guard lock(mutex_);
      while (!idle_.empty()) {
        std::unique_ptr<repo::Connection> connection = std::move(idle_.back());
        idle_.pop_back();
        if (connection->is_alive()) return connection;
      }
    }
    return repo::PostgresConnection::open(url_, connect_);
  }

  void give_back(std::unique_ptr<repo::Connection> connection) noexcept {
    if (!connection || connection->broken()) return;
    std::lock_guard lock(mutex_);
    if (idle_.size() < kIdleLimit) idle_.push_back(std::move(connection));
  }

  void set_on_release(std::function<void()> on_release) {
    std::lock_guard lock(mutex_);
    on_release_ = std::move(on_release);
  }

  // Held under the mutex, so set_on_release(nullptr) waits for a running call.
  void released() noexcept {
    std::lock_guard lock(mutex_);
    if (on_release_) on_release_();
  }

 private:
  static constexpr std::size_t kIdleLimit = 4;
  repo::DatabaseUrl url_;
  repo::PostgresOptions connect_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<repo::Connection>> idle_;
  std::function<void()> on_release_;
};

class PostgresLease final : public SubscriptionLease {
 public:
  // `in_transaction`: the lock is transaction-level, in a transaction the
  // connection keeps open (transaction pooling); else session-level.
  PostgresLease(std::shared_ptr<LeaseHub> hub, std::unique_ptr<repo::Connection> connection,
                std::int64_t key, bool in_transaction)
      : hub_(std::move(hub)),
        connection_(std::move(connection)),
        key_(key),
        in_transaction_(in_transaction) {}

  repo::Connection& connection() noexcept { return *connection_; }

  // Without a round trip: reads what the server sent on the idle lease
  // connection; a terminated backend sends its FATAL and closes the socket.
  bool lost() noexcept override {
    if (!connection_) return true;
    try {
      PGconn* conn = repo::as_postgres(*connection_).native_handle();
      if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) return true;
      if (PQconsumeInput(conn) == 0) return true;
      return PQstatus(conn) != CONNECTION_OK;
    } catch (...) {
      return true;
    }
  }

  ~PostgresLease() override {
    try {
      if (in_transaction_) {
        connection_->execute_batch("ROLLBACK");
      } else {
        connection_->execute("SELECT pg_advisory_unlock($1::bigint)", key_);
      }
      hub_->give_back(std::move(connection_));
    } catch (...) {
      // Closing the connection releases the lock just the same.
      connection_.reset();
    }
    hub_->released();
  }

 private:
  std::shared_ptr<LeaseHub> hub_;
  std::unique_ptr<repo::Connection> connection_;
  std::int64_t key_;
  bool in_transaction_;
};

}  // namespace postgres_detail

// ---- the backend -----------------------------------------------------------------

class PostgresBackend::Impl {
 public:
  Impl(PostgresBackend& owner, repo::Repo repo_in, PostgresBackendOptions options_in);
  ~Impl();

  // SQL text, built once (the schema is part of it).
  struct Statements {
    std::string append;
    std::string append_guarded;
    std::string append_one;
    std::string append_group;
    std::string release_reservation;
    std::string duplicate_of;
    std::string link;
    std::string delete_stream;
    std::string probe;
    std::string record;
    std::string primary_wal;       // read replica: the primary's WAL insert position
    std::string replica_replayed;  // read replica: its replay position
    std::string read_all_forward;
    std::string read_all_backward;
    std::string read_stream_forward;
    std::string read_stream_backward;
    std::string stream_info;
    std::string list_streams;
    std::string list_streams_backward;
    std::string record_snapshot;
    std::string read_snapshot;
    std::string delete_snapshot;
    std::string load_checkpoint;
    std::string store_checkpoint;
    std::string delete_checkpoint;
    std::string take_lease_token;
    std::string list_subscriptions;
    std::string subscription_holders;
  };

  // One append waiting for its commit group (see commit_groups.hpp).
  struct QueuedAppend {
    std::string_view stream_id;
    ExpectedVersion expected;
    std::span<const NewEvent> events;
    WriteResult result;
    bool alone = false;  // the group left it out: the caller runs it by itself
  };

  WriteResult append(std::string_view stream_id, ExpectedVersion expected,
                     std::span<const NewEvent> events);
  // One append in its own statement on `connection` (inside the caller's
  // transaction when in_transaction).
  WriteResult append_alone(repo::Connection& connection, bool in_transaction,
                           std::string_view stream_id, ExpectedVersion expected,
                           std::span<const NewEvent> events);
  // Several appends in one statement (one transaction, one commit) on
  // `connection`; each gets its own result, or is marked `alone`.
  void append_group(repo::Connection& connection, std::span<QueuedAppend*> group);
  WriteResult link(std::string_view stream_id, ExpectedVersion expected,
                   std::span<const Uuid> event_ids);
  WriteResult delete_stream(std::string_view stream_id, ExpectedVersion expected, DeleteMode mode);
  ReadResult read_stream(std::string_view stream_id, StreamVersion start, std::size_t count,
                         Direction direction);
  ReadResult read_all(GlobalPosition start, std::size_t count, Direction direction);
  GlobalPosition head_position();
  std::unique_ptr<SubscriptionLease> try_acquire(std::string_view subscription,
                                                 std::string_view stream_id);

  // The background thread, started on the first call (the rule is in the
  // class comment of postgres_backend.hpp). Thread-safe; throws
  // std::system_error if the thread cannot be created (then a later call
  // tries again).
  Background& start_background();
  // For subscribers: the background started and, the first time, its LISTEN
  // in place (or its first connection attempt over), so that a commit after
  // this returns wakes them. noexcept: without a thread, subscribers still
  // re-read every poll interval of theirs.
  void serve_subscribers() noexcept;
  // Logs a watermark bound (watermark.hpp) on `connection`.
  void record_watermark(repo::Connection& connection);

  // Before a write (append, link, delete): the write's NOTIFY and the periodic
  // watermark bounds need the background, and after the commit it is too late
  // to throw.
  void before_write() { start_background(); }
  // After a write committed (or joined a caller's transaction).
  void written(bool in_transaction) noexcept;
  // After the one-statement append failed: releases the reservation lock if
  // this session still holds it, or else ends the session (see append_one).
  void release_reservation(repo::Connection& connection) noexcept;
  // Faults of the store's functions, with the fault class they deserve.
  [[noreturn]] void rethrow(const repo::DatabaseError& error) const;

  // The watermark as of now, on `connection` (outside a transaction: shared
  // and recorded; inside: computed for that transaction only).
  GlobalPosition fresh_watermark(repo::Connection& connection);
  // `wal`, with a replica: the primary's WAL insert position read after the probe.
  WatermarkProbe probe(repo::Connection& connection, WalPosition* wal = nullptr);
  std::size_t read_all_into(repo::Connection& connection, std::vector<RecordedEvent>& out,
                            EventReader& reader, GlobalPosition from, GlobalPosition to,
                            std::size_t count, Direction direction);

  // ---- read replica (replica.hpp) ----
  // Whether the replica may serve a read of the thread holding `primary`
  // (not in a transaction, a sandbox or an enclosing lease; not failed lately).
  bool replica_serves(const repo::ConnectionLease& primary) const;
  // Replay position of the replica on `replica` (remembered as the highest seen).
  WalPosition replayed_on(repo::Connection& replica);
  // Whether the replica has replayed `wal`; with read-your-writes waits for
  // it, up to replica_wait (then gamebot::Error timeout).
  bool reached(repo::Connection& replica, WalPosition wal);
  // A fresh probe on `primary`, then U (replica.hpp) for the replica.
  GlobalPosition replica_watermark(repo::Connection& primary, repo::Connection& replica);
  // The primary's WAL insert position now.
  WalPosition primary_wal(repo::Connection& primary);
  // After a replica fault: reads go to the primary for replica_retry.
  void replica_failed() noexcept;
  ReadResult read_all_on_replica(repo::Connection& primary, GlobalPosition start, std::size_t count,
                                 Direction direction);
  // `read(connection)` on the replica when it serves, else on the primary.
  template <typename F>
  auto read_either(F&& read) -> decltype(read(std::declval<repo::Connection&>()));
  ReadResult read_stream_on(repo::Connection& connection, std::string_view stream_id,
                            StreamVersion start, std::size_t count, Direction direction);

  struct Replica {
    explicit Replica(repo::Repo repo_in) : repo(std::move(repo_in)) {}
    repo::Repo repo;
    std::mutex mutex;
    postgres_detail::ReplicaProgress progress;  // guarded by mutex
    std::atomic<GlobalPosition> usable{0};      // U as last computed
    std::atomic<WalPosition> replayed{0};       // highest replay position seen since the last fault
    std::atomic<std::int64_t> down_until{0};    // steady_clock ticks: primary only until then
    WalPosition schema_wal = 0;                 // the schema exists on a replica past this
    std::atomic<std::uint64_t> reads{0};
    std::atomic<std::uint64_t> failovers{0};
    std::unique_ptr<postgres_detail::ReplayWatcher> watcher;
  };

  PostgresBackend& owner;
  repo::Repo repo;
  PostgresBackendOptions options;
  // Transaction pooling: nothing outlives its transaction on the server.
  bool pooled = false;
  // The background connection LISTENs (else it polls).
  bool listening = true;
  // Constructed inside a caller's transaction or a sandbox: the background
  // started at once (see the constructor).
  bool constructed_in_transaction = false;
  SqlNames names;
  Statements sql;

  std::mutex watermark_mutex;
  WatermarkTracker tracker;              // guarded by watermark_mutex
  std::atomic<std::uint64_t> probes{0};  // probes started (under watermark_mutex)
  std::atomic<GlobalPosition> safe{0};   // tracker.safe(), readable without the mutex

  postgres_detail::CommitGroups<QueuedAppend> commit_groups;
  std::atomic<std::uint64_t> grouped{0};  // appends that ran as members of a combined transaction
  // Commits outside a transaction by appends carried (commits_by_group_size).
  std::array<std::atomic<std::uint64_t>, 17> group_sizes{};
  void count_commit(std::size_t appends) noexcept {
    group_sizes[std::min(appends, group_sizes.size() - 1)].fetch_add(1, std::memory_order_relaxed);
  }

  std::shared_ptr<postgres_detail::LeaseHub> leases;
  std::once_flag background_once;
  std::unique_ptr<Background> background;       // set once, by start_background()
  std::atomic<Background*> running{nullptr};    // `background` once set, for callers that must not
                                                // start it
  std::atomic<bool> subscribers_served{false};  // serve_subscribers() has waited once
  std::unique_ptr<Replica> replica;             // with read_url
};

PostgresBackend::Impl::Impl(PostgresBackend& owner_in, repo::Repo repo_in,
                            PostgresBackendOptions options_in)
    : owner(owner_in),
      repo(std::move(repo_in)),
      options(std::move(options_in)),
      pooled(options.pooling == PostgresPooling::transaction),
      listening(options.notifications == PostgresNotifications::listen &&
                (!pooled || options.listen_url.has_value())),
      names(options.schema),
      commit_groups(options.group_commit_in_flight, options.group_commit_patience) {
  if (repo.driver() != repo::Driver::postgres) {
    throw InvalidArgument("PostgresBackend needs a PostgreSQL repo, got " + repo.url().redacted());
  }
  if (pooled && repo.pool().options().connect.postgres.prepared_statements) {
    throw InvalidArgument(
        "PostgresBackend with transaction pooling needs a repo without named prepared statements "
        "(PostgresOptions::prepared_statements = false): a pooler in transaction mode runs each "
        "transaction on any server session, where they are unknown");
  }
  if (options.listen_url && options.listen_url->driver() != repo::Driver::postgres) {
    throw InvalidArgument(
        fmt::format("listen_url '{}' is not a postgres:// URL", options.listen_url->redacted()));
  }
  if (options.read_url && options.read_url->driver() != repo::Driver::postgres) {
    throw InvalidArgument(
        fmt::format("read_url '{}' is not a postgres:// URL", options.read_url->redacted()));
  }
  const std::string& s = names.quoted_schema;
  auto append_sql = [&](std::string_view function) {
    return fmt::format(
        "SELECT status, version, first_position, event_id FROM {}.{}($1, $2, $3, "
        "$4::uuid[], $5::text[], $6::bytea[], $7::bytea[], $8::uuid[], $9::uuid[], "
        "$10::timestamptz[], $11, $12)",
        s, function);
  };
  sql.append = append_sql("append_events");
  sql.append_guarded = append_sql("append_events_guarded");
  // The common single-event append (an existing live stream, the expectation
  // holds, the id is new) as one prepared statement: append_events' steps
  // W1-W3 (watermark.hpp) as a chain of CTEs, each fed by the previous one's
  // row, so they run in order and not at all when the UPDATE matches nothing
  // (then the client calls append_events, which tells the outcome). One cached
  // generic plan and no PL/pgSQL statement start-ups. The reservation lock is
  // session level and held from `reserving` to `released`; an error in between
  // (a cancel, statement_timeout) is followed by release_reservation from the
  // client (Impl::append), so it never outlives the failed statement. Only
  // outside a transaction: inside one, an error would leave the caller's
  // transaction unable to run that release (append_events_guarded instead).
  // Not with transaction pooling (see append_alone).
  sql.append_one = fmt::format(
      "WITH bumped AS MATERIALIZED ("
      "UPDATE {s}.streams s SET version = s.version + 1 "
      "WHERE s.stream_id = $1 AND s.deleted_at IS NULL "
      "AND ($2 = 0 OR $2 = 2 OR ($2 = 3 AND s.version = $3)) "
      "AND NOT EXISTS (SELECT 1 FROM {s}.events e WHERE e.event_id = $4::uuid) "
      "RETURNING s.version, pg_current_xact_id()::text::bigint AS me), "
      "marked AS MATERIALIZED (SELECT b.version, b.me, pg_advisory_xact_lock_shared("
      "{ns}::bigint << 32 | (b.me & 4294967295)) AS done FROM bumped b), "
      "{reservation}"
      "inserted AS (INSERT INTO {s}.events (position, event_id, stream_id, stream_version, type, "
      "data, metadata, causation_id, correlation_id, created_at, data_json) "
      "SELECT r.position, $4::uuid, $1, r.version, $5, $6::bytea, $7::bytea, $8::uuid, $9::uuid, "
      "$10::timestamptz, CASE WHEN $11 THEN convert_from($6::bytea, 'UTF8')::jsonb END "
      "FROM released r RETURNING position, stream_version) "
      "SELECT position, stream_version FROM inserted",
      fmt::arg("s", s), fmt::arg("ns", names.lock_namespace),
      fmt::arg(
          "reservation",
          fmt::format("reserving AS MATERIALIZED (SELECT m.version, m.me, "
                      "pg_advisory_lock({ns}::bigint << 32) AS done FROM marked m), "
                      "published AS MATERIALIZED (SELECT r.version, CASE WHEN r.me > "
                      "coalesce(pg_sequence_last_value({xids}::regclass), 0) THEN "
                      "setval({xids}::regclass, r.me) END AS done FROM reserving r), "
                      "taken AS MATERIALIZED (SELECT p.version, "
                      "nextval({positions}::regclass) AS position FROM published p), "
                      "released AS MATERIALIZED (SELECT t.version, t.position, "
                      "pg_advisory_unlock({ns}::bigint << 32) AS done FROM taken t), ",
                      fmt::arg("ns", names.lock_namespace), fmt::arg("xids", names.xids_literal),
                      fmt::arg("positions", names.positions_literal))));
  sql.release_reservation = fmt::format(
      "SELECT pg_advisory_unlock({ns}::bigint << 32) FROM pg_locks l "
      "WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.granted "
      "AND l.classid = {ns} AND l.objid = 0 AND l.objsubid = 1",
      fmt::arg("ns", names.lock_namespace));
  // A commit group: the common case of several callers' appends (an existing
  // live stream, the expectation holds, the ids are new) in one statement, so
  // in one transaction with one commit: append_one's steps for a set of
  // members. The group first locks its streams, skipping rows another
  // transaction holds; it bumps the streams whose checks hold, marks the
  // transaction and publishes its xid once (W1, W2), takes one consecutive
  // block of positions for all of them under the reservation lock (W3), in
  // member order, and inserts their events. A member that returns no row
  // (new or deleted stream, failed expectation, duplicate id, held row, an
  // empty batch) did nothing, and its caller appends alone, which tells its
  // outcome: a failed check is only its caller's. Members: $1-$5 (stream,
  // kind, expected, first and last index into the event arrays $6-$12); a
  // stream appears at most once per group.
  sql.append_group = fmt::format(
      "WITH members AS MATERIALIZED (SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], "
      "$4::int8[], $5::int8[]) WITH ORDINALITY AS g(stream_id, kind, expected, lo, hi, o)), "
      "locked AS MATERIALIZED (SELECT s.stream_id FROM {s}.streams s "
      "WHERE s.stream_id = ANY ($1::text[]) AND s.deleted_at IS NULL FOR UPDATE SKIP LOCKED), "
      "bumped AS MATERIALIZED (UPDATE {s}.streams s SET version = s.version + (m.hi - m.lo + 1) "
      "FROM members m WHERE s.stream_id = m.stream_id AND m.hi >= m.lo "
      "AND s.stream_id IN (SELECT l.stream_id FROM locked l) "
      "AND (m.kind = 0 OR m.kind = 2 OR (m.kind = 3 AND s.version = m.expected)) "
      "AND NOT EXISTS (SELECT 1 FROM {s}.events e WHERE e.event_id = ANY "
      "(($6::uuid[])[m.lo:m.hi])) "
      "RETURNING m.o, m.lo, m.hi, s.version - (m.hi - m.lo + 1) AS base, "
      "pg_current_xact_id()::text::bigint AS me), "
      "writer AS MATERIALIZED (SELECT b.me FROM bumped b LIMIT 1), "
      "marked AS MATERIALIZED (SELECT w.me, pg_advisory_xact_lock_shared("
      "{ns}::bigint << 32 | (w.me & 4294967295)) AS done FROM writer w), "
      "total AS MATERIALIZED (SELECT sum(b.hi - b.lo + 1)::bigint AS n FROM bumped b), "
      "{reservation}"
      "placed AS MATERIALIZED (SELECT b.o, b.lo, b.hi, b.base, r.first + sum(b.hi - b.lo + 1) "
      "OVER (ORDER BY b.o) - (b.hi - b.lo + 1) AS first_position FROM bumped b, released r), "
      "inserted AS (INSERT INTO {s}.events (position, event_id, stream_id, stream_version, type, "
      "data, metadata, causation_id, correlation_id, created_at, data_json) "
      "SELECT p.first_position + (i - p.lo), ($6::uuid[])[i], m.stream_id, p.base + (i - p.lo) + "
      "1, ($7::text[])[i], ($8::bytea[])[i], ($9::bytea[])[i], ($10::uuid[])[i], "
      "($11::uuid[])[i], ($12::timestamptz[])[i], CASE WHEN $13 THEN "
      "convert_from(($8::bytea[])[i], 'UTF8')::jsonb END "
      "FROM placed p JOIN members m ON m.o = p.o CROSS JOIN LATERAL generate_series(p.lo, p.hi) "
      "i) "
      "SELECT p.o, p.first_position, p.base + (p.hi - p.lo + 1) FROM placed p ORDER BY p.o",
      fmt::arg("s", s), fmt::arg("ns", names.lock_namespace),
      fmt::arg("reservation",
               pooled
                   ? fmt::format("released AS MATERIALIZED (SELECT {}.reserve_positions(m.me, "
                                 "t.n) AS first FROM marked m, total t), ",
                                 s)
                   : fmt::format(
                         "reserving AS MATERIALIZED (SELECT m.me, "
                         "pg_advisory_lock({ns}::bigint << 32) AS done FROM marked m), "
                         "published AS MATERIALIZED (SELECT CASE WHEN r.me > "
                         "coalesce(pg_sequence_last_value({xids}::regclass), 0) THEN "
                         "setval({xids}::regclass, r.me) END AS done FROM reserving r), "
                         "taken AS MATERIALIZED (SELECT setval({positions}::regclass, "
                         "coalesce(pg_sequence_last_value({positions}::regclass), 0) + t.n) - "
                         "t.n + 1 AS first FROM published p, total t), "
                         "released AS MATERIALIZED (SELECT k.first, "
                         "pg_advisory_unlock({ns}::bigint << 32) AS done FROM taken k), ",
                         fmt::arg("ns", names.lock_namespace), fmt::arg("xids", names.xids_literal),
                         fmt::arg("positions", names.positions_literal))));
  sql.duplicate_of = fmt::format(
      "SELECT e.event_id FROM {0}.events e WHERE e.event_id = ANY ($1::uuid[]) LIMIT 1", s);
  sql.link = fmt::format(
      "SELECT status, version, event_id FROM {}.link_events($1, $2, $3, $4::uuid[], $5)", s);
  sql.delete_stream =
      fmt::format("SELECT status, version FROM {}.delete_stream($1, $2, $3, $4, $5)", s);
  // With a replica, the WAL insert position after the probe (replica.hpp):
  // the function in FROM has returned before the select list is evaluated.
  sql.probe = options.read_url
                  ? fmt::format(
                        "SELECT p.last_reserved, p.writers, (pg_current_wal_insert_lsn() - "
                        "'0/0'::pg_lsn)::bigint FROM {}.probe_watermark() p",
                        s)
                  : fmt::format("SELECT last_reserved, writers FROM {}.probe_watermark()", s);
  sql.record = fmt::format("SELECT {}.record_watermark()", s);
  // WAL positions as numbers (bytes since the start of the WAL). A server not
  // in recovery (read_url naming the primary itself) has replayed all it wrote.
  sql.primary_wal = "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint";
  sql.replica_replayed =
      "SELECT (coalesce(pg_last_wal_replay_lsn(), pg_current_wal_insert_lsn()) - "
      "'0/0'::pg_lsn)::bigint";
  // One bound only, so the plan is an ordered scan of the primary key whatever
  // the statistics say (with an upper bound too, a table not yet analyzed can
  // get a bitmap scan of everything in range plus a sort). Forward reads drop
  // the rows above the watermark themselves.
  sql.read_all_forward =
      fmt::format("SELECT {} FROM {}.events e WHERE e.position >= $1 ORDER BY e.position LIMIT $2",
                  kEventColumns, s);
  sql.read_all_backward = fmt::format(
      "SELECT {} FROM {}.events e WHERE e.position <= $1 ORDER BY e.position DESC LIMIT $2",
      kEventColumns, s);
  // One row per event, or one row of NULLs when the stream exists but has none
  // in range (or is soft-deleted: then `deleted` is true); no row: no stream.
  auto stream_read = [&](std::string_view cmp, std::string_view order) {
    return fmt::format(
        "SELECT st.deleted_at IS NOT NULL, x.num, {cols_x} FROM {s}.streams st "
        "LEFT JOIN LATERAL (SELECT * FROM ("
        "(SELECT e.stream_version AS num, {cols} FROM {s}.events e "
        "WHERE e.stream_id = st.stream_id AND e.stream_version {cmp} $2 "
        "ORDER BY e.stream_version {order} LIMIT $3) "
        "UNION ALL "
        "(SELECT l.version AS num, {cols} FROM {s}.links l JOIN {s}.events e "
        "ON e.position = l.position WHERE l.stream_id = st.stream_id AND l.version {cmp} $2 "
        "ORDER BY l.version {order} LIMIT $3)) u ORDER BY u.num {order} LIMIT $3) x "
        "ON st.deleted_at IS NULL WHERE st.stream_id = $1",
        fmt::arg("cols_x",
                 "x.position, x.event_id, x.stream_id, x.stream_version, x.type, x.data, "
                 "x.metadata, x.causation_id, x.correlation_id, x.created_at"),
        fmt::arg("cols", kEventColumns), fmt::arg("s", s), fmt::arg("cmp", cmp),
        fmt::arg("order", order));
  };
  sql.read_stream_forward = stream_read(">=", "ASC");
  sql.read_stream_backward = stream_read("<=", "DESC");
  sql.stream_info = fmt::format(
      "SELECT stream_id, version, created_at, deleted_at, sequence FROM {}.streams "
      "WHERE stream_id = $1",
      s);
  sql.list_streams = fmt::format(
      "SELECT stream_id, version, created_at, deleted_at, sequence FROM {}.streams "
      "WHERE sequence > $1 AND starts_with(stream_id, $2) ORDER BY sequence LIMIT $3",
      s);
  sql.list_streams_backward = fmt::format(
      "SELECT stream_id, version, created_at, deleted_at, sequence FROM {}.streams "
      "WHERE ($1 = 0 OR sequence < $1) AND starts_with(stream_id, $2) "
      "ORDER BY sequence DESC LIMIT $3",
      s);
  sql.record_snapshot = fmt::format(
      "INSERT INTO {}.snapshots (source_id, source_version, source_type, data, metadata, "
      "created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (source_id) DO UPDATE SET "
      "source_version = EXCLUDED.source_version, source_type = EXCLUDED.source_type, "
      "data = EXCLUDED.data, metadata = EXCLUDED.metadata, created_at = EXCLUDED.created_at",
      s);
  sql.read_snapshot = fmt::format(
      "SELECT source_id, source_version, source_type, data, metadata, created_at "
      "FROM {}.snapshots WHERE source_id = $1",
      s);
  sql.delete_snapshot = fmt::format("DELETE FROM {}.snapshots WHERE source_id = $1", s);
  sql.load_checkpoint =
      fmt::format("SELECT checkpoint FROM {}.subscriptions WHERE name = $1 AND stream_id = $2", s);
  // Fenced and monotonic in one statement: the conflicting row is locked and
  // re-checked, so a token taken by a concurrent lease is either seen (the
  // write is refused) or taken after this write commits.
  sql.store_checkpoint = fmt::format(
      "INSERT INTO {0}.subscriptions AS stored (name, stream_id, checkpoint, lease_token) "
      "VALUES ($1, $2, $3, $4) ON CONFLICT (name, stream_id) DO UPDATE SET "
      "checkpoint = GREATEST(stored.checkpoint, EXCLUDED.checkpoint), "
      "lease_token = EXCLUDED.lease_token, updated_at = now() "
      "WHERE stored.lease_token <= EXCLUDED.lease_token",
      s);
  sql.take_lease_token = fmt::format(
      "WITH token AS (SELECT nextval('{0}.subscription_lease_tokens') AS value), "
      "marked AS (UPDATE {0}.subscriptions SET lease_token = token.value FROM token "
      "WHERE name = $1 AND stream_id = $2) SELECT value FROM token",
      s);
  sql.delete_checkpoint =
      fmt::format("DELETE FROM {}.subscriptions WHERE name = $1 AND stream_id = $2", s);
  sql.list_subscriptions = fmt::format(
      "SELECT name, stream_id, checkpoint, lease_token FROM {}.subscriptions "
      "ORDER BY name COLLATE \"C\", stream_id COLLATE \"C\"",
      s);
  // Session advisory locks held in this database (a lease's key is bigint:
  // classid the high half, objid the low one, objsubid 1), with the holder.
  sql.subscription_holders =
      "SELECT (l.classid::bigint << 32) | l.objid::bigint AS key, l.pid, "
      "coalesce(a.application_name, '') AS application_name FROM pg_locks l "
      "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
      "WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted "
      "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())";

  {
    repo::ConnectionLease lease = repo.acquire("event store schema");
    if (options.migrate) {
      postgres_event_store_migrator(names.schema).migrate(*lease);
    } else if (options.verify_schema) {
      postgres_event_store_migrator(names.schema).require_current(*lease);
    }
    // Log a watermark bound before this process's first append can take an
    // xid, so readers elsewhere can bound its transactions at once
    // (watermark.hpp: any committed entry whose H was read before the xid was
    // published bounds it, whoever logged it). Here, outside a transaction,
    // it commits at once, with no connection of its own; the background logs
    // fresher bounds from the first write on. Inside a caller's transaction
    // (or a sandbox) the entry would stay invisible until that transaction
    // ends while its appends' marks are visible at once, so there the
    // background logs it on its connection, as the first write would need.
    constructed_in_transaction = lease->in_transaction();
    if (!constructed_in_transaction && options.log_watermark_at_start) {
      try {
        record_watermark(*lease);
      } catch (const repo::DatabaseError& error) {
        // Like a failed record on the background connection: it only costs
        // readers elsewhere latency (a role without INSERT can still read).
        repo::logger()->warn("event store: logging the watermark failed: {}", error.what());
      }
    }
    // Never migrated: the replica gets the schema by replaying the primary.
    if (options.read_url) {
      replica = std::make_unique<Replica>(repo::Repo::open(*options.read_url, options.repo));
      replica->schema_wal = primary_wal(*lease);
    }
  }

  const repo::PostgresOptions& connect = repo.pool().options().connect.postgres;
  leases = std::make_shared<postgres_detail::LeaseHub>(repo.url(), connect);
  leases->set_on_release([this] {
    owner.notify_changed();
    // Taking the lease started the background (try_acquire).
    if (Background* started = running.load()) started->request_notify();
  });
  if (constructed_in_transaction) start_background().wait_started(kStartWait);
  if (replica) {
    replica->watcher = std::make_unique<postgres_detail::ReplayWatcher>(
        [this] {
          repo::ConnectionLease lease = replica->repo.acquire();
          return replayed_on(*lease);
        },
        [this] { owner.notify_changed(); }, options.poll_interval);
  }
}

PostgresBackend::Impl::~Impl() {
  // First, so a lease released meanwhile (its callback uses the background,
  // if it started) has finished before the thread goes.
  leases->set_on_release(nullptr);
  if (replica) replica->watcher.reset();
  background.reset();
}

Background& PostgresBackend::Impl::start_background() {
  std::call_once(background_once, [this] {
    Background::Settings settings;
    settings.url = pooled && options.listen_url ? *options.listen_url : repo.url();
    settings.connect = repo.pool().options().connect.postgres;
    settings.channel = names.channel;
    settings.listen = listening;
    settings.interval = options.poll_interval;
    Background::Hooks hooks;
    hooks.changed = [this] { owner.notify_changed(); };
    hooks.poll = [this](repo::Connection& connection) {
      const GlobalPosition before = safe.load();
      if (fresh_watermark(connection) != before) owner.notify_changed();
    };
    hooks.record = [this](repo::Connection& connection) { record_watermark(connection); };
    background = std::make_unique<Background>(std::move(settings), std::move(hooks));
    running.store(background.get());
  });
  return *background;
}

void PostgresBackend::Impl::serve_subscribers() noexcept {
  if (subscribers_served.load()) return;
  try {
    // A subscriber reads its notifier's sequence after this returns and then
    // catches up from its cursor: a commit the catch-up misses came after the
    // LISTEN, so its NOTIFY bumps the sequence.
    start_background().wait_started(kStartWait);
    subscribers_served.store(true);
  } catch (const std::exception& error) {
    repo::logger()->warn("event store: cannot start the listener thread ({})", error.what());
  }
}

void PostgresBackend::Impl::record_watermark(repo::Connection& connection) {
  connection.execute(sql.record);
}

void PostgresBackend::Impl::written(bool in_transaction) noexcept {
  owner.notify_changed();
  // Inside a transaction the function NOTIFYs itself (delivered at commit).
  // before_write() started the background.
  if (!in_transaction) running.load()->request_notify();
}

void PostgresBackend::Impl::rethrow(const repo::DatabaseError& error) const {
  const std::string& state = error.sqlstate();
  if (state == "GBISO") {
    throw Error(FaultClass::configuration,
                "$all reads and head_position need READ COMMITTED isolation: " + error.message(),
                state);
  }
  // Invalid JSON, or bytes that are not UTF-8, in json_data mode.
  if (options.json_data &&
      (state == "22P02" || state == "22021" || state == "22032" || state == "2202E")) {
    throw Error(FaultClass::serialization,
                "event data is not valid JSON for the jsonb column: " + error.message(), state);
  }
  throw;
}

// ---- writes ----------------------------------------------------------------------

WriteResult PostgresBackend::Impl::append_alone(repo::Connection& connection, bool in_transaction,
                                                std::string_view stream_id,
                                                ExpectedVersion expected,
                                                std::span<const NewEvent> events) {
  const std::size_t n = events.size();
  WriteResult result;
  // A unique violation outside a transaction: the statement was its own
  // transaction and is gone; a writer committed the same id (or, in theory,
  // version) after our checks: an expected outcome.
  auto conflict = [&](const repo::DatabaseError& error, const repo::Param& ids) {
    if (in_transaction || !error.unique_violation()) rethrow(error);
    if (error.constraint() == "events_event_id_key") {
      result.status = WriteStatus::duplicate_event_id;
      result.event_id = connection.query_value<Uuid>(sql.duplicate_of, ids);
    } else if (error.constraint() == "events_stream_version_key") {
      result.status = WriteStatus::wrong_expected_version;
    } else {
      rethrow(error);
    }
    repo::Result rows = connection.query(sql.stream_info, stream_id);
    result.version = rows.next() ? rows.row().get<std::int64_t>(1) : 0;
  };

  // One event to a stream that may exist: the one-statement path first; no
  // row back means it did nothing (new stream, conflict, duplicate), and the
  // function below decides. Not with transaction pooling: unprepared, that
  // statement is parsed and planned on every call, while the function's
  // PL/pgSQL plans stay cached in each of the pooler's few server sessions
  // (bench/RESULTS.md "PgBouncer: 16 writers": server CPU per append 717 us
  // with it, 438 us without).
  if (n == 1 && !in_transaction && !pooled && allows_existing_stream(expected)) {
    const NewEvent& e = events.front();
    const auto created = postgres_detail::timestamptz_binary(e.created_at);
    const repo::Param id(std::span<const std::uint8_t>(e.id.bytes()));
    const repo::Param causation =
        e.causation_id ? repo::Param(std::span<const std::uint8_t>(e.causation_id->bytes()))
                       : repo::Param();
    const repo::Param correlation =
        e.correlation_id ? repo::Param(std::span<const std::uint8_t>(e.correlation_id->bytes()))
                         : repo::Param();
    try {
      repo::Result rows =
          connection.query(sql.append_one, stream_id, kind_code(expected), expected.version(), id,
                           e.type, as_bytes(e.data), as_bytes(e.metadata), causation, correlation,
                           std::span<const std::uint8_t>(created), options.json_data);
      if (rows.next()) {
        const repo::Row row = rows.row();
        result.status = WriteStatus::ok;
        result.first_position = row.get<std::int64_t>(0);
        result.last_position = result.first_position;
        result.version = row.get<std::int64_t>(1);
        return result;
      }
    } catch (const repo::DatabaseError& error) {
      release_reservation(connection);
      BinaryArray ids(postgres_detail::kUuidOid, 1);
      ids.add(e.id);
      conflict(error, bytes_param(ids));
      return result;
    }
  }

  EventColumns columns(n);
  for (const NewEvent& e : events) columns.add(e);
  try {
    repo::Result rows = connection.query(
        in_transaction ? sql.append_guarded : sql.append, stream_id, kind_code(expected),
        expected.version(), bytes_param(columns.ids), bytes_param(columns.types),
        bytes_param(columns.data), bytes_param(columns.metadata), bytes_param(columns.causation),
        bytes_param(columns.correlation), bytes_param(columns.created), options.json_data,
        in_transaction);
    if (!rows.next()) throw Error(FaultClass::internal, "append_events returned no row");
    const repo::Row row = rows.row();
    result.status = status_of(row.get<int>(0));
    result.version = row.get<std::int64_t>(1);
    if (result.ok() && n > 0) {
      result.first_position = row.get<std::int64_t>(2);
      result.last_position = result.first_position + static_cast<GlobalPosition>(n) - 1;
    }
    result.event_id = row.get<std::optional<Uuid>>(3);
  } catch (const repo::DatabaseError& error) {
    conflict(error, bytes_param(columns.ids));
  }
  return result;
}

WriteResult PostgresBackend::Impl::append(std::string_view stream_id, ExpectedVersion expected,
                                          std::span<const NewEvent> events) {
  before_write();
  repo::ConnectionLease lease = repo.acquire();
  const bool in_transaction = lease->in_transaction();
  WriteResult result;
  if (in_transaction) {
    // The caller's transaction decides when it commits: nothing to group.
    result = append_alone(*lease, true, stream_id, expected, events);
  } else {
    QueuedAppend request{stream_id, expected, events, {}, false};
    commit_groups.run(
        request,
        [&](QueuedAppend& alone) {
          count_commit(1);
          alone.result = append_alone(*lease, false, alone.stream_id, alone.expected, alone.events);
        },
        [&](std::span<QueuedAppend*> group) { append_group(*lease, group); });
    if (request.alone) count_commit(1);
    result =
        request.alone ? append_alone(*lease, false, stream_id, expected, events) : request.result;
  }
  lease.release();
  if (result.ok() && !events.empty()) written(in_transaction);
  return result;
}

void PostgresBackend::Impl::append_group(repo::Connection& connection,
                                         std::span<QueuedAppend*> group) {
  if (group.size() == 1) {
    QueuedAppend& alone = *group.front();
    count_commit(1);
    alone.result = append_alone(connection, false, alone.stream_id, alone.expected, alone.events);
    return;
  }
  // Only members that can take the common path, one per stream (a second
  // append to a stream in the group appends alone, after it).
  std::vector<QueuedAppend*> sent;
  std::vector<std::string_view> streams_seen;
  for (QueuedAppend* member : group) {
    const bool repeated = std::find(streams_seen.begin(), streams_seen.end(), member->stream_id) !=
                          streams_seen.end();
    member->alone = member->events.empty() || !allows_existing_stream(member->expected) || repeated;
    if (member->alone) continue;
    streams_seen.push_back(member->stream_id);
    sent.push_back(member);
  }
  if (sent.size() < 2) {
    for (QueuedAppend* member : sent) {
      member->alone = false;
      count_commit(1);
      member->result =
          append_alone(connection, false, member->stream_id, member->expected, member->events);
    }
    return;
  }
  group = std::span<QueuedAppend*>(sent);
  std::size_t total = 0;
  for (const QueuedAppend* member : group) total += member->events.size();
  BinaryArray streams(postgres_detail::kTextOid, group.size());
  BinaryArray kinds(postgres_detail::kInt8Oid, group.size());
  BinaryArray expected(postgres_detail::kInt8Oid, group.size());
  BinaryArray first(postgres_detail::kInt8Oid, group.size());
  BinaryArray last(postgres_detail::kInt8Oid, group.size());
  EventColumns columns(total);
  std::int64_t index = 0;  // of the last event added (SQL arrays count from 1)
  for (const QueuedAppend* member : group) {
    streams.add(member->stream_id);
    kinds.add_int8(kind_code(member->expected));
    expected.add_int8(member->expected.version());
    first.add_int8(index + 1);
    for (const NewEvent& e : member->events) {
      columns.add(e);
      ++index;
    }
    last.add_int8(index);
  }
  count_commit(group.size());
  try {
    repo::Result rows = connection.query(
        sql.append_group, bytes_param(streams), bytes_param(kinds), bytes_param(expected),
        bytes_param(first), bytes_param(last), bytes_param(columns.ids), bytes_param(columns.types),
        bytes_param(columns.data), bytes_param(columns.metadata), bytes_param(columns.causation),
        bytes_param(columns.correlation), bytes_param(columns.created), options.json_data);
    for (QueuedAppend* member : group) member->alone = true;  // until its row comes
    while (rows.next()) {
      const repo::Row row = rows.row();
      const auto index = static_cast<std::size_t>(row.get<std::int64_t>(0));
      if (index < 1 || index > group.size()) {
        throw Error(FaultClass::internal, "the commit group returned an unknown member");
      }
      QueuedAppend& member = *group[index - 1];
      member.alone = false;
      member.result.status = WriteStatus::ok;
      member.result.first_position = row.get<std::int64_t>(1);
      member.result.last_position =
          member.result.first_position + static_cast<GlobalPosition>(member.events.size()) - 1;
      member.result.version = row.get<std::int64_t>(2);
      ++grouped;
    }
  } catch (const repo::DatabaseError& error) {
    // The server rejected the statement (a member's invalid JSON, an id twice
    // in the group, a cancel): nothing of it committed, so every member
    // appends alone and a fault reaches only the caller it belongs to. A lost
    // connection leaves the commit unknown: that fault is everyone's.
    release_reservation(connection);
    if (connection.broken()) throw;
    for (QueuedAppend* member : group) member->alone = true;
  }
}

void PostgresBackend::Impl::release_reservation(repo::Connection& connection) noexcept {
  if (pooled) return;  // reserve_positions holds no lock past its statement
  try {
    connection.execute(sql.release_reservation);
    return;
  } catch (const std::exception&) {
    // Fall through: the lock may still be held, so the session must end.
  }
  // Closing the socket ends the server session, which releases every session
  // lock; the connection reports itself dead and the pool discards it.
  if (connection.broken()) return;
  const int socket = PQsocket(repo::as_postgres(connection).native_handle());
  if (socket >= 0) ::shutdown(socket, SHUT_RDWR);
}

WriteResult PostgresBackend::Impl::link(std::string_view stream_id, ExpectedVersion expected,
                                        std::span<const Uuid> event_ids) {
  before_write();
  BinaryArray ids(postgres_detail::kUuidOid, event_ids.size());
  for (const Uuid& id : event_ids) ids.add(id);
  repo::ConnectionLease lease = repo.acquire();
  const bool in_transaction = lease->in_transaction();
  WriteResult result;
  try {
    repo::Result rows = lease->query(sql.link, stream_id, kind_code(expected), expected.version(),
                                     bytes_param(ids), in_transaction);
    if (!rows.next()) throw Error(FaultClass::internal, "link_events returned no row");
    const repo::Row row = rows.row();
    result.status = status_of(row.get<int>(0));
    result.version = row.get<std::int64_t>(1);
    result.event_id = row.get<std::optional<Uuid>>(2);
  } catch (const repo::DatabaseError& error) {
    rethrow(error);
  }
  lease.release();
  if (result.ok() && !event_ids.empty()) written(in_transaction);
  return result;
}

WriteResult PostgresBackend::Impl::delete_stream(std::string_view stream_id,
                                                 ExpectedVersion expected, DeleteMode mode) {
  before_write();
  repo::ConnectionLease lease = repo.acquire();
  const bool in_transaction = lease->in_transaction();
  WriteResult result;
  try {
    repo::Result rows = lease->query(sql.delete_stream, stream_id, kind_code(expected),
                                     expected.version(), mode == DeleteMode::hard, in_transaction);
    if (!rows.next()) throw Error(FaultClass::internal, "delete_stream returned no row");
    const repo::Row row = rows.row();
    result.status = status_of(row.get<int>(0));
    result.version = row.get<std::int64_t>(1);
  } catch (const repo::DatabaseError& error) {
    rethrow(error);
  }
  lease.release();
  if (result.ok()) written(in_transaction);
  return result;
}

// ---- the watermark -----------------------------------------------------------------

WatermarkProbe PostgresBackend::Impl::probe(repo::Connection& connection, WalPosition* wal) {
  WatermarkProbe probe;
  try {
    repo::Result rows = connection.query(sql.probe);
    if (!rows.next()) throw Error(FaultClass::internal, "probe_watermark returned no row");
    const repo::Row row = rows.row();
    probe.last_reserved = row.get<std::int64_t>(0);
    probe.writers = parse_writers(row.get<std::string_view>(1));
    if (wal != nullptr && replica) *wal = static_cast<WalPosition>(row.get<std::int64_t>(2));
  } catch (const repo::DatabaseError& error) {
    rethrow(error);
  }
  return probe;
}

GlobalPosition PostgresBackend::Impl::fresh_watermark(repo::Connection& connection) {
  const auto deadline = std::chrono::steady_clock::now() + kSettleLimit;
  auto pause = std::chrono::microseconds(50);
  if (connection.in_transaction()) {
    // The caller's own marks are invisible to its probe (its own xid is never
    // in progress for it), so its uncommitted appends count as final for it,
    // which they are, to it. Such a probe must not feed the shared history.
    for (;;) {
      const WatermarkProbe result = probe(connection);
      WatermarkOutcome outcome;
      {
        std::lock_guard lock(watermark_mutex);
        outcome = tracker.peek(result);
      }
      if (!outcome.unresolved || std::chrono::steady_clock::now() >= deadline) {
        return outcome.safe;
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(2000));
    }
  }
  const std::uint64_t arrival = probes.load();
  std::lock_guard lock(watermark_mutex);
  // A probe that started after we arrived has seen everything we must see.
  if (probes.load() > arrival) return tracker.safe();
  for (;;) {
    ++probes;
    WalPosition wal = 0;
    const WatermarkOutcome outcome = tracker.apply(probe(connection, &wal));
    safe.store(outcome.safe);
    if (replica) {
      std::lock_guard replica_lock(replica->mutex);
      replica->progress.add({outcome.safe, wal});
    }
    if (!outcome.unresolved || std::chrono::steady_clock::now() >= deadline) return outcome.safe;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(2000));
  }
}

GlobalPosition PostgresBackend::Impl::head_position() {
  repo::ConnectionLease lease = repo.acquire();
  if (replica_serves(lease)) {
    try {
      repo::ConnectionLease on = on_replica([&] { return replica->repo.acquire(); });
      const GlobalPosition head = replica_watermark(*lease, *on);
      ++replica->reads;
      return head;
    } catch (const ReplicaFault&) {
      replica_failed();
    }
  }
  return fresh_watermark(*lease);
}

// ---- the read replica ----------------------------------------------------------------

bool PostgresBackend::Impl::replica_serves(const repo::ConnectionLease& primary) const {
  if (!replica || primary.nested() || primary.sandboxed() || primary->in_transaction()) {
    return false;
  }
  return std::chrono::steady_clock::now().time_since_epoch().count() >= replica->down_until.load();
}

WalPosition PostgresBackend::Impl::replayed_on(repo::Connection& on) {
  const auto wal =
      static_cast<WalPosition>(on.query_value<std::int64_t>(sql.replica_replayed).value_or(0));
  WalPosition seen = replica->replayed.load();
  while (seen < wal && !replica->replayed.compare_exchange_weak(seen, wal)) {
  }
  return wal;
}

bool PostgresBackend::Impl::reached(repo::Connection& on, WalPosition wal) {
  if (replica->replayed.load() >= wal) return true;
  WalPosition seen = on_replica([&] { return replayed_on(on); });
  if (seen >= wal) return true;
  if (!options.replica_read_your_writes) return false;
  const auto deadline = std::chrono::steady_clock::now() + options.replica_wait;
  auto pause = std::chrono::microseconds(100);
  for (;;) {
    if (std::chrono::steady_clock::now() >= deadline) {
      throw Error(FaultClass::timeout,
                  fmt::format("read replica {} has not replayed the primary's WAL up to {} "
                              "within replica_wait ({} ms); it is at {} (lagging, or its replay "
                              "is paused)",
                              replica->repo.url().redacted(), wal_text(wal),
                              options.replica_wait.count(), wal_text(seen)));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(5000));
    seen = on_replica([&] { return replayed_on(on); });
    if (seen >= wal) return true;
  }
}

WalPosition PostgresBackend::Impl::primary_wal(repo::Connection& primary) {
  return static_cast<WalPosition>(primary.query_value<std::int64_t>(sql.primary_wal).value_or(0));
}

GlobalPosition PostgresBackend::Impl::replica_watermark(repo::Connection& primary,
                                                        repo::Connection& on) {
  fresh_watermark(primary);  // records its (W, P) in replica->progress
  postgres_detail::ProbedWatermark latest;
  {
    std::lock_guard lock(replica->mutex);
    latest = replica->progress.latest().value_or(latest);
  }
  const bool caught_up = reached(on, latest.wal);
  std::lock_guard lock(replica->mutex);
  const GlobalPosition usable = replica->progress.usable(replica->replayed.load());
  replica->usable.store(usable);
  // Behind: wake subscribers when it has replayed what the primary shows now.
  if (!caught_up) replica->watcher->watch(latest.wal);
  return usable;
}

void PostgresBackend::Impl::replica_failed() noexcept {
  const auto until = std::chrono::steady_clock::now() + options.replica_retry;
  replica->down_until.store(until.time_since_epoch().count());
  // A restarted replica may come back behind what it had replayed.
  replica->replayed.store(0);
  replica->usable.store(0);
  ++replica->failovers;
  try {
    repo::logger()->warn("event store: read replica {} failed; reading from the primary for {} ms",
                         replica->repo.url().redacted(), options.replica_retry.count());
  } catch (...) {
    // Logging is best effort.
  }
}

template <typename F>
auto PostgresBackend::Impl::read_either(F&& read)
    -> decltype(read(std::declval<repo::Connection&>())) {
  repo::ConnectionLease primary = repo.acquire();
  if (replica_serves(primary)) {
    const WalPosition need =
        options.replica_read_your_writes ? primary_wal(*primary) : replica->schema_wal;
    try {
      repo::ConnectionLease on = on_replica([&] { return replica->repo.acquire(); });
      if (reached(*on, need)) {
        auto result = on_replica([&] { return read(*on); });
        ++replica->reads;
        return result;
      }
    } catch (const ReplicaFault&) {
      replica_failed();
    }
  }
  return read(*primary);
}

ReadResult PostgresBackend::Impl::read_all_on_replica(repo::Connection& primary,
                                                      GlobalPosition start, std::size_t count,
                                                      Direction direction) {
  ReadResult result;
  EventReader reader;
  repo::ConnectionLease lease = on_replica([&] { return replica->repo.acquire(); });
  repo::Connection& on = *lease;
  // As on the primary, with U (replica.hpp) in place of the watermark.
  const GlobalPosition known = replica->usable.load();
  if (direction == Direction::forward) {
    const GlobalPosition from = std::max<GlobalPosition>(start, 1);
    const std::size_t got = on_replica(
        [&] { return read_all_into(on, result.events, reader, from, known, count, direction); });
    if (got < count) {
      // Then on past `known`, up to a fresh watermark.
      const GlobalPosition fresh = replica_watermark(primary, on);
      on_replica([&] {
        return read_all_into(on, result.events, reader, std::max(from, known + 1), fresh,
                             count - got, direction);
      });
    }
  } else {
    const GlobalPosition top =
        start <= known ? start : std::min(start, replica_watermark(primary, on));
    on_replica([&] { return read_all_into(on, result.events, reader, 1, top, count, direction); });
  }
  reader.finish(result.events);
  ++replica->reads;
  return result;
}

// ---- reads -------------------------------------------------------------------------

std::size_t PostgresBackend::Impl::read_all_into(repo::Connection& connection,
                                                 std::vector<RecordedEvent>& out,
                                                 EventReader& reader, GlobalPosition from,
                                                 GlobalPosition to, std::size_t count,
                                                 Direction direction) {
  if (count == 0 || from > to) return 0;
  const std::size_t before = out.size();
  const auto limit = static_cast<std::int64_t>(std::min<std::size_t>(
      count, static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())));
  const bool forward = direction == Direction::forward;
  const std::string& text = forward ? sql.read_all_forward : sql.read_all_backward;
  const GlobalPosition bound = forward ? from : to;
  if (count < kNativeReadMinimum) {
    repo::Result rows = connection.query(text, bound, limit);
    while (rows.next()) {
      const repo::Row row = rows.row();
      if (forward && row.get<std::int64_t>(0) > to) break;
      reader.add(out, row, 0, 0);
    }
    return out.size() - before;
  }
  repo::PostgresConnection& pg = repo::as_postgres(connection);
  const std::uint64_t keys[2] = {static_cast<std::uint64_t>(bound),
                                 static_cast<std::uint64_t>(limit)};
  char values[2][8];
  const char* pointers[2];
  const int lengths[2] = {8, 8};
  const int formats[2] = {1, 1};
  const Oid types[2] = {20, 20};  // int8
  for (int i = 0; i < 2; ++i) {
    for (int b = 0; b < 8; ++b) values[i][b] = static_cast<char>(keys[i] >> (56 - 8 * b));
    pointers[i] = values[i];
  }
  PGresult* result = pg.exec_params_binary(text, 2, types, pointers, lengths, formats);
  if (PQresultStatus(result) != PGRES_TUPLES_OK) pg.throw_error(result, text);  // takes it
  const std::unique_ptr<PGresult, decltype(&PQclear)> owned(result, &PQclear);
  const int rows = PQntuples(result);
  out.reserve(out.size() + static_cast<std::size_t>(rows));
  for (int row = 0; row < rows; ++row) {
    if (forward && EventReader::position_at(result, row) > to) break;
    reader.add_native(out, result, row);
  }
  return out.size() - before;
}

ReadResult PostgresBackend::Impl::read_all(GlobalPosition start, std::size_t count,
                                           Direction direction) {
  ReadResult result;
  if (count == 0) return result;
  repo::ConnectionLease lease = repo.acquire();
  if (replica_serves(lease)) {
    try {
      return read_all_on_replica(*lease, start, count, direction);
    } catch (const ReplicaFault&) {
      replica_failed();  // the whole read again, on the primary
    } catch (const repo::DatabaseError& error) {
      rethrow(error);  // the primary's
    }
  }
  EventReader reader;
  repo::Connection& c = *lease;
  try {
    if (direction == Direction::forward) {
      const GlobalPosition from = std::max<GlobalPosition>(start, 1);
      // Positions up to a known watermark are final: read them without a probe.
      const GlobalPosition known = safe.load();
      std::size_t got = read_all_into(c, result.events, reader, from, known, count, direction);
      if (got < count) {
        const GlobalPosition next = result.events.empty()
                                        ? std::max(from, known + 1)
                                        : result.events.back().global_position + 1;
        const GlobalPosition fresh = fresh_watermark(c);
        read_all_into(c, result.events, reader, std::max(next, known + 1), fresh, count - got,
                      direction);
      }
    } else {
      const GlobalPosition known = safe.load();
      const GlobalPosition top = start <= known ? start : std::min(start, fresh_watermark(c));
      read_all_into(c, result.events, reader, 1, top, count, direction);
    }
  } catch (const repo::DatabaseError& error) {
    rethrow(error);
  }
  reader.finish(result.events);
  return result;
}

ReadResult PostgresBackend::Impl::read_stream(std::string_view stream_id, StreamVersion start,
                                              std::size_t count, Direction direction) {
  return read_either([&](repo::Connection& connection) {
    return read_stream_on(connection, stream_id, start, count, direction);
  });
}

ReadResult PostgresBackend::Impl::read_stream_on(repo::Connection& connection,
                                                 std::string_view stream_id, StreamVersion start,
                                                 std::size_t count, Direction direction) {
  ReadResult result;
  EventReader reader;
  const auto limit = static_cast<std::int64_t>(std::min<std::size_t>(
      count, static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())));
  repo::Result rows = connection.query(
      direction == Direction::forward ? sql.read_stream_forward : sql.read_stream_backward,
      stream_id, direction == Direction::forward ? std::max<StreamVersion>(start, 1) : start,
      limit);
  bool any = false;
  while (rows.next()) {
    const repo::Row row = rows.row();
    if (!any) {
      any = true;
      if (row.get<bool>(0)) {
        result.status = ReadStatus::stream_deleted;
        return result;
      }
    }
    if (row.is_null(1) || count == 0) continue;
    reader.add(result.events, row, 2, row.get<std::int64_t>(1));
  }
  if (!any) result.status = ReadStatus::stream_not_found;
  reader.finish(result.events);
  return result;
}

// ---- leases ------------------------------------------------------------------------

std::unique_ptr<SubscriptionLease> PostgresBackend::Impl::try_acquire(std::string_view subscription,
                                                                      std::string_view stream_id) {
  // The lease's release NOTIFYs the others (set_on_release) through it.
  start_background();
  const std::int64_t key = postgres_subscription_lock_key(names.schema, subscription, stream_id);
  std::unique_ptr<repo::Connection> connection = leases->take();
  // Transaction pooling: the lock lives as long as a transaction that the
  // lease keeps open (the pooler keeps its server session for it meanwhile).
  if (pooled) connection->execute_batch("BEGIN");
  const bool acquired =
      connection
          ->query_value<bool>(pooled ? "SELECT pg_try_advisory_xact_lock($1::bigint)"
                                     : "SELECT pg_try_advisory_lock($1::bigint)",
                              key)
          .value_or(false);
  if (!acquired) {
    if (pooled) connection->execute_batch("ROLLBACK");
    leases->give_back(std::move(connection));
    return nullptr;
  }
  auto lease =
      std::make_unique<postgres_detail::PostgresLease>(leases, std::move(connection), key, pooled);
  // The token must be committed at once, so that the previous holder's next
  // checkpoint write is refused: on the lease connection, or with transaction
  // pooling on another one, outside the lease's transaction.
  auto take_token = [&](repo::Connection& c) {
    return c.query_value<std::int64_t>(sql.take_lease_token, subscription, stream_id)
        .value_or(kNoLease);
  };
  if (pooled) {
    std::unique_ptr<repo::Connection> other = leases->take();
    lease->set_token(take_token(*other));
    leases->give_back(std::move(other));
  } else {
    lease->set_token(take_token(lease->connection()));
  }
  return lease;
}

// ---- PostgresBackend -----------------------------------------------------------------

std::shared_ptr<PostgresBackend> PostgresBackend::open(std::string_view url,
                                                       PostgresBackendOptions options) {
  return open(parse_url(url), std::move(options));
}

std::shared_ptr<PostgresBackend> PostgresBackend::open(const repo::DatabaseUrl& url,
                                                       PostgresBackendOptions options) {
  if (url.driver() != repo::Driver::postgres) {
    throw InvalidArgument(fmt::format("'{}' is not a postgres:// URL", url.redacted()));
  }
  // DatabaseUrl has checked and normalised these values.
  if (auto schema = url.store_parameter("schema")) options.schema = *schema;
  if (auto notify = url.store_parameter("notify")) {
    options.notifications =
        *notify == "poll" ? PostgresNotifications::poll : PostgresNotifications::listen;
  }
  if (auto json_data = url.store_parameter("json_data")) options.json_data = *json_data == "true";
  if (auto pooling = url.store_parameter("pooling")) {
    options.pooling =
        *pooling == "transaction" ? PostgresPooling::transaction : PostgresPooling::none;
  }
  if (options.pooling == PostgresPooling::transaction) {
    options.repo.pool.connect.postgres.prepared_statements = false;
  }
  repo::Repo repo = repo::Repo::open(url, options.repo);
  return std::make_shared<PostgresBackend>(std::move(repo), std::move(options));
}

PostgresBackend::PostgresBackend(repo::Repo repo, PostgresBackendOptions options)
    : impl_(std::make_unique<Impl>(*this, std::move(repo), std::move(options))) {}

PostgresBackend::~PostgresBackend() {
  impl_.reset();
}

WriteResult PostgresBackend::append(std::string_view stream_id, ExpectedVersion expected,
                                    std::span<const NewEvent> events) {
  return impl_->append(stream_id, expected, events);
}

WriteResult PostgresBackend::link(std::string_view stream_id, ExpectedVersion expected,
                                  std::span<const Uuid> event_ids) {
  return impl_->link(stream_id, expected, event_ids);
}

WriteResult PostgresBackend::delete_stream(std::string_view stream_id, ExpectedVersion expected,
                                           DeleteMode mode) {
  return impl_->delete_stream(stream_id, expected, mode);
}

ReadResult PostgresBackend::read_stream(std::string_view stream_id, StreamVersion start,
                                        std::size_t count, Direction direction) {
  return impl_->read_stream(stream_id, start, count, direction);
}

ReadResult PostgresBackend::read_all(GlobalPosition start, std::size_t count, Direction direction) {
  return impl_->read_all(start, count, direction);
}

GlobalPosition PostgresBackend::head_position() {
  return impl_->head_position();
}

namespace {

StreamInfo stream_info_of(const repo::Row& row) {
  StreamInfo info;
  info.stream_id = row.get<std::string>(0);
  info.version = row.get<std::int64_t>(1);
  info.created_at = to_timestamp(row.get<repo::Timestamp>(2));
  if (auto deleted = row.get<std::optional<repo::Timestamp>>(3)) {
    info.deleted_at = to_timestamp(*deleted);
  }
  info.sequence = row.get<std::int64_t>(4);
  return info;
}

std::string text_of(const repo::Bytes& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

}  // namespace

std::optional<StreamInfo> PostgresBackend::stream_info(std::string_view stream_id) {
  return impl_->read_either([&](repo::Connection& connection) -> std::optional<StreamInfo> {
    repo::Result rows = connection.query(impl_->sql.stream_info, stream_id);
    if (!rows.next()) return std::nullopt;
    return stream_info_of(rows.row());
  });
}

StreamListPage PostgresBackend::list_streams(const StreamListQuery& query) {
  return impl_->read_either([&](repo::Connection& connection) {
    StreamListPage page;
    const std::size_t limit = std::max<std::size_t>(query.limit, 1);
    repo::Result rows =
        connection.query(query.order == Direction::forward ? impl_->sql.list_streams
                                                           : impl_->sql.list_streams_backward,
                         std::max<std::int64_t>(query.after_sequence, 0), query.prefix,
                         static_cast<std::int64_t>(limit) + 1);
    while (rows.next()) {
      if (page.streams.size() == limit) {
        page.next_after = page.streams.back().sequence;
        break;
      }
      page.streams.push_back(stream_info_of(rows.row()));
    }
    return page;
  });
}

void PostgresBackend::record_snapshot(const Snapshot& snapshot) {
  repo::ConnectionLease lease = impl_->repo.acquire();
  lease->execute(impl_->sql.record_snapshot, snapshot.source_id, snapshot.source_version,
                 snapshot.source_type, repo::Param(as_bytes(snapshot.data)),
                 repo::Param(as_bytes(snapshot.metadata)), to_repo(snapshot.created_at));
}

std::optional<Snapshot> PostgresBackend::read_snapshot(std::string_view source_id) {
  repo::ConnectionLease lease = impl_->repo.acquire();
  repo::Result rows = lease->query(impl_->sql.read_snapshot, source_id);
  if (!rows.next()) return std::nullopt;
  const repo::Row row = rows.row();
  Snapshot snapshot;
  snapshot.source_id = row.get<std::string>(0);
  snapshot.source_version = row.get<std::int64_t>(1);
  snapshot.source_type = row.get<std::string>(2);
  snapshot.data = text_of(row.get<repo::Bytes>(3));
  snapshot.metadata = text_of(row.get<repo::Bytes>(4));
  snapshot.created_at = to_timestamp(row.get<repo::Timestamp>(5));
  return snapshot;
}

bool PostgresBackend::delete_snapshot(std::string_view source_id) {
  repo::ConnectionLease lease = impl_->repo.acquire();
  return lease->execute(impl_->sql.delete_snapshot, source_id) > 0;
}

std::optional<StreamVersion> PostgresBackend::load_checkpoint(std::string_view subscription,
                                                              std::string_view stream_id) {
  repo::ConnectionLease lease = impl_->repo.acquire();
  return lease->query_value<std::int64_t>(impl_->sql.load_checkpoint, subscription, stream_id);
}

bool PostgresBackend::store_checkpoint(std::string_view subscription, std::string_view stream_id,
                                       StreamVersion event_number, LeaseToken token) {
  repo::ConnectionLease lease = impl_->repo.acquire();
  return lease->execute(impl_->sql.store_checkpoint, subscription, stream_id, event_number, token) >
         0;
}

bool PostgresBackend::delete_checkpoint(std::string_view subscription, std::string_view stream_id) {
  repo::ConnectionLease lease = impl_->repo.acquire();
  return lease->execute(impl_->sql.delete_checkpoint, subscription, stream_id) > 0;
}

ChangeNotifier& PostgresBackend::changes() noexcept {
  impl_->serve_subscribers();
  return Backend::changes();
}

std::unique_ptr<SubscriptionLease> PostgresBackend::try_acquire_subscription(
    std::string_view subscription, std::string_view stream_id) {
  return impl_->try_acquire(subscription, stream_id);
}

std::vector<StoredSubscription> PostgresBackend::list_subscriptions() {
  repo::ConnectionLease lease = impl_->repo.acquire();
  std::vector<StoredSubscription> out;
  for (const repo::Row row : lease->query(impl_->sql.list_subscriptions)) {
    StoredSubscription& stored = out.emplace_back();
    stored.name = row.get<std::string>(0);
    stored.stream_id = row.get<std::string>(1);
    stored.checkpoint = row.get<std::int64_t>(2);
    stored.lease_token = row.get<std::int64_t>(3);
  }
  if (out.empty()) return out;
  std::unordered_map<std::int64_t, std::string> holders;
  for (const repo::Row row : lease->query(impl_->sql.subscription_holders)) {
    const auto pid = row.get<std::int64_t>(1);
    const auto application = row.get<std::string>(2);
    holders.emplace(row.get<std::int64_t>(0),
                    application.empty() ? fmt::format("server pid {}", pid)
                                        : fmt::format("server pid {} ({})", pid, application));
  }
  for (StoredSubscription& stored : out) {
    auto holder = holders.find(
        postgres_subscription_lock_key(impl_->names.schema, stored.name, stored.stream_id));
    if (holder == holders.end()) continue;
    stored.held = true;
    stored.holder = holder->second;
  }
  return out;
}

const repo::Repo& PostgresBackend::repo() const noexcept {
  return impl_->repo;
}

const PostgresBackendOptions& PostgresBackend::options() const noexcept {
  return impl_->options;
}

int PostgresBackend::listener_backend_pid() const noexcept {
  const Background* started = impl_->running.load();
  return impl_->listening && started ? started->backend_pid() : 0;
}

std::uint64_t PostgresBackend::replica_reads() const noexcept {
  return impl_->replica ? impl_->replica->reads.load() : 0;
}

std::uint64_t PostgresBackend::replica_failovers() const noexcept {
  return impl_->replica ? impl_->replica->failovers.load() : 0;
}

std::uint64_t PostgresBackend::listener_connections() const noexcept {
  const Background* started = impl_->running.load();
  return started ? started->connections() : 0;
}

std::size_t PostgresBackend::appends_waiting() const {
  return impl_->commit_groups.waiting();
}

std::uint64_t PostgresBackend::appends_grouped() const noexcept {
  return impl_->grouped.load();
}

std::vector<std::uint64_t> PostgresBackend::commits_by_group_size() const {
  std::vector<std::uint64_t> sizes;
  for (const auto& count : impl_->group_sizes) sizes.push_back(count.load());
  return sizes;
}

}  // namespace gamebot::eventstore
