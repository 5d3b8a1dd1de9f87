// Opening and reading a corrupted SQLite event-store file. At start-up a small
// valid store is built once (three streams, a link, a soft delete, a snapshot,
// a checkpoint) and its file image kept in memory. Each input overwrites bytes
// of a copy of that image at fuzzer-chosen offsets; the copy is opened with
// the SQLite backend and read: `$all` page by page, the stream list, every
// stream forward and backward, stream info, the snapshot and the checkpoint.
//
// The contract: the store reads data, or throws gamebot::Error with
// FaultClass::integrity. Anything else is a crash: another fault class, another
// exception, a sanitizer report, a leak, or a hang (libFuzzer's -timeout). A
// `$all` reader that does not advance would hang a subscription, so it aborts
// here too.
//
// One exception, checked rather than assumed: FaultClass::schema is the right
// answer when the damage rewrote the store's schema records themselves (the
// table definitions in sqlite_master, the migration rows, the state row), as
// such a file is indistinguishable from a database whose schema is not the
// store's. So a schema fault passes only if reading those records from the
// damaged image with plain sqlite3 gives something else than from the valid
// one (or fails); a schema fault on intact schema records is a crash.
//
// SQLite keeps no checksums of rows, so damage inside a value (a changed byte
// of an event's data or stream id) reads back as changed data: it cannot be
// detected, and stream ids read back are re-read only if they are still valid.
//
// Input layout: records of 4 bytes, up to 64 of them: a 24-bit big-endian
// offset (taken modulo the file size) and the byte written there.
//
// GAMEBOT_FUZZ_KEEP_IMAGE=<path> writes each damaged image to <path> too, to
// look at a reproducer's file with sqlite3 (run the target on that one input).

#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

#include "gamebot/core/error.hpp"
#include "gamebot/eventstore/event_store.hpp"
#include "gamebot/eventstore/sqlite_backend.hpp"
#include "gamebot/eventstore/validation.hpp"

namespace {

namespace fs = std::filesystem;
namespace es = gamebot::eventstore;

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "sqlite_store: %s: %s\n", what, detail.c_str());
  std::abort();
}

es::SqliteBackendOptions backend_options() {
  es::SqliteBackendOptions options;
  options.watch_interval = std::chrono::milliseconds(0);  // no watcher thread per input
  options.pool_size = 1;
  options.busy_timeout = std::chrono::milliseconds(100);
  return options;
}

void remove_store_files(const std::string& path) {
  std::error_code ignored;
  for (const char* suffix : {"", "-wal", "-shm", "-journal", "-leases"}) {
    fs::remove(path + suffix, ignored);
  }
}

void write_file(const std::string& path, const std::vector<char>& image) {
  remove_store_files(path);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(image.data(), static_cast<std::streamsize>(image.size()));
  if (!out) fail("cannot write the store file", path);
}

// The store's schema records as plain sqlite3 reads them, or the first error.
// Equal fingerprints: the schema records are intact. Opened read-write (on a
// throwaway copy): a read-only connection cannot open a WAL database whose
// -shm file is missing, and every fingerprint would be that same error.
std::string schema_fingerprint(const std::string& path) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    out = std::string("open error: ") + sqlite3_errmsg(db);
    sqlite3_close(db);
    return out;
  }
  for (const char* sql :
       {"SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name",
        "SELECT * FROM eventstore_schema_migrations ORDER BY 1", "SELECT * FROM eventstore_state",
        "SELECT * FROM eventstore_state WHERE id = 1"}) {
    sqlite3_stmt* statement = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &statement, nullptr) != SQLITE_OK) {
      out += std::string("error: ") + sqlite3_errmsg(db) + "\n";
      continue;
    }
    int rc;
    while ((rc = sqlite3_step(statement)) == SQLITE_ROW) {
      for (int i = 0; i < sqlite3_column_count(statement); ++i) {
        const auto* bytes = static_cast<const char*>(sqlite3_column_blob(statement, i));
        out += std::to_string(sqlite3_column_type(statement, i)) + ":";
        if (bytes != nullptr) {
          out.append(bytes, static_cast<std::size_t>(sqlite3_column_bytes(statement, i)));
        }
        out += '|';
      }
      out += '\n';
    }
    if (rc != SQLITE_DONE) out += std::string("error: ") + sqlite3_errmsg(db) + "\n";
    sqlite3_finalize(statement);
  }
  sqlite3_close(db);
  return out;
}

struct Workspace {
  fs::path dir;
  std::string store_path;
  std::string check_path;   // a second copy of the damaged image, for schema_fingerprint
  std::vector<char> image;  // the valid store file
  std::string schema;       // schema_fingerprint of the valid store file

