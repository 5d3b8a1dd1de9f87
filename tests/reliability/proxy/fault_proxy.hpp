#pragma once

// A loopback TCP proxy in front of a PostgreSQL unix socket, for fault injection: clients
// connect to 127.0.0.1:port(), the proxy forwards bytes both ways, and a test can drop every
// connection at once, stall (keep connections open but forward nothing), or refuse new
// connections (accept and close at once). One thread forwards everything; controls are
// thread-safe.

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace gamebot::reliability {

class FaultProxy {
 public:
  // Forwards to the unix socket at `socket_path` (e.g. "<dir>/.s.PGSQL.5432").
  explicit FaultProxy(std::string socket_path);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  int port() const noexcept { return port_; }
  // "postgresql://postgres@127.0.0.1:<port>/postgres" plus `extra` query text ("?a=b").
  std::string url(const std::string& extra = {}) const;

  void drop_all();                 // closes every proxied connection, both sides
  void set_stalled(bool stalled);  // stop/resume forwarding on open connections
  void set_refusing(bool refusing);
  std::size_t accepted() const noexcept { return accepted_; }  // connections accepted so far

 private:
  struct Pair {
    int client = -1;
    int server = -1;
  };
  void loop();
  void close_pair(Pair& pair);

  std::string socket_path_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  std::mutex mutex_;
  std::vector<Pair> pairs_;
  bool drop_requested_ = false;
  std::atomic<bool> stalled_{false};
  std::atomic<bool> refusing_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> accepted_{0};
  std::thread thread_;
};

}  // namespace gamebot::reliability
