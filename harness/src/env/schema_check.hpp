#pragma once

// Phase 4: what the migrations say must exist, and whether it does.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gamebot/harness/database_manager.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/migrator.hpp"

namespace gamebot::harness::env {

// The tables, indexes and functions the migrations create (CREATE TABLE/INDEX/FUNCTION, minus
// those a later migration DROPs), names unqualified and lower-cased.
std::vector<ExpectedObject> objects_created_by(const std::vector<repo::Migration>& migrations);

// One line per missing object ("index eventstore_events_stream is missing"), checking in
// `schema` on PostgreSQL (empty: the search path's first schema). Functions are not checked on
// SQLite (it has none).
std::vector<std::string> missing_objects(repo::Connection& connection,
                                         const std::vector<ExpectedObject>& objects,
                                         const std::string& schema);

std::string_view to_string(ExpectedObject::Kind kind) noexcept;

// One line per problem of a database against the store's (and the application's) migrations and
// the objects they must have created (in `schema`, as for missing_objects()).
std::vector<std::string> schema_problems(repo::Connection& connection,
                                         const repo::Migrator& store_migrator,
                                         const std::optional<repo::Migrator>& app_migrator,
                                         const std::vector<ExpectedObject>& objects,
                                         const std::string& schema);

// The lines as an indented list, one "  - line" per line, for a diagnosis.
std::string join_lines(const std::vector<std::string>& lines);

}  // namespace gamebot::harness::env
