// Child processes for the harness tests: each scenario sets up teardown or a
// server, prints "ready ..." on stdout, then ends the way the scenario says.

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "gamebot/harness/ephemeral_postgres.hpp"
#include "gamebot/harness/teardown.hpp"

namespace fs = std::filesystem;
using namespace gamebot::harness;

namespace {

void append(const fs::path& file, const std::string& line) {
  std::ofstream out(file, std::ios::app);
  out << line << "\n";
}

void ready(const std::string& detail = {}) {
  std::printf("ready %s\n", detail.c_str());
  std::fflush(stdout);
}

[[noreturn]] void wait_forever() {
  for (;;) ::pause();
}

int usage() {
  std::fprintf(stderr,
               "usage: harness_test_child teardown-signal|teardown-slow|teardown-exit|"
               "teardown-terminate|teardown-fork|teardown-scope DIR\n"
               "       harness_test_child pg-start BASE_DIR [CACHE_DIR [SPARE_CLUSTERS]]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  const std::string scenario = argv[1];
  const fs::path dir = argv[2];
  const fs::path log = dir / "log";

  if (scenario == "teardown-signal") {
    install_process_teardown_hooks();
    const fs::path resource = dir / "resource";
    append(resource, "held");
    process_teardown()
        .add("remove resource",
             [=] {
               fs::remove(resource);
               append(log, "cleanup");
             })
        .release();
    ready();
    wait_forever();
  }
  if (scenario == "teardown-slow") {
    install_process_teardown_hooks();
    process_teardown()
        .add("slow cleanup",
             [=] {
               append(dir / "started", "yes");
               std::this_thread::sleep_for(std::chrono::milliseconds(800));
               append(log, "done");
             })
        .release();
    ready();
    wait_forever();
  }
  if (scenario == "teardown-exit") {
    process_teardown().add("on exit", [=] { append(log, "cleanup"); }).release();
    ready();
    std::exit(7);
  }
  if (scenario == "teardown-terminate") {
    install_process_teardown_hooks();
    process_teardown().add("on terminate", [=] { append(log, "cleanup"); }).release();
    ready();
    throw std::runtime_error("nobody catches this");
  }
  if (scenario == "teardown-fork") {
    process_teardown()
        .add("parent cleanup", [=] { append(log, "cleanup " + std::to_string(::getpid())); })
        .release();
    pid_t child = ::fork();
    if (child == 0) std::exit(0);  // runs atexit handlers in the child
    int status = 0;
    ::waitpid(child, &status, 0);
    ready(std::to_string(::getpid()));
    return 0;
  }
  if (scenario == "teardown-scope") {
    TeardownScope scope;
    process_teardown().add("scoped", [=] { append(log, "cleanup"); }).release();
    ready();
    return 0;
  }
  if (scenario == "pg-start" && argc >= 3 && argc <= 5) {
    EphemeralPostgresOptions options;
    options.base_dir = argv[2];
    if (argc >= 4) options.cache_dir = argv[3];
    if (argc == 5) options.spare_clusters = std::atoi(argv[4]);
    EphemeralPostgres server(options);
    ready(server.directory().string());
    wait_forever();
  }
  return usage();
}
