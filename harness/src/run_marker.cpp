#include "gamebot/harness/run_marker.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "gamebot/core/error.hpp"
#include "gamebot/harness/version.hpp"
#include "proc.hpp"

namespace gamebot::harness {

namespace detail {

std::optional<ProcessFacts> process_facts(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", static_cast<long>(pid)));
  if (!in) return std::nullopt;
  std::string line;
  std::getline(in, line);
  // "pid (comm) state ppid ..." — comm may hold spaces and parentheses.
  std::size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 1));
  ProcessFacts facts;
  std::string field;
  // Field 3 is the state, field 22 the start time.
  for (int index = 3; index <= 22 && (fields >> field); ++index) {
    if (index == 3) facts.state = field.empty() ? '?' : field[0];
    if (index == 22) {
      auto [ptr, ec] =
          std::from_chars(field.data(), field.data() + field.size(), facts.start_ticks);
      if (ec != std::errc()) return std::nullopt;
      return facts;
    }
  }
  return std::nullopt;
}

std::string current_boot_id() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  if (in) std::getline(in, id);
  return id;
}

}  // namespace detail

namespace {

constexpr std::string_view kHeader = "gamebot-harness-marker";

std::string escape(std::string_view value) {
  std::string out;
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string unescape(std::string_view value) {
  std::string out;
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '\\') {
      out += value[i];
      continue;
    }
    if (++i >= value.size()) {
      throw Error(FaultClass::integrity, "run marker: dangling escape at the end of a value");
    }
    switch (value[i]) {
      case '\\':
        out += '\\';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      default:
        throw Error(FaultClass::integrity,
                    fmt::format("run marker: unknown escape '\\{}'", value[i]));
    }
  }
  return out;
}

template <typename Integer>
Integer parse_integer(const std::map<std::string, std::string>& values, const std::string& key,
                      bool required) {
  auto it = values.find(key);
  if (it == values.end()) {
    if (required) throw Error(FaultClass::integrity, "run marker: missing " + key);
    return 0;
  }
  Integer value{};
  const std::string& text = it->second;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    throw Error(FaultClass::integrity,
                fmt::format("run marker: {} is not a number: '{}'", key, text));
  }
  return value;
}

std::string iso8601(std::chrono::system_clock::time_point time) {
  auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
  std::time_t seconds = static_cast<std::time_t>(millis / 1000);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                     millis % 1000);
}

}  // namespace

RunMarker RunMarker::for_this_process(std::string run_id, std::string resource) {
  RunMarker marker;
  marker.run_id = std::move(run_id);
  marker.resource = std::move(resource);
  marker.host = this_host_name();
  marker.pid = static_cast<long>(::getpid());
  if (auto facts = detail::process_facts(::getpid())) marker.pid_start = facts->start_ticks;
  marker.boot_id = detail::current_boot_id();
  marker.started_at =
      std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
  marker.harness_version = std::string(gamebot::harness::harness_version());
  return marker;
}

std::string RunMarker::serialize() const {
  auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(started_at.time_since_epoch()).count();
  return fmt::format(
      "{} 1\nrun_id={}\nresource={}\nhost={}\npid={}\npid_start={}\nboot_id={}\n"
      "started_at_ms={}\nstarted_at={}\nharness_version={}\n{}{}{}{}",
      kHeader, escape(run_id), escape(resource), escape(host), pid, pid_start, escape(boot_id),
      millis, iso8601(started_at), escape(harness_version), server_lease ? "lease=1\n" : "",
      kept ? "kept=1\n" : "", verified.empty() ? "" : "verified=" + escape(verified) + "\n",
      origin.empty() ? "" : fmt::format("origin={}\norigin_oid={}\n", escape(origin), origin_oid));
}

