// Stores created by earlier releases open and work: every text that migrations
// 1 and 2 ever had on main (historical_migrations/, copied from git history)
// is applied the way the migrator of that time did (the text run, its checksum
// recorded), then today's code opens the store, upgrades it, and appends and
// reads through it on every path; the upgraded store is append-only and its
// hard delete works.

#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "gamebot/eventstore/eventstore.hpp"
#include "gamebot/eventstore/postgres_schema.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/errors.hpp"
#include "gamebot/repo/migrator.hpp"
#include "test_schema.hpp"

namespace gamebot::eventstore {
namespace {

using namespace std::chrono_literals;
using testing::TestSchema;

std::string historical_text(const std::string& file) {
  std::ifstream in(std::string(GAMEBOT_HISTORICAL_MIGRATIONS_DIR) + "/" + file, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Until bdc94af the lock namespace kept 31 bits of the schema name's FNV-1a hash.
std::int32_t lock_namespace_31_bits(std::string_view schema) {
  std::uint32_t hash = 2166136261u;
  for (unsigned char c : schema) {
    hash ^= c;
    hash *= 16777619u;
  }
  hash &= 0x7FFFFFFFu;
  return static_cast<std::int32_t>(hash == 0 ? 1 : hash);
}

// The placeholders as the releases expanded them, for a plain schema name.
std::string expand(const std::string& text, const std::string& schema, std::int32_t ns) {
  const std::string quoted = "\"" + schema + "\"";
  const std::map<std::string, std::string> values = {
      {"s", quoted},
      {"ns", std::to_string(ns)},
      {"channel", fmt::format("gamebot_es_{:08x}", static_cast<std::uint32_t>(ns))},
      {"schema_literal", "'" + quoted + "'"},
      {"xids_literal", "'" + quoted + ".writer_xids'"},
      {"positions_literal", "'" + quoted + ".positions'"},
  };
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 2, "{{") == 0 || text.compare(i, 2, "}}") == 0) {
      out += text[i++];
    } else if (text[i] == '{') {
      const std::size_t end = text.find('}', i);
      out += values.at(text.substr(i + 1, end - i - 1));
      i = end;
    } else {
      out += text[i];
    }
  }
  return out;
}

struct EarlierStore {
  std::string label;
  std::string migration_1;  // file, or empty for today's text
  bool wide_namespace;      // created before bdc94af
  std::string migration_2;  // file, "today", or empty when the release had no migration 2
};

EventData event(std::string type, std::string data) {
  EventData e;
  e.type = std::move(type);
  e.data = std::move(data);
  return e;
}

TEST_CASE("stores created with every earlier text of migrations 1 and 2 open, upgrade and work",
          "[eventstore][postgres][migrations]") {
  const std::vector<EarlierStore> stores = {
      {"13d9f9a", "migration_1_13d9f9a.sql", true, ""},
      {"c45a4d4", "migration_1_c45a4d4.sql", true, ""},
      {"fa6e928", "migration_1_fa6e928.sql", true, ""},
      {"bdc94af", "migration_1_fa6e928.sql", false, ""},
      {"5ca569e", "migration_1_5ca569e.sql", false, ""},
      {"7492fb2", "migration_1_7492fb2.sql", false, ""},
      {"11f12cc", "migration_1_11f12cc.sql", false, ""},
      {"bba5c62", "", false, ""},
      {"0e5893f", "", false, "migration_2_0e5893f.sql"},
      {"9c7ef48", "", false, "today"},
  };
  for (const auto& earlier : stores) {
    INFO("store created by " << earlier.label);
    TestSchema schema("es_upgrade");
    const std::vector<repo::Migration> today = postgres_event_store_migrations(schema.name());
    const std::int32_t ns = earlier.wide_namespace ? lock_namespace_31_bits(schema.name())
                                                   : postgres_lock_namespace(schema.name());
    std::vector<repo::Migration> then;
    then.push_back({1, "create_event_store",
                    earlier.migration_1.empty()
                        ? today[0].sql
                        : expand(historical_text(earlier.migration_1), schema.name(), ns)});
    if (earlier.migration_2 == "today") {
      then.push_back(today[1]);
    } else if (!earlier.migration_2.empty()) {
      then.push_back({2, "no_jit_in_functions",
                      expand(historical_text(earlier.migration_2), schema.name(), ns)});
    }
    repo::MigratorOptions options;
    options.table = std::string(kPostgresMigrationsTable);
    options.schema = schema.name();
    {
      auto connection = repo::connect(schema.server_url());
      repo::Migrator(then, options).migrate(*connection);
      // A subscription stored before lease fencing (migration 4): it must resume.
      connection->execute("INSERT INTO " + repo::quote_identifier(schema.name()) +
                              ".subscriptions (name, stream_id, checkpoint) VALUES ($1, $2, $3)",
                          std::string("old-projector"), std::string(kAllStream), std::int64_t{2});
    }

    StoreOptions hard_deletes;
    hard_deletes.allow_hard_delete = true;
    EventStore store(schema.open(), hard_deletes);
    {
      auto connection = repo::connect(schema.server_url());
      const auto report = postgres_event_store_migrator(schema.name()).verify(*connection);
      CHECK(report.current());
    }
    REQUIRE(store.append("game-1", ExpectedVersion::no_stream(), event("Created", "one")).ok());
    REQUIRE(store.append("game-1", 1, {event("Moved", "two"), event("Moved", "three")}).ok());
    REQUIRE(store.append("game-2", ExpectedVersion::any(), event("Created", "four")).ok());

    const auto stream = store.read_stream_forward("game-1");
    REQUIRE(stream.events.size() == 3);
    CHECK(stream.events[2].data == "three");
    const auto all = store.read_all_forward();
    REQUIRE(all.events.size() == 4);
    CHECK(all.events[3].data == "four");

    // Persistent subscriptions catch up on what is stored, then get a live append.
    Subscription all_sub = store.subscribe_persistent("projector", std::string(kAllStream));
    Subscription stream_sub = store.subscribe_persistent("projector", "game-1");
    for (const char* data : {"one", "two", "three", "four"}) {
      auto e = all_sub.next(10s);
      REQUIRE(e.has_value());
      CHECK(e->data == data);
      all_sub.ack(*e);
    }
    for (const char* data : {"one", "two", "three"}) {
      auto e = stream_sub.next(10s);
      REQUIRE(e.has_value());
      CHECK(e->data == data);
      stream_sub.ack(*e);
    }
    REQUIRE(store.append("game-1", 3, event("Moved", "five")).ok());
    auto live_all = all_sub.next(10s);
    REQUIRE(live_all.has_value());
    CHECK(live_all->data == "five");
    auto live_stream = stream_sub.next(10s);
    REQUIRE(live_stream.has_value());
    CHECK(live_stream->data == "five");

    // The subscription stored by the old schema resumes after its checkpoint, and the first
    // lease taken after the upgrade outranks the old rows' token, so its acks are stored.
    Subscription old_sub = store.subscribe_persistent("old-projector", std::string(kAllStream));
    auto resumed = old_sub.next(10s);
    REQUIRE(resumed.has_value());
    CHECK(resumed->data == "three");
    old_sub.ack(*resumed);
    CHECK(store.backend().load_checkpoint("old-projector", std::string(kAllStream)) == 3);

    // Append-only (migration 5): a raw rewrite is refused, the store's hard delete passes.
    {
      auto connection = repo::connect(schema.server_url());
      const std::string events = repo::quote_identifier(schema.name()) + ".events";
      CHECK_THROWS_AS(connection->execute("UPDATE " + events + " SET type = 'Rewritten'"),
                      repo::DatabaseError);
      CHECK_THROWS_AS(connection->execute("DELETE FROM " + events), repo::DatabaseError);
    }
    REQUIRE(store.delete_stream("game-2", ExpectedVersion::any(), DeleteMode::hard).ok());
    CHECK(store.read_all_forward().events.size() == 4);
  }
}

}  // namespace
}  // namespace gamebot::eventstore
