#include "fault_proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace gamebot::reliability {

FaultProxy::FaultProxy(std::string socket_path) : socket_path_(std::move(socket_path)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("socket failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listen_fd_, 64) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("cannot listen on loopback");
  }
  port_ = ntohs(address.sin_port);
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("pipe failed");
  thread_ = std::thread([this] { loop(); });
}

FaultProxy::~FaultProxy() {
  stopping_ = true;
  const char byte = 0;
  (void)::write(wake_[1], &byte, 1);
  thread_.join();
  for (Pair& pair : pairs_) close_pair(pair);
  ::close(listen_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

std::string FaultProxy::url(const std::string& extra) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/postgres" + extra;
}

void FaultProxy::drop_all() {
  {
    std::lock_guard lock(mutex_);
    drop_requested_ = true;
  }
  const char byte = 0;
  (void)::write(wake_[1], &byte, 1);
  // Wait until the forwarding thread has closed them, so the caller's next step sees them gone.
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (!drop_requested_) return;
    }
    std::this_thread::yield();
  }
}

void FaultProxy::set_stalled(bool stalled) {
  stalled_ = stalled;
  const char byte = 0;
  (void)::write(wake_[1], &byte, 1);
}

void FaultProxy::set_refusing(bool refusing) {
  refusing_ = refusing;
}

void FaultProxy::close_pair(Pair& pair) {
  if (pair.client >= 0) ::close(pair.client);
  if (pair.server >= 0) ::close(pair.server);
  pair.client = pair.server = -1;
}

void FaultProxy::loop() {
  char buffer[65536];
  while (!stopping_) {
    {
      std::lock_guard lock(mutex_);
      if (drop_requested_) {
        for (Pair& pair : pairs_) close_pair(pair);
        pairs_.clear();
        drop_requested_ = false;
      }
    }
    std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    const bool stalled = stalled_;
    if (!stalled) {
      for (const Pair& pair : pairs_) {
        fds.push_back({pair.client, POLLIN, 0});
        fds.push_back({pair.server, POLLIN, 0});
      }
    }
    if (::poll(fds.data(), fds.size(), 100) <= 0) continue;
    if ((fds[1].revents & POLLIN) != 0) {
      while (::read(wake_[0], buffer, sizeof buffer) > 0) {
      }
    }
    if ((fds[0].revents & POLLIN) != 0) {
      const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        ++accepted_;
        int server = -1;
        if (!refusing_) {
          server = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
          sockaddr_un address{};
          address.sun_family = AF_UNIX;
          std::strncpy(address.sun_path, socket_path_.c_str(), sizeof address.sun_path - 1);
          if (server >= 0 &&
              ::connect(server, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
            ::close(server);
            server = -1;
          }
        }
        if (server < 0) {
          ::close(client);
        } else {
          std::lock_guard lock(mutex_);
          pairs_.push_back({client, server});
        }
      }
    }
    if (stalled) continue;
    std::lock_guard lock(mutex_);
    for (std::size_t i = 2; i + 1 < fds.size(); i += 2) {
      Pair& pair = pairs_[(i - 2) / 2];
      for (int side = 0; side < 2; ++side) {
        const pollfd& fd = fds[i + static_cast<std::size_t>(side)];
        if ((fd.revents & (POLLIN | POLLHUP | POLLERR)) == 0 || pair.client < 0) continue;
        const ssize_t n = ::read(fd.fd, buffer, sizeof buffer);
        const int to = side == 0 ? pair.server : pair.client;
        if (n <= 0 || ::send(to, buffer, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) {
          close_pair(pair);
        }
      }
    }
    std::erase_if(pairs_, [](const Pair& pair) { return pair.client < 0; });
  }
}

}  // namespace gamebot::reliability
