#pragma once

// CPU seconds used by this process (all threads), by the PostgreSQL server
// (postmaster, its live children, and children that exited) when it runs on
// this machine and its postmaster.pid is readable, and by any one process (a
// PgBouncer). On this shared 2-core machine wall time measures the other
// engineers' builds as much as the code; CPU time per event is the steadier
// comparison.

#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>

#include "gamebot/repo/connection.hpp"

namespace gamebot::bench {

// The fields of /proc/PID/stat that the meter reads.
struct ProcStat {
  long ppid = 0;
  unsigned long long utime = 0;  // clock ticks
  unsigned long long stime = 0;
  long long cutime = 0;  // of children waited for
  long long cstime = 0;
};

inline bool read_proc_stat(const std::filesystem::path& stat_path, ProcStat& out) {
  std::FILE* file = std::fopen(stat_path.c_str(), "r");
  if (file == nullptr) return false;
  char buffer[1024];
  const std::size_t got = std::fread(buffer, 1, sizeof buffer - 1, file);
  std::fclose(file);
  buffer[got] = '\0';
  const char* close = std::strrchr(buffer, ')');
  if (close == nullptr) return false;
  // Fields after the command: state ppid ... utime(14) stime(15) cutime(16) cstime(17).
  char state = 0;
  return std::sscanf(close + 2, "%c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld",
                     &state, &out.ppid, &out.utime, &out.stime, &out.cutime, &out.cstime) == 6;
}

// utime + stime of one process in seconds; 0 if it is gone.
inline double process_cpu_seconds(pid_t pid) {
  ProcStat stat;
  if (!read_proc_stat(std::filesystem::path("/proc") / std::to_string(pid) / "stat", stat)) {
    return 0;
  }
  return static_cast<double>(stat.utime + stat.stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

class CpuMeter {
 public:
  explicit CpuMeter(const std::string& url) {
    try {
      auto c = repo::connect(url);
      const auto dir = c->query_value<std::string>("SELECT current_setting('data_directory')");
      std::FILE* file = dir ? std::fopen((*dir + "/postmaster.pid").c_str(), "r") : nullptr;
      if (file != nullptr) {
        long pid = 0;
        if (std::fscanf(file, "%ld", &pid) == 1) postmaster_ = static_cast<pid_t>(pid);
        std::fclose(file);
      }
    } catch (const std::exception&) {
      postmaster_ = 0;
    }
  }
  bool available() const { return postmaster_ > 0; }
  double now() const { return client_seconds() + server_seconds(); }
  static double client_seconds() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  }
  // utime + stime (+ cutime + cstime for the postmaster) of the server processes.
  double server_seconds() const {
    const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
    double total = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      const std::string name = entry.path().filename().string();
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      ProcStat stat;
      if (!read_proc_stat(entry.path() / "stat", stat)) continue;
      const long pid = std::stol(name);
      if (pid == postmaster_) {
        total += static_cast<double>(stat.utime + stat.stime) +
                 static_cast<double>(stat.cutime + stat.cstime);
      } else if (stat.ppid == postmaster_) {
        total += static_cast<double>(stat.utime + stat.stime);
      }
    }
    return total / tick;
  }

 private:
  pid_t postmaster_ = 0;
};

}  // namespace gamebot::bench
