// The baseline of the per-process cost bench: what a test process costs without the harness.
// Opens one libpq connection to the URL given as argv[1], runs the test body inside
// BEGIN/ROLLBACK and exits (0 when every statement succeeded).

#include <libpq-fe.h>

#include <cstdio>

#include "test_body.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s POSTGRES_URL\n", argv[0]);
    return 2;
  }
  PGconn* conn = PQconnectdb(argv[1]);
  int status = PQstatus(conn) == CONNECTION_OK ? 0 : 1;
  auto run = [&](const char* sql) {
    if (status != 0) return;
    PGresult* result = PQexec(conn, sql);
    const ExecStatusType outcome = PQresultStatus(result);
    if (outcome != PGRES_COMMAND_OK && outcome != PGRES_TUPLES_OK) {
      std::fprintf(stderr, "%s", PQerrorMessage(conn));
      status = 1;
    }
    PQclear(result);
  };
  run("BEGIN");
  for (const char* sql : gamebot::bench::per_process::kTestBody) run(sql);
  run("ROLLBACK");
  PQfinish(conn);
  return status;
}
