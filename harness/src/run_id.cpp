#include "gamebot/harness/run_id.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cctype>
#include <ctime>
#include <random>

#include "gamebot/core/error.hpp"

namespace gamebot::harness {
namespace {

constexpr std::size_t kMaxWorkerLength = 12;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_lower_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f');
}

std::uint32_t random_bits() {
  thread_local std::mt19937 engine{[] {
    std::random_device device;
    std::seed_seq seed{device(), device(), static_cast<unsigned>(::getpid()),
                       static_cast<unsigned>(std::time(nullptr))};
    return std::mt19937(seed);
  }()};
  return static_cast<std::uint32_t>(engine());
}

// Parses a run id at the start of `text`; returns the id and the characters consumed.
std::optional<std::pair<RunId, std::size_t>> parse_prefix(std::string_view text) {
  // yyyymmddThhmmss_p<pid>_<8 hex>
  if (text.size() < 15 + 3 + 1 + 8) return std::nullopt;
  for (std::size_t i = 0; i < 15; ++i) {
    if (i == 8 ? text[i] != 't' : !is_digit(text[i])) return std::nullopt;
  }
  if (text[15] != '_' || text[16] != 'p') return std::nullopt;
  std::size_t pos = 17;
  long pid = 0;
  while (pos < text.size() && is_digit(text[pos]) && pos - 17 < 10) {
    pid = pid * 10 + (text[pos] - '0');
    ++pos;
  }
  if (pos == 17 || pid <= 0 || pos >= text.size() || text[pos] != '_') return std::nullopt;
  ++pos;
  if (text.size() < pos + 8) return std::nullopt;
  std::uint32_t random = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    char c = text[pos + i];
    if (!is_lower_hex(c)) return std::nullopt;
    random = random * 16 + static_cast<std::uint32_t>(is_digit(c) ? c - '0' : c - 'a' + 10);
  }
  pos += 8;
  auto number = [&](std::size_t at, std::size_t length) {
    int value = 0;
    for (std::size_t i = 0; i < length; ++i) value = value * 10 + (text[at + i] - '0');
    return value;
  };
  std::tm fields{};
  fields.tm_year = number(0, 4) - 1900;
  fields.tm_mon = number(4, 2) - 1;
  fields.tm_mday = number(6, 2);
  fields.tm_hour = number(9, 2);
  fields.tm_min = number(11, 2);
  fields.tm_sec = number(13, 2);
  if (fields.tm_mon > 11 || fields.tm_mday < 1 || fields.tm_mday > 31 || fields.tm_hour > 23 ||
      fields.tm_min > 59 || fields.tm_sec > 60) {
    return std::nullopt;
  }
  std::time_t seconds = ::timegm(&fields);
  RunId id = RunId::from_parts(std::chrono::system_clock::from_time_t(seconds), pid, random);
  if (id.str() != text.substr(0, pos)) return std::nullopt;  // e.g. Feb 31 normalised away
  return std::make_pair(std::move(id), pos);
}

std::optional<std::string> normalise_worker(std::string_view text) {
  if (text.empty() || text.size() > kMaxWorkerLength) return std::nullopt;
  std::string worker;
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (!std::isalnum(byte) || byte > 0x7f) return std::nullopt;
    worker += static_cast<char>(std::tolower(byte));
  }
  return worker;
}

}  // namespace

RunId RunId::generate() {
  return from_parts(std::chrono::system_clock::now(), static_cast<long>(::getpid()), random_bits());
}

RunId RunId::from_parts(std::chrono::system_clock::time_point start, long pid,
                        std::uint32_t random) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(start);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  RunId id;
  id.text_ =
      fmt::format("{:04}{:02}{:02}t{:02}{:02}{:02}_p{}_{:08x}", utc.tm_year + 1900, utc.tm_mon + 1,
                  utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, pid, random);
  id.start_ = std::chrono::system_clock::from_time_t(seconds);
  id.pid_ = pid;
  return id;
}

std::optional<RunId> RunId::parse(std::string_view text) {
  auto parsed = parse_prefix(text);
  if (!parsed || parsed->second != text.size()) return std::nullopt;
  return std::move(parsed->first);
}

RunIdentity detect_run_identity(const EnvGetter& env) {
  RunIdentity identity;
  auto read = [&](std::string_view name) -> std::optional<std::string> {
    if (!env) return std::nullopt;
    auto value = env(std::string(name));
    if (value && value->empty()) return std::nullopt;
    return value;
  };
  if (auto shared = read(kEnvRunId)) {
    auto id = RunId::parse(*shared);
    if (!id) {
      throw Error(FaultClass::configuration,
                  fmt::format("{}: '{}' is not a run id (expected the form "
                              "20250102t030405_p12345_0a1b2c3d)",
                              kEnvRunId, *shared));
    }
    identity.run_id = std::move(*id);
    identity.shared_run = true;
  }
  if (auto worker = read(kEnvWorker)) {
    auto normalised = normalise_worker(*worker);
    if (!normalised) {
      throw Error(FaultClass::configuration,
                  fmt::format("{}: '{}' is not a worker name (1-{} letters or digits)", kEnvWorker,
                              *worker, kMaxWorkerLength));
    }
    identity.worker = std::move(*normalised);
  } else if (identity.shared_run) {
    identity.worker = fmt::format("p{}", static_cast<long>(::getpid()));
  }
  return identity;
}

std::string test_database_name(const RunIdentity& identity) {
  std::string name = std::string(kTestDatabasePrefix) + identity.run_id.str();
  if (!identity.worker.empty()) name += "_w" + identity.worker;
  return name;
}

std::string clone_database_prefix(std::string_view run_database) {
  std::uint32_t hash = 2166136261u;  // FNV-1a
  for (unsigned char c : run_database) hash = (hash ^ c) * 16777619u;
  std::string prefix = fmt::format("{}{:08x}", kTestDatabasePrefix, hash);
  if (auto identity = parse_test_database_name(run_database); identity && !identity->worker.empty())
    prefix += "_w" + identity->worker;
  return prefix + "_c";
}

std::optional<RunIdentity> parse_test_database_name(std::string_view name) {
  if (!name.starts_with(kTestDatabasePrefix)) return std::nullopt;
  std::string_view rest = name.substr(kTestDatabasePrefix.size());
  auto parsed = parse_prefix(rest);
  if (!parsed) return std::nullopt;
  RunIdentity identity{parsed->first, {}, false};
  std::string_view tail = rest.substr(parsed->second);
  if (tail.empty()) return identity;
  if (!tail.starts_with("_w")) return std::nullopt;
  auto worker = normalise_worker(tail.substr(2));
  if (!worker || *worker != tail.substr(2)) return std::nullopt;
  identity.worker = std::move(*worker);
  return identity;
}

}  // namespace gamebot::harness