  Workspace() {
    std::string pattern = (fs::temp_directory_path() / "gamebot-fuzz-store-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) fail("mkdtemp", pattern);
    dir = pattern;
    const std::string golden = (dir / "golden.db").string();
    build_store(golden);
    std::ifstream in(golden, std::ios::binary);
    image.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (image.empty()) fail("the golden store file is empty", golden);
    schema = schema_fingerprint(golden);
    if (schema.find("error") != std::string::npos) fail("fingerprint of the valid store", schema);
    if (fs::exists(golden + "-wal") && fs::file_size(golden + "-wal") > 0) {
      fail("the golden store left a WAL behind; its data would not be in the image", golden);
    }
    remove_store_files(golden);
    store_path = (dir / "store.db").string();
    check_path = (dir / "check.db").string();
  }
  ~Workspace() {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }

  static void build_store(const std::string& path) {
    es::EventStore store(es::SqliteBackend::open("sqlite:" + path, backend_options()));
    auto event = [](std::string type, std::string data, std::string metadata = {}) {
      es::EventData e;
      e.type = std::move(type);
      e.data = std::move(data);
      e.metadata = std::move(metadata);
      return e;
    };
    auto check = [](const es::WriteResult& result) {
      if (!result.ok()) fail("building the golden store", std::string(to_string(result.status)));
    };
    check(store.append("game-1", es::ExpectedVersion::no_stream(),
                       {event("game_created", R"({"title":"first"})", R"({"by":"ana"})"),
                        event("player_joined", R"({"player":"bo"})"),
                        event("guess_processed", std::string("\x00\x01\xff binary", 10))}));
    check(store.append("game-2", es::ExpectedVersion::no_stream(),
                       {event("game_created", R"({"title":"second"})"),
                        event("game_finished", R"({"winner":"ana"})")}));
    check(store.append("player-ana", es::ExpectedVersion::any(),
                       event("player_registered", "Zoë", "meta")));
    auto first = store.read_stream_forward("game-1", 0, 1);
    check(store.link("favourites", es::ExpectedVersion::any(), first.events));
    check(store.delete_stream("game-2", es::ExpectedVersion::any()));
    es::Snapshot snapshot;
    snapshot.source_id = "game-1";
    snapshot.source_version = 3;
    snapshot.source_type = "game_state";
    snapshot.data = R"({"round":2})";
    store.record_snapshot(snapshot);
    store.backend().store_checkpoint("projector", "$all", 4, es::kNoLease);
  }
};

Workspace& workspace() {
  static Workspace instance;
  return instance;
}

void read_everything(es::EventStore& store) {
  // `$all`, page by page; every page must move the cursor forward.
  es::GlobalPosition next = 0;
  for (int page = 0;; ++page) {
    auto result = store.read_all_forward(next, 3);
    if (result.events.empty()) break;
    es::GlobalPosition last = result.events.back().global_position;
    if (last < next) fail("a $all read went backwards", std::to_string(last));
    if (page > 1000) fail("a $all reader does not advance", std::to_string(next));
    next = last + 1;
    for (const auto& e : result.events) {
      volatile std::size_t touched = e.type.size() + e.data.size() + e.metadata.size();
      (void)touched;
    }
  }
  store.read_all_backward(es::kLatest, 100);
  store.head_position();

  es::StreamListQuery query;
  query.limit = 2;
  for (int page = 0; page < 100; ++page) {
    auto list = store.list_streams(query);
    for (const auto& info : list.streams) {
      if (!es::is_valid_utf8(info.stream_id) || info.stream_id.empty() ||
          info.stream_id.size() > es::kMaxStreamIdBytes ||
          info.stream_id.find('\0') != std::string::npos) {
        continue;  // a damaged id: the store rejects it as an argument
      }
      store.read_stream_forward(info.stream_id, 0, 100);
      store.read_stream_backward(info.stream_id, es::kLatest, 100);
      store.stream_info(info.stream_id);
    }
    if (!list.next_after) break;
    if (*list.next_after <= query.after_sequence) fail("list_streams does not advance", "");
    query.after_sequence = *list.next_after;
  }
  for (const char* id : {"game-1", "game-2", "player-ana", "favourites"}) {
    store.read_stream_forward(id, 0, 100);
    store.stream_info(id);
  }
  store.read_snapshot("game-1");
  store.backend().load_checkpoint("projector", "$all");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // A pool logs every failed connection attempt as a warning: noise here.
  spdlog::set_level(spdlog::level::err);
  workspace();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Workspace& w = workspace();
  std::vector<char> image = w.image;
  for (std::size_t i = 0; i + 4 <= size && i < 64 * 4; i += 4) {
    const std::size_t offset =
        (std::size_t{data[i]} << 16) | (std::size_t{data[i + 1]} << 8) | std::size_t{data[i + 2]};
    image[offset % image.size()] = static_cast<char>(data[i + 3]);
  }
  write_file(w.store_path, image);
  if (const char* keep = std::getenv("GAMEBOT_FUZZ_KEEP_IMAGE")) write_file(keep, image);

  try {
    es::EventStore store(es::SqliteBackend::open("sqlite:" + w.store_path, backend_options()));
    read_everything(store);
  } catch (const gamebot::Error& error) {
    if (error.fault() == gamebot::FaultClass::integrity) return 0;
    if (error.fault() == gamebot::FaultClass::schema) {
      // The store may have written to its copy; look at the damaged image itself.
      write_file(w.check_path, image);
      const bool schema_damaged = schema_fingerprint(w.check_path) != w.schema;
      remove_store_files(w.check_path);
      if (schema_damaged) return 0;
      fail("a schema fault on a store whose schema records are intact", error.what());
    }
    fail("a corrupted store threw a non-integrity error", error.what());
  }
  return 0;
}
