// init, migrate, verify, append, read, tail, streams, delete, subscriptions list|delete.

#include <fmt/format.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "event_json.hpp"
#include "gamebot/eventstore/errors.hpp"
#include "gamebot/eventstore/postgres_backend.hpp"
#include "gamebot/eventstore/postgres_schema.hpp"
#include "gamebot/eventstore/sqlite_backend.hpp"
#include "gamebot/eventstore/verify.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/database_url.hpp"
#include "gamebot/repo/migrator.hpp"

namespace gamebot::tools {

namespace {

using namespace eventstore;

// The store's migrator and a connection to its database, for schema checks.
struct SchemaAccess {
  std::unique_ptr<repo::Connection> connection;
  std::optional<repo::Migrator> migrator;
};

// must_exist: a missing SQLite file is a schema fault instead of being created.
SchemaAccess schema_access(const repo::DatabaseUrl& url, bool must_exist) {
  SchemaAccess access;
  switch (url.driver()) {
    case repo::Driver::sqlite:
      if (must_exist) require_existing_sqlite_file(url);
      access.connection = repo::connect(url);
      access.migrator.emplace(sqlite_event_store_migrator());
      break;
    case repo::Driver::postgres:
      access.connection = repo::connect(url);
      access.migrator.emplace(postgres_event_store_migrator(
          url.store_parameter("schema").value_or(PostgresBackendOptions{}.schema)));
      break;
    case repo::Driver::memory:
      throw UsageError(fmt::format(
          "'{}' has no schema to manage (use sqlite:PATH or postgresql://...)", url.redacted()));
  }
  return access;
}

// init and migrate: the backend itself creates or upgrades its schema (so
// whatever it sets up beyond the migrations is set up too); the migrator
// tells what was there before and after.
int create_or_upgrade(const repo::DatabaseUrl& url, bool refuse_existing) {
  std::size_t before = 0;
  {
    SchemaAccess access = schema_access(url, false);
    before = access.migrator->applied(*access.connection).size();
    if (refuse_existing && before > 0) {
      throw Failure(FaultClass::schema,
                    fmt::format("a store already exists at {} ({} migration{} applied); use "
                                "`gamebot-store migrate` to upgrade it",
                                url.redacted(), before, before == 1 ? "" : "s"));
    }
  }
  { EventStore store = open_store(url, true); }
  SchemaAccess access = schema_access(url, true);
  const auto after = access.migrator->applied(*access.connection);
  for (std::size_t i = before; i < after.size(); ++i)
    print_line(fmt::format("applied migration {} '{}'", after[i].version, after[i].name));
  print_line(fmt::format("{} {}: schema version {} ({} migration{} applied now)",
                         refuse_existing ? "initialised" : "migrated", url.redacted(),
                         after.empty() ? 0 : after.back().version, after.size() - before,
                         after.size() - before == 1 ? "" : "s"));
  return kExitOk;
}

int run_verify(const Args& args) {
  const repo::DatabaseUrl url = parse_store_url(args.positionals[0]);
  {
    SchemaAccess access = schema_access(url, true);
    repo::VerifyReport schema = access.migrator->verify(*access.connection);
    if (!schema.current()) {
      print_line(fmt::format("schema: {}", schema.describe()));
      throw Failure(FaultClass::schema,
                    fmt::format("the store's schema is not current: {}", schema.describe()));
    }
    print_line("schema: current");
  }
  if (args.has("schema-only")) return kExitOk;
  EventStore store = open_store(url, false);
  VerifyOptions options;
  options.page_size =
      static_cast<std::size_t>(args.integer("page-size", 1, 1'000'000).value_or(1000));
  options.max_violations =
      static_cast<std::size_t>(args.integer("max-violations", 1, 1'000'000'000).value_or(1000));
  IntegrityReport report = verify(store, options);
  for (const Violation& v : report.violations) print_line(describe(v));
  print_line(fmt::format(
      "integrity: {} events, {} streams ({} soft-deleted), {} links, head position {}: {}",
      report.events, report.streams, report.deleted_streams, report.links, report.head_position,
      report.ok()
          ? "ok"
          : fmt::format("{}{} violations", report.violations.size(), report.truncated ? "+" : "")));
  if (!report.ok()) {
    throw Failure(FaultClass::integrity,
                  fmt::format("{}{} invariant violation{}; first: {}", report.violations.size(),
                              report.truncated ? "+" : "", report.violations.size() == 1 ? "" : "s",
                              describe(report.violations.front())));
  }
  return kExitOk;
}

[[noreturn]] void write_failed(std::string_view what, std::string_view stream,
                               const WriteResult& result) {
  const FaultClass fault = result.status == WriteStatus::wrong_expected_version ||
                                   result.status == WriteStatus::stream_exists ||
                                   result.status == WriteStatus::stream_not_found
                               ? FaultClass::concurrency
                               : FaultClass::integrity;
  std::string detail = fmt::format("{} '{}': {} (stream version {})", what, stream,
                                   to_string(result.status), result.version);
  if (result.event_id) detail += fmt::format(", event {}", result.event_id->to_string());
  throw Failure(fault, detail);
}

int run_append(const Args& args) {
  const ExpectedVersion expected =
      parse_expected_version(args.value("expected-version").value_or("any"));
  // Streams in order of first appearance, each one batch.
  std::vector<std::pair<std::string, std::vector<EventData>>> batches;
  std::string line;
  std::size_t line_number = 0;
  while (std::getline(std::cin, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    InputRecord record = parse_input_line(line, line_number);
    if (record.kind != InputRecord::Kind::event) {
      throw Error(FaultClass::serialization,
                  fmt::format("line {}: append takes events only (use import)", line_number));
    }
    auto it = std::find_if(batches.begin(), batches.end(),
                           [&](const auto& b) { return b.first == record.stream; });
    if (it == batches.end()) it = batches.insert(batches.end(), {record.stream, {}});
    it->second.push_back(std::move(record.event));
  }
  if (batches.empty()) throw Failure(FaultClass::serialization, "no events on stdin");
  EventStore store = open_store(parse_store_url(args.positionals[0]), false);
  for (const auto& [stream, events] : batches) {
    AppendResult result = store.append(stream, expected, events);
    if (!result.ok()) write_failed("append to", stream, result);
    print_line(fmt::format(
        R"({{"stream":{},"status":"ok","events":{},"version":{},"first_position":{},"last_position":{}}})",
        json_string(stream), events.size(), result.version, result.first_position,
        result.last_position));
  }
  return kExitOk;
}

int run_read(const Args& args) {
  const std::string& stream = args.positionals[1];
  const bool backward = args.has("backward");
  const PayloadMode mode = args.has("base64") ? PayloadMode::base64 : PayloadMode::automatic;
  const std::int64_t count =
      args.integer("count", 0, std::numeric_limits<std::int64_t>::max()).value_or(-1);
  const std::int64_t from = args.integer("from", 0, std::numeric_limits<std::int64_t>::max())
                                .value_or(backward ? kLatest : 0);
  EventStore store = open_store(parse_store_url(args.positionals[0]), false);
  const bool all = stream == kAllStream;
  if (!all) {
    std::optional<StreamInfo> info = store.stream_info(stream);
    if (!info)
      throw Failure(FaultClass::configuration, fmt::format("stream '{}' does not exist", stream));
    if (info->deleted())
      throw Failure(FaultClass::configuration, fmt::format("stream '{}' is deleted", stream));
  }
  EventRange range =
      all ? (backward ? store.all_backward(from) : store.all_forward(from))
          : (backward ? store.stream_backward(stream, from) : store.stream_forward(stream, from));
  std::int64_t printed = 0;
  for (const RecordedEvent& event : range) {
    if (count >= 0 && printed >= count) break;
    print_line(event_line(event, mode, !all));
    ++printed;
  }
  return kExitOk;
}

volatile sig_atomic_t g_stop_requested = 0;
extern "C" void request_stop(int) {
  g_stop_requested = 1;
}

int run_tail(const Args& args) {
  const std::string& stream = args.positionals[1];
  const PayloadMode mode = args.has("base64") ? PayloadMode::base64 : PayloadMode::automatic;
  struct sigaction action {};
  action.sa_handler = &request_stop;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
  EventStore store = open_store(parse_store_url(args.positionals[0]), false);
  Subscription subscription = store.subscribe(stream);
  while (g_stop_requested == 0) {
    std::optional<RecordedEvent> event = subscription.next(std::chrono::milliseconds(100));
    if (!event) continue;
    print_line(event_line(*event, mode, stream != kAllStream));
    std::fflush(stdout);
  }
  return kExitOk;
}

int run_streams(const Args& args) {
  StreamListQuery query;
  query.prefix = args.value("prefix").value_or("");
  query.limit = static_cast<std::size_t>(args.integer("limit", 1, 1'000'000).value_or(100));
  query.after_sequence =
      args.integer("after", 0, std::numeric_limits<std::int64_t>::max()).value_or(0);
  const bool every_page = args.has("all");
  EventStore store = open_store(parse_store_url(args.positionals[0]), false);
  for (;;) {
    StreamListPage page = store.list_streams(query);
    for (const StreamInfo& info : page.streams) print_line(stream_line(info));
    if (!page.next_after) break;
    if (!every_page) {
      std::fflush(stdout);
      std::fprintf(stderr, "more streams: continue with --after %lld\n",
                   static_cast<long long>(*page.next_after));
      break;
    }
    query.after_sequence = *page.next_after;
  }
  return kExitOk;
}

int run_delete(const Args& args) {
  const std::string& stream = args.positionals[1];
  const bool hard = args.has("hard");
  const ExpectedVersion expected =
      parse_expected_version(args.value("expected-version").value_or("any"));
  EventStore store = open_store(parse_store_url(args.positionals[0]), false, hard);
  WriteResult result =
      store.delete_stream(stream, expected, hard ? DeleteMode::hard : DeleteMode::soft);
  if (!result.ok()) write_failed("delete", stream, result);
  print_line(fmt::format("deleted stream '{}' ({} delete at version {})", stream,
                         hard ? "hard" : "soft", result.version));
  return kExitOk;
}

int run_subscriptions_list(const Args& args) {
  EventStore store = open_store(parse_store_url(args.positionals[0]), false);
  for (const SubscriptionInfo& info : store.list_subscriptions()) {
    print_line(subscription_line(info));
  }
  return kExitOk;
}

// Every stored subscription of that name (or only the one on --stream); a
// held one is left alone and named in the failure, the others are deleted.
int run_subscriptions_delete(const Args& args) {
  const std::string& name = args.positionals[1];
  const std::optional<std::string> only_stream = args.value("stream");
  EventStore store = open_store(parse_store_url(args.positionals[0]), false);
  std::vector<std::string> streams;
  for (const SubscriptionInfo& info : store.list_subscriptions()) {
    if (info.stored.name == name && (!only_stream || info.stored.stream_id == *only_stream)) {
      streams.push_back(info.stored.stream_id);
    }
  }
  if (streams.empty()) {
    throw Failure(FaultClass::configuration,
                  only_stream
                      ? fmt::format("no stored subscription '{}' on '{}'", name, *only_stream)
                      : fmt::format("no stored subscription '{}'", name));
  }
  std::vector<std::string> refused;
  for (const std::string& stream : streams) {
    try {
      if (store.delete_subscription(name, stream)) {
        print_line(fmt::format("deleted subscription '{}' on '{}'", name, stream));
      }
    } catch (const SubscriptionHeld& held) {
      refused.push_back(held.message());
    }
  }
  if (!refused.empty()) {
    std::string message = refused.front();
    if (refused.size() > 1) message += fmt::format(" (and {} more held)", refused.size() - 1);
    throw Failure(FaultClass::concurrency, message);
  }
  return kExitOk;
}

const std::vector<OptionSpec> kNoOptions;

}  // namespace

void add_store_commands(std::vector<Command>& commands) {
  commands.push_back(
      {{"init",
        {"URL"},
        "Create a new, empty store (its schema) at URL.",
        "Fails (exit 1) if a store already exists there; see migrate.\n",
        kNoOptions},
       [](const Args& a) { return create_or_upgrade(parse_store_url(a.positionals[0]), true); }});
  commands.push_back(
      {{"migrate",
        {"URL"},
        "Apply the store schema's pending migrations at URL (creating it if absent).",
        "Prints each migration applied; applying twice is a no-op.\n",
        kNoOptions},
       [](const Args& a) { return create_or_upgrade(parse_store_url(a.positionals[0]), false); }});
  commands.push_back(
      {{"verify",
        {"URL"},
        "Check the store's schema and the integrity of its events.",
        "Schema: every migration of this version applied, none edited or unknown.\n"
        "Integrity (eventstore::verify): $all positions strictly increasing, stream versions\n"
        "gap-free, every stream event in $all and every $all event in its stream, links\n"
        "pointing at real events, stream metadata consistent. Prints one line per violation\n"
        "and a summary; exit 1 when anything is wrong.\n",
        {{"page-size", "N", "events per read (default 1000)"},
         {"max-violations", "N", "stop listing after N violations (default 1000)"},
         {"schema-only", "", "check the schema only"}}},
       run_verify});
  commands.push_back(
      {{"append",
        {"URL"},
        "Append JSON events read from stdin, one per line.",
        "Each line: {\"stream\":S,\"type\":T,\"data\":JSON,\"metadata\":JSON,\"id\":UUID}\n"
        "(data/metadata: any JSON value, stored as its compact text, or \"data_base64\" /\n"
        "\"metadata_base64\" for raw bytes; optional \"causation_id\", \"correlation_id\",\n"
        "\"created_at\"). The events of each stream are appended as one atomic batch, streams in\n"
        "order of first appearance; prints one JSON line per stream. A version conflict stops\n"
        "with exit 1 (batches of earlier streams stay committed).\n",
        {{"expected-version", "V", "any (default), no_stream, stream_exists or a version N"}}},
       run_append});
  commands.push_back(
      {{"read",
        {"URL", "STREAM"},
        "Print a stream's events (or $all's) as JSON lines.",
        "Links in a stream print their original event, with \"event_number\" the link's\n"
        "version. Quote $all in a shell: '$all'.\n",
        {{"from", "N", "first version / position (default: the first; backward: the newest)"},
         {"count", "N", "print at most N events"},
         {"backward", "", "newest first"},
         {"base64", "", "payloads always as base64"}}},
       run_read});
  commands.push_back(
      {{"tail",
        {"URL", "STREAM"},
        "Follow a stream (or $all) live: print each event committed from now on.",
        "Runs until SIGINT or SIGTERM, then exits 0. Use read for what is already there.\n",
        {{"base64", "", "payloads always as base64"}}},
       run_tail});
  commands.push_back(
      {{"streams",
        {"URL"},
        "List streams (live and soft-deleted) in creation order, one JSON line each.",
        "Paged: without --all, prints one page and, on stderr, the --after cursor of the next.\n",
        {{"prefix", "P", "only streams whose id starts with P"},
         {"limit", "N", "streams per page (default 100)"},
         {"after", "SEQ", "start after this sequence (the cursor)"},
         {"all", "", "print every page"}}},
       run_streams});
  commands.push_back(
      {{"delete",
        {"URL", "STREAM"},
        "Delete a stream: soft (hidden, events kept in $all) or --hard (events gone).",
        "",
        {{"hard", "", "hard delete"},
         {"expected-version", "V", "any (default), stream_exists or a version N"}}},
       run_delete});
  commands.push_back(
      {{"subscriptions list",
        {"URL"},
        "List stored persistent subscriptions, one JSON line each.",
        "Each line: "
        "{\"name\",\"stream\",\"checkpoint\",\"head\",\"lag\",\"lease_token\",\"held\",\n"
        "\"holder\"?}: lag is head (head position for $all, else the stream's version) minus\n"
        "the checkpoint; held says a lease was held when listed; holder names it where the\n"
        "backend can tell (PostgreSQL: the server pid and application_name).\n",
        kNoOptions},
       run_subscriptions_list});
  commands.push_back(
      {{"subscriptions delete",
        {"URL", "NAME"},
        "Delete the stored persistent subscription NAME (on every stream, or --stream's).",
        "A subscription whose lease is held (a live subscriber) is refused: exit 1 naming it,\n"
        "nothing of it deleted. Stop the subscriber, then delete. The next subscriber starts\n"
        "from its start_from again.\n",
        {{"stream", "STREAM", "only the subscription on STREAM ($all: quote it in a shell)"}}},
       run_subscriptions_delete});
}

}  // namespace gamebot::tools
