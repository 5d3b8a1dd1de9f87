#include "gamebot/repo/logging.hpp"

#include <spdlog/spdlog.h>

#include <atomic>

namespace gamebot::repo {
namespace {
std::atomic<std::shared_ptr<spdlog::logger>>& slot() {
  static std::atomic<std::shared_ptr<spdlog::logger>> logger;
  return logger;
}
}  // namespace

std::shared_ptr<spdlog::logger> logger() {
  auto set = slot().load();
  return set ? set : spdlog::default_logger();
}

void set_logger(std::shared_ptr<spdlog::logger> logger) {
  slot().store(std::move(logger));
}

}  // namespace gamebot::repo
