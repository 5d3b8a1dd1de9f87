#include "test_log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <deque>
#include <mutex>
#include <optional>

#include "gamebot/harness/report.hpp"
#include "gamebot/repo/logging.hpp"

namespace gamebot::harness::detail {
namespace {

class TestLogSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  TestLogSink() {
    set_formatter_(std::make_unique<spdlog::pattern_formatter>(
        "%H:%M:%S.%e [%n %l] %v", spdlog::pattern_time_type::local, ""));
  }

  void begin() {
    std::lock_guard lock(mutex_);
    lines_.clear();
    dropped_ = 0;
    capturing_ = true;
  }

  CapturedLog take() {
    std::lock_guard lock(mutex_);
    capturing_ = false;
    CapturedLog log{{lines_.begin(), lines_.end()}, dropped_};
    lines_.clear();
    dropped_ = 0;
    return log;
  }

 protected:
  // Called with mutex_ held (base_sink).
  void sink_it_(const spdlog::details::log_msg& message) override {
    if (!capturing_) return;
    spdlog::memory_buf_t formatted;
    formatter_->format(message, formatted);
    std::string line(formatted.data(), formatted.size());
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    lines_.push_back(std::move(line));
    if (lines_.size() > kMaxTestLogLines) {
      lines_.pop_front();
      ++dropped_;
    }
  }
  void flush_() override {}

 private:
  bool capturing_ = false;
  std::deque<std::string> lines_;
  std::size_t dropped_ = 0;
};

const std::shared_ptr<TestLogSink>& shared_sink() {
  // Never destroyed: loggers that hold it may log from atexit.
  static const auto* created = new std::shared_ptr<TestLogSink>(std::make_shared<TestLogSink>());
  return *created;
}

TestLogSink& sink() {
  return *shared_sink();
}

// `original` with the capture sink added, as a new logger (the original is left untouched).
std::shared_ptr<spdlog::logger> with_capture(const std::shared_ptr<spdlog::logger>& original) {
  std::vector<spdlog::sink_ptr> sinks = original->sinks();
  sinks.push_back(shared_sink());
  auto wrapped = std::make_shared<spdlog::logger>(original->name(), sinks.begin(), sinks.end());
  wrapped->set_level(original->level());
  wrapped->flush_on(original->flush_level());
  return wrapped;
}

struct Attached {
  std::shared_ptr<spdlog::logger> repo_original;
  std::shared_ptr<spdlog::logger> default_original;
};
std::mutex g_attach_mutex;
std::optional<Attached> g_attached;

}  // namespace

std::shared_ptr<spdlog::sinks::sink> test_log_sink() {
  return shared_sink();
}

void begin_test_log() {
  sink().begin();
}

CapturedLog take_test_log() {
  return sink().take();
}

void attach_test_log() {
  std::lock_guard lock(g_attach_mutex);
  if (g_attached) return;
  Attached attached;
  attached.repo_original = repo::logger();
  repo::set_logger(with_capture(attached.repo_original));
  attached.default_original = spdlog::default_logger();
  if (attached.default_original)
    spdlog::set_default_logger(with_capture(attached.default_original));
  g_attached = std::move(attached);
}

void detach_test_log() noexcept {
  try {
    std::lock_guard lock(g_attach_mutex);
    if (!g_attached) return;
    repo::set_logger(g_attached->repo_original);
    if (g_attached->default_original) spdlog::set_default_logger(g_attached->default_original);
    g_attached.reset();
  } catch (...) {
    // Restoring loggers is best effort at the end of a run; the capture only stops being fed.
  }
}

}  // namespace gamebot::harness::detail
