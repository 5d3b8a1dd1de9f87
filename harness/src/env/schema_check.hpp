#pragma once

// Phase 4: what the migrations say must exist, and whether it does.

#include <string>
#include <vector>

#include "gamebot/harness/test_environment.hpp"
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

}  // namespace gamebot::harness::env