RunMarker RunMarker::parse(std::string_view text) {
  std::map<std::string, std::string> values;
  bool header_seen = false;
  std::size_t line_start = 0;
  while (line_start < text.size()) {
    std::size_t line_end = text.find('\n', line_start);
    if (line_end == std::string_view::npos) line_end = text.size();
    std::string_view line = text.substr(line_start, line_end - line_start);
    line_start = line_end + 1;
    if (!header_seen) {
      if (!line.starts_with(kHeader) || line.size() <= kHeader.size() + 1 ||
          line[kHeader.size()] != ' ') {
        throw Error(FaultClass::integrity, "run marker: missing the header line");
      }
      header_seen = true;
      continue;
    }
    if (line.empty()) continue;
    std::size_t equals = line.find('=');
    if (equals == std::string_view::npos || equals == 0) {
      throw Error(FaultClass::integrity,
                  fmt::format("run marker: malformed line '{}'", escape(line)));
    }
    values[std::string(line.substr(0, equals))] = unescape(line.substr(equals + 1));
  }
  if (!header_seen) throw Error(FaultClass::integrity, "run marker: empty");
  auto required_text = [&](const std::string& key) {
    auto it = values.find(key);
    if (it == values.end() || it->second.empty()) {
      throw Error(FaultClass::integrity, "run marker: missing " + key);
    }
    return it->second;
  };
  RunMarker marker;
  marker.run_id = required_text("run_id");
  marker.resource = required_text("resource");
  marker.host = required_text("host");
  marker.pid = parse_integer<long>(values, "pid", true);
  if (marker.pid <= 0 || marker.pid > INT_MAX) {
    throw Error(FaultClass::integrity, fmt::format("run marker: invalid pid {}", marker.pid));
  }
  marker.pid_start = parse_integer<std::uint64_t>(values, "pid_start", false);
  if (auto it = values.find("boot_id"); it != values.end()) marker.boot_id = it->second;
  marker.started_at = std::chrono::system_clock::time_point(
      std::chrono::milliseconds(parse_integer<long long>(values, "started_at_ms", true)));
  if (auto it = values.find("harness_version"); it != values.end()) {
    marker.harness_version = it->second;
  }
  if (auto it = values.find("lease"); it != values.end()) marker.server_lease = it->second == "1";
  if (auto it = values.find("kept"); it != values.end()) marker.kept = it->second == "1";
  if (auto it = values.find("verified"); it != values.end()) marker.verified = it->second;
  if (auto it = values.find("origin"); it != values.end()) {
    marker.origin = it->second;
    marker.origin_oid = parse_integer<std::uint32_t>(values, "origin_oid", true);
  }
  return marker;
}

std::string this_host_name() {
  char buffer[HOST_NAME_MAX + 1] = {};
  if (::gethostname(buffer, sizeof buffer - 1) != 0) return "unknown-host";
  return buffer;
}

bool is_orphan(const RunMarker& marker, std::chrono::system_clock::time_point now,
               std::chrono::seconds grace, std::string_view this_host,
               std::optional<bool> lease_held) {
  if (marker.kept || lease_held == true) return false;
  if (marker.host != this_host) {
    if (marker.server_lease && lease_held == false) return true;
    return now - marker.started_at > grace;
  }
  if (!marker.boot_id.empty()) {
    std::string boot = detail::current_boot_id();
    if (!boot.empty() && boot != marker.boot_id) return true;
  }
  if (marker.pid <= 0 || marker.pid > INT_MAX) return true;
  const auto pid = static_cast<pid_t>(marker.pid);
  if (::kill(pid, 0) == -1 && errno == ESRCH) return true;
  auto facts = detail::process_facts(pid);
  if (facts) {
    if (facts->state == 'Z' || facts->state == 'X') return true;
    if (marker.pid_start != 0 && facts->start_ticks != marker.pid_start) return true;
  }
  return false;
}

void write_marker_file(const std::filesystem::path& path, const RunMarker& marker) {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  std::filesystem::path temporary =
      path.string() + fmt::format(".tmp-{}-{:x}", static_cast<long>(::getpid()), engine());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << marker.serialize();
    out.flush();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(temporary, ignored);
      throw Error(FaultClass::provisioning,
                  fmt::format("cannot write the run marker {}", temporary.string()));
    }
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw Error(FaultClass::provisioning,
                fmt::format("cannot write the run marker {}: {}", path.string(), error.message()));
  }
}

std::optional<RunMarker> read_marker_file(const std::filesystem::path& path) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) {
    if (error && error != std::errc::no_such_file_or_directory) {
      throw Error(FaultClass::provisioning,
                  fmt::format("cannot read the run marker {}: {}", path.string(), error.message()));
    }
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(FaultClass::provisioning,
                fmt::format("cannot read the run marker {}", path.string()));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  try {
    return RunMarker::parse(buffer.str());
  } catch (const Error& e) {
    throw Error(FaultClass::integrity, fmt::format("{}: {}", path.string(), e.message()));
  }
}

}  // namespace gamebot::harness
