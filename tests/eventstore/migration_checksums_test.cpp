// Released migrations are frozen: the checksum of every migration of both SQL
// stores is pinned here, so editing one fails. A schema changes only by a new
// migration (add its checksum below). The PostgreSQL store's migrations embed
// the schema name; they are pinned for the default schema. The earlier texts
// the PostgreSQL store accepts are pinned too, as computed from git history.

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "gamebot/eventstore/postgres_schema.hpp"
#include "gamebot/eventstore/sqlite_backend.hpp"
#include "gamebot/repo/migrator.hpp"

namespace gamebot::eventstore {
namespace {

struct Pinned {
  std::int64_t version;
  std::string name;
  std::string checksum;
};

void check_pinned(const std::vector<repo::Migration>& migrations,
                  const std::vector<Pinned>& pinned) {
  REQUIRE(migrations.size() == pinned.size());
  for (std::size_t i = 0; i < pinned.size(); ++i) {
    INFO("migration " << pinned[i].version << " '" << pinned[i].name << "'");
    CHECK(migrations[i].version == pinned[i].version);
    CHECK(migrations[i].name == pinned[i].name);
    CHECK(repo::Migrator::checksum(migrations[i].sql) == pinned[i].checksum);
  }
}

TEST_CASE("the PostgreSQL store's migrations are frozen", "[eventstore][postgres][migrations]") {
  check_pinned(postgres_event_store_migrations(kDefaultPostgresSchema),
               {
                   {1, "create_event_store",
                    "e3235f9493d77f20821068da1b646cbc9a7d2002612e533b8f6f247c4abd2b0f"},
                   {2, "no_jit_in_functions",
                    "aa6ead1b6392fd5b4a77fce83971691690e33d3cc433fc9527c686df777d35b3"},
                   {3, "recreate_functions",
                    "521f0f2b3d2ae9db8ff1231fad85a1f0bf59001715139bfb2cf68b67629a9351"},
                   {4, "fence_subscription_leases",
                    "002d6c0bca8e1a63f03c4da812ce5161588f46e91d4471610f54ed618576904c"},
                   {5, "append_only_events",
                    "42b38b4abb613fcc718a32a57b4fab9ffedfe8d9d890249c03b2e61e74821395"},
                   {6, "transaction_scoped_locks",
                    "1a4e86eeb364174169b1a170e608a58be6ae2b73511094b12f486ba4f4b80c98"},
               });
}

TEST_CASE("the PostgreSQL store accepts exactly the earlier released texts of its migrations",
          "[eventstore][postgres][migrations]") {
  const auto migrations = postgres_event_store_migrations(kDefaultPostgresSchema);
  REQUIRE(migrations.size() == 6);
  // Migration 1 at 13d9f9a, c45a4d4, fa6e928 (31-bit lock namespace), bdc94af (the same text with
  // the 30-bit namespace), 5ca569e, 7492fb2 and 11f12cc (these two expand alike for a name without
  // a single quote); migration 2 at 0e5893f. Computed from each commit's schema.cpp.
  CHECK(migrations[0].earlier_checksums ==
        std::vector<std::string>{
            "7656eb67a59e7e5a17cadd71eddb00d592c2378652f470aea320e269fbd24c66",
            "89ba081413300a1bd582c8526ed84fc6b0954fcb80b0a6165567fb07ed2e514e",
            "b56412310b89702e1291c0a2b91391b7be4890ee9ec1b72ca18998e1c4f9d78f",
            "7893347817413fd844b86726337aabebe7bc97ebff7b70274ac2982b6436dea2",
            "8cff8f71fa4841a0e9aa7f9f5f9e257c4616a0b83557990ff8ab146983a0d84a",
            "ad447800f0642662e4a412b45ecef5e75fa50db96c4b7bf7c54232b641982b53",
            "ad447800f0642662e4a412b45ecef5e75fa50db96c4b7bf7c54232b641982b53",
        });
  CHECK(
      migrations[1].earlier_checksums ==
      std::vector<std::string>{"c643bf2cea389c648e2e9df47aa97723b94fe772db9d8fd67b45d3a5dcf5c1b9"});
  CHECK(migrations[2].earlier_checksums.empty());
  CHECK(migrations[3].earlier_checksums.empty());
  CHECK(migrations[4].earlier_checksums.empty());
  CHECK(migrations[5].earlier_checksums.empty());
}

TEST_CASE("the SQLite store's migrations are frozen", "[eventstore][sqlite][migrations]") {
  check_pinned(sqlite_event_store_migrations(),
               {
                   {1, "create_event_store",
                    "de22179320793f4d2ac33ac13e538edee55bf3c4c68576a6fcd575a6839d99c4"},
                   {2, "fence_subscription_leases",
                    "1fcad05ccdef5899ac55a0f54fc0962ce968c2286ff376f1e3e5edb2d3f839d5"},
                   {3, "append_only_events",
                    "467115bb62334348abff0b7a75bec78d5eebc4675a50137b85706d981f829d0f"},
               });
}

}  // namespace
}  // namespace gamebot::eventstore
