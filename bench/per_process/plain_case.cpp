// The baseline of the per-process cost bench, as the issue defines it: a plain Catch2 process
// (no harness) whose one test case opens one libpq connection to the URL given as argv[1], runs
// the test body inside BEGIN/ROLLBACK and closes it. Exit status as Catch2 reports: 0 when every
// statement succeeded.

#define CATCH_CONFIG_RUNNER
#include <libpq-fe.h>

#include <catch2/catch.hpp>
#include <cstdio>

#include "test_body.hpp"

namespace {

const char* g_url = nullptr;

}  // namespace

TEST_CASE("per-process bench case", "[bench]") {
  PGconn* conn = PQconnectdb(g_url);
  REQUIRE(PQstatus(conn) == CONNECTION_OK);
  auto run = [&](const char* sql) {
    PGresult* result = PQexec(conn, sql);
    const ExecStatusType outcome = PQresultStatus(result);
    PQclear(result);
    INFO(sql << ": " << PQerrorMessage(conn));
    CHECK((outcome == PGRES_COMMAND_OK || outcome == PGRES_TUPLES_OK));
  };
  run("BEGIN");
  for (const char* sql : gamebot::bench::per_process::kTestBody) run(sql);
  run("ROLLBACK");
  PQfinish(conn);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s POSTGRES_URL\n", argv[0]);
    return 2;
  }
  g_url = argv[1];
  return Catch::Session().run(1, argv);
}
