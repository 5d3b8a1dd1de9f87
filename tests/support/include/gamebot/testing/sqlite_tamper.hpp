#pragma once

// Damage to an SQLite event store the way someone with the file in hand can
// do it past the append-only triggers (SQLite has no switch to disable a
// trigger): in one transaction, the store's triggers are dropped, `sql` runs,
// and the triggers are created again from their own stored text, so the store
// looks untouched but for the damage. Header-only: the callers link SQLite.

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace gamebot::testing {

// Runs `sql` on the SQLite store `file` with its triggers off; returns the
// rows it changed. Fails the test on any SQLite error.
inline int tamper_sqlite_store(const std::string& file, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  auto run = [db](const std::string& statement) {
    char* error = nullptr;
    const int rc = sqlite3_exec(db, statement.c_str(), nullptr, nullptr, &error);
    INFO(statement << ": " << (error ? error : ""));
    sqlite3_free(error);
    REQUIRE(rc == SQLITE_OK);
  };
  run("BEGIN IMMEDIATE");
  std::vector<std::string> names;
  std::vector<std::string> texts;
  sqlite3_stmt* triggers = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'", -1,
                             &triggers, nullptr) == SQLITE_OK);
  while (sqlite3_step(triggers) == SQLITE_ROW) {
    names.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(triggers, 0)));
    texts.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(triggers, 1)));
  }
  sqlite3_finalize(triggers);
  for (const std::string& name : names) run("DROP TRIGGER \"" + name + "\"");
  run(sql);
  const int changed = sqlite3_changes(db);
  for (const std::string& text : texts) run(text);
  run("COMMIT");
  sqlite3_close(db);
  return changed;
}

}  // namespace gamebot::testing
