// Ephemeral PostgreSQL: how long until a private server accepts connections,
// the first time (initdb, then the image is cached), from the cached cluster
// image (a spare copy prepared by the previous start, and a copy made during
// the start), and how long stopping and deleting it takes. Baseline in the same run: the
// raw commands (initdb + pg_ctl start -w, pg_ctl stop -m immediate) with the
// same arguments and settings, timed directly.

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "gamebot/bench/bench.hpp"
#include "gamebot/harness/ephemeral_postgres.hpp"
#include "gamebot/harness/logging.hpp"

namespace {

namespace fs = std::filesystem;
using namespace gamebot::harness;

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2.0;
}

// A private directory removed at scope exit.
struct ScratchDir {
  fs::path path;
  // Under the harness's default base directory, so the baseline and the
  // harness work on the same file system.
  explicit ScratchDir(const char* prefix) {
    std::string pattern = (EphemeralPostgres::default_base_dir() / prefix).string() + "XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
};

// Runs a command (as `nobody` when we are root: initdb refuses root), output
// to /dev/null. Throws if it fails.
void run(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const passwd* nobody = ::geteuid() == 0 ? ::getpwnam("nobody") : nullptr;
  const uid_t uid = nobody != nullptr ? nobody->pw_uid : 0;
  const gid_t gid = nobody != nullptr ? nobody->pw_gid : 0;
  const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(null_fd, 0);
    ::dup2(null_fd, 1);
    ::dup2(null_fd, 2);
    if (nobody != nullptr &&
        (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0)) {
      ::_exit(126);
    }
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(null_fd);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("baseline command failed: " + argv[0]);
  }
}

struct RawTimes {
  double ready = 0;  // initdb + configuration + pg_ctl start -w
  double stop = 0;   // pg_ctl stop -m immediate -w
};

// The baseline: what a hand-written script does.
RawTimes raw_initdb_and_start(const std::string& bindir) {
  ScratchDir dir("gamebot-bench-raw-");
  if (::geteuid() == 0) {
    const passwd* nobody = ::getpwnam("nobody");
    if (nobody == nullptr || ::chown(dir.path.c_str(), nobody->pw_uid, nobody->pw_gid) != 0) {
      throw std::runtime_error("cannot hand the baseline directory to nobody");
    }
  }
  const std::string data = (dir.path / "data").string();
  RawTimes times;
  times.ready = gamebot::bench::seconds([&] {
    run({bindir + "/initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
         "--no-locale", "--no-sync", "--no-instructions"});
    std::ofstream conf(data + "/postgresql.conf", std::ios::app);
    conf << "listen_addresses = ''\nunix_socket_directories = '" << dir.path.string()
         << "'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n";
    conf.close();
    run({bindir + "/pg_ctl", "-D", data, "-l", (dir.path / "server.log").string(), "-w", "-s",
         "start"});
  });
  times.stop = gamebot::bench::seconds([&] {
    run({bindir + "/pg_ctl", "-D", data, "-m", "immediate", "-w", "-s", "stop"});
  });
  return times;
}

struct HarnessTimes {
  double ready = 0;
  double stop = 0;
  bool from_cache = false;
  bool from_spare = false;
};

// One start and stop; the background work the start leaves (building the
// image, preparing a spare) is waited for outside the timings.
HarnessTimes harness_start_stop(const fs::path& base_dir, const fs::path& cache_dir,
                                int spare_clusters) {
  EphemeralPostgresOptions options;
  options.base_dir = base_dir;  // the spares live there, and go with it
  options.cache_dir = cache_dir;
  options.spare_clusters = spare_clusters;
  options.register_teardown = false;
  HarnessTimes times;
  std::optional<EphemeralPostgres> server;
  times.ready = gamebot::bench::seconds([&] { server.emplace(options); });
  times.from_cache = server->timings().from_cache;
  times.from_spare = server->timings().from_spare;
  server->finish_background_work();  // the image build or spare copy is not part of stopping
  times.stop = gamebot::bench::seconds([&] { server->stop(); });
  return times;
}

}  // namespace

GAMEBOT_BENCHMARK("harness/ephemeral_postgres", context) {
  set_log_level(LogLevel::warn);
  const std::string bindir = EphemeralPostgres::find_bindir();
  const int first_samples = context.size(3, 1);
  const int cached_samples = context.size(5, 1);

  std::vector<double> raw_ready;
  std::vector<double> raw_stop;
  for (int i = 0; i < first_samples; ++i) {
    RawTimes raw = raw_initdb_and_start(bindir);
    raw_ready.push_back(raw.ready);
    raw_stop.push_back(raw.stop);
  }

  // The servers' parent directory: the server user (nobody under root) must enter it.
  ScratchDir base("gamebot-bench-base-");
  fs::permissions(base.path, fs::perms(0711), fs::perm_options::replace);
  std::vector<double> first_ready;
  std::vector<double> spare_ready;
  std::vector<double> copy_ready;
  std::vector<double> stops;
  for (int i = 0; i < first_samples; ++i) {
    ScratchDir cache("gamebot-bench-cache-");  // fresh: the first start runs initdb
    HarnessTimes first = harness_start_stop(base.path, cache.path, 1);
    if (first.from_cache) throw std::runtime_error("a fresh cache directory was not empty");
    first_ready.push_back(first.ready);
    stops.push_back(first.stop);
    if (i > 0) continue;
    for (int k = 0; k < cached_samples; ++k) {
      HarnessTimes spare = harness_start_stop(base.path, cache.path, 1);
      if (!spare.from_spare) throw std::runtime_error("no spare cluster was ready");
      spare_ready.push_back(spare.ready);
      stops.push_back(spare.stop);
    }
    for (int k = 0; k < cached_samples; ++k) {
      HarnessTimes copied = harness_start_stop(base.path, cache.path, 0);
      if (!copied.from_cache || copied.from_spare) {
        throw std::runtime_error("the cached image was not copied");
      }
      copy_ready.push_back(copied.ready);
      stops.push_back(copied.stop);
    }
  }

  const gamebot::bench::Baseline raw_start{"raw initdb + pg_ctl start -w", median(raw_ready)};
  context.report(gamebot::bench::at_most("harness/ephemeral_postgres/ready_first_time",
                                         median(first_ready), "s", 1.5, raw_start));
  context.report(gamebot::bench::at_most("harness/ephemeral_postgres/ready_from_cache_spare",
                                         median(spare_ready), "s", 0.5, raw_start));
  context.report(gamebot::bench::at_most("harness/ephemeral_postgres/ready_from_cache_copy",
                                         median(copy_ready), "s", 0.5, raw_start));
  context.report(gamebot::bench::at_most(
      "harness/ephemeral_postgres/stop_and_delete", median(stops), "s", 0.5,
      gamebot::bench::Baseline{"raw pg_ctl stop -m immediate -w", median(raw_stop)}));
}
