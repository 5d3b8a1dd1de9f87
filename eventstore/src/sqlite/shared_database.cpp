#include "shared_database.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "gamebot/core/error.hpp"
#include "gamebot/repo/migrator.hpp"

namespace gamebot::eventstore::sqlite_detail {

namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, std::weak_ptr<SharedDatabase>, std::less<>> databases;
};

Registry& registry() {
  static Registry* instance = new Registry;  // never destroyed: used from destructors
  return *instance;
}

class InProcessLease final : public SubscriptionLease {
 public:
  InProcessLease(std::shared_ptr<SharedDatabase> shared, std::string key)
      : shared_(std::move(shared)), key_(std::move(key)) {}
  ~InProcessLease() override {
    shared_->release(key_);
    shared_->notify_all();  // a standby in this process takes over at once
  }

 private:
  std::shared_ptr<SharedDatabase> shared_;
  std::string key_;
};

class FileLease final : public SubscriptionLease {
 public:
  FileLease(std::shared_ptr<SharedDatabase> shared, int fd, std::string lock_path)
      : shared_(std::move(shared)), fd_(fd), lock_path_(std::move(lock_path)) {}
  ~FileLease() override {
    ::close(fd_);  // drops the lock
    shared_->notify_all();
  }

  // The one way an OFD lock is lost while its holder lives: the lock file was
  // removed (or replaced), so the next process locks another file.
  bool lost() noexcept override {
    struct stat held {};
    struct stat named {};
    if (::fstat(fd_, &held) != 0) return true;
    if (::stat(lock_path_.c_str(), &named) != 0) return true;
    return held.st_dev != named.st_dev || held.st_ino != named.st_ino;
  }

 private:
  std::shared_ptr<SharedDatabase> shared_;
  int fd_;
  std::string lock_path_;
};

// 60 bits of SHA-256(key): a byte offset far below OFF_MAX.
off_t lock_offset(const std::string& key) {
  const std::string hex = repo::Migrator::checksum(key);
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < 15; ++i) {
    const char c = hex[i];
    value = value * 16 + static_cast<std::uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  }
  return static_cast<off_t>(value);
}

// The one byte of the lock file that stands for `key`, as a write-lock request.
struct flock claim_of(const std::string& key) {
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = lock_offset(key);
  lock.l_len = 1;
  lock.l_pid = 0;  // required for OFD locks
  return lock;
}

}  // namespace

bool WriterGate::try_lock_for(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (!released_.wait_for(lock, timeout, [this] { return !held_; })) return false;
  held_ = true;
  return true;
}

void WriterGate::unlock() noexcept {
  {
    std::lock_guard lock(mutex_);
    held_ = false;
  }
  released_.notify_one();
}

std::shared_ptr<SharedDatabase> SharedDatabase::of(const std::string& key) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  std::erase_if(r.databases, [](const auto& entry) { return entry.second.expired(); });
  if (auto it = r.databases.find(key); it != r.databases.end()) {
    if (auto existing = it->second.lock()) return existing;
  }
  auto created = std::make_shared<SharedDatabase>(key);
  r.databases[key] = created;
  return created;
}

void SharedDatabase::attach(ChangeNotifier* notifier) {
  std::lock_guard lock(mutex_);
  notifiers_.push_back(notifier);
}

void SharedDatabase::detach(ChangeNotifier* notifier) noexcept {
  std::lock_guard lock(mutex_);
  std::erase(notifiers_, notifier);
}

void SharedDatabase::notify_all() noexcept {
  std::lock_guard lock(mutex_);
  for (ChangeNotifier* notifier : notifiers_) notifier->notify();
}

bool SharedDatabase::try_claim(const std::string& key) {
  std::lock_guard lock(mutex_);
  return claims_.insert(key).second;
}

void SharedDatabase::release(const std::string& key) noexcept {
  std::lock_guard lock(mutex_);
  if (auto it = claims_.find(key); it != claims_.end()) claims_.erase(it);
}

bool SharedDatabase::claimed(const std::string& key) {
  std::lock_guard lock(mutex_);
  return claims_.contains(key);
}

std::string lease_key(std::string_view subscription, std::string_view stream_id) {
  std::string key(subscription);
  key.push_back('\0');
  key.append(stream_id);
  return key;
}

std::unique_ptr<SubscriptionLease> try_claim_in_process(std::shared_ptr<SharedDatabase> shared,
                                                        std::string key) {
  if (!shared->try_claim(key)) return nullptr;
  return std::make_unique<InProcessLease>(std::move(shared), std::move(key));
}

std::unique_ptr<SubscriptionLease> try_lock_across_processes(std::shared_ptr<SharedDatabase> shared,
                                                             const std::string& lock_path,
                                                             const std::string& key) {
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw Error(FaultClass::configuration,
                fmt::format("cannot open the subscription lock file {}: {}", lock_path,
                            std::strerror(errno)));
  }
  struct flock lock = claim_of(key);
  if (::fcntl(fd, F_OFD_SETLK, &lock) == 0)
    return std::make_unique<FileLease>(std::move(shared), fd, lock_path);
  const int error = errno;
  ::close(fd);
  if (error == EAGAIN || error == EACCES) return nullptr;
  throw Error(FaultClass::configuration,
              fmt::format("cannot lock the subscription lock file {}: {}", lock_path,
                          std::strerror(error)));
}

bool locked_across_processes(const std::string& lock_path, const std::string& key) {
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return false;
    throw Error(FaultClass::configuration,
                fmt::format("cannot open the subscription lock file {}: {}", lock_path,
                            std::strerror(errno)));
  }
  struct flock lock = claim_of(key);
  const int rc = ::fcntl(fd, F_OFD_GETLK, &lock);
  const int error = errno;
  ::close(fd);
  if (rc != 0) {
    throw Error(FaultClass::configuration,
                fmt::format("cannot test the subscription lock file {}: {}", lock_path,
                            std::strerror(error)));
  }
  return lock.l_type != F_UNLCK;
}

}  // namespace gamebot::eventstore::sqlite_detail
