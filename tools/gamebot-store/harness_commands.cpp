// test-dbs list|reap (the harness's test databases and SQLite run directories,
// by their RunMarker), cache list|clear (harness::caches), test-server start|stop (the shared
// private server of a ctest run, harness::SharedPostgres) and report (a harness JSON run report as
// text).

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "gamebot/harness/caches.hpp"
#include "gamebot/harness/ephemeral_postgres.hpp"
#include "gamebot/harness/marked_resources.hpp"
#include "gamebot/harness/report.hpp"
#include "gamebot/harness/report_html.hpp"
#include "gamebot/harness/run_id.hpp"
#include "gamebot/harness/run_marker.hpp"
#include "gamebot/harness/shared_postgres.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/database_url.hpp"
#include "gamebot/repo/identifier.hpp"

namespace gamebot::tools {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

// One database or run directory carrying the test prefix.
using TestResource = harness::marked::MarkedResource;

std::string age_text(std::chrono::seconds age) {
  const auto s = age.count();
  if (s < 0) return "future";
  if (s < 120) return fmt::format("{}s", s);
  if (s < 7200) return fmt::format("{}m", s / 60);
  if (s < 172800) return fmt::format("{}h", s / 3600);
  return fmt::format("{}d", s / 86400);
}

// The harness's resources at URL; what may be removed is decided by harness::marked.
class Resources {
 public:
  explicit Resources(const repo::DatabaseUrl& url) {
    if (url.driver() == repo::Driver::postgres) {
      server_ = url;
      connection_ = repo::connect(server_);
    } else if (url.driver() == repo::Driver::sqlite && !url.sqlite_in_memory()) {
      dir_ = url.sqlite_path();
      std::error_code ec;
      if (!fs::is_directory(dir_, ec))
        throw Error(FaultClass::configuration, fmt::format("{} is not a directory", dir_.string()));
    } else {
      throw UsageError(
          fmt::format("test-dbs: '{}' is neither postgresql://... nor sqlite:DIR", url.redacted()));
    }
  }

  bool postgres() const noexcept { return connection_ != nullptr; }

  // The directory of the URL's unix socket, when it is an ephemeral server's.
  std::optional<fs::path> private_server() {
    if (!postgres() || server_.host().empty() || server_.host().front() != '/') return std::nullopt;
    const fs::path host(server_.host());
    if (!host.filename().string().starts_with(harness::EphemeralPostgres::kDirectoryPrefix))
      return std::nullopt;
    connection_.reset();  // the server is about to stop
    return host;
  }

  std::vector<TestResource> list() {
    if (postgres()) return harness::marked::list(*connection_);
    return harness::marked::list(dir_, harness::kTestDatabasePrefix);
  }

  bool owner_gone(const harness::RunMarker& marker, std::chrono::seconds grace) {
    if (postgres()) return harness::marked::owner_gone(*connection_, marker, grace);
    return harness::is_orphan(marker, Clock::now(), grace, harness::this_host_name());
  }

  // A database shared between runs (a pooled run database, a ready clone): "claimed" (in use),
  // "stale" (its template is gone or rebuilt: reaped as an orphan is), else its resource,
  // "pooled" or "ready" (free, kept for the next run).
  std::string shared_state(const TestResource& r) {
    if (harness::marked::claimed(*connection_, r.name)) return "claimed";
    if (harness::marked::stale(*connection_, *r.marker)) return "stale";
    return r.marker->resource;  // "pooled" or "ready": free, kept for the next run
  }

  // Removes a resource whose marker is still what was listed (a shared database: under its claim
  // and only while stale). True if removed.
  bool remove(const TestResource& r) {
    if (postgres() && !r.marker->origin.empty())
      return harness::marked::drop_if_stale(server_, connection_, r.name, *r.marker);
    const std::string listed = r.marker->serialize();
    const harness::marked::Owner same = [&listed](const harness::RunMarker& now) {
      return now.serialize() == listed;
    };
    if (postgres()) return harness::marked::drop_if_owned(server_, connection_, r.name, same);
    return harness::marked::drop_if_owned(fs::path(r.name), same);
  }

 private:
  repo::DatabaseUrl server_;
  std::unique_ptr<repo::Connection> connection_;
  fs::path dir_;
};

std::chrono::seconds grace_of(const Args& args) {
  return std::chrono::hours(args.integer("grace-hours", 0, std::int64_t{24} * 365)
                                .value_or(harness::kDefaultOrphanGrace.count()));
}

// "orphan", "alive", "kept" (--keep; reaped only by reap --kept), "template" (never reaped),
// "pooled" / "ready" / "claimed" / "stale" (a database shared between runs: kept, in use, reaped
// as an orphan), "unmarked" (never touched).
std::string state_of(Resources& resources, const TestResource& r, std::chrono::seconds grace) {
  if (!r.marker) return r.problem.empty() ? "unmarked" : "bad-marker";
  if (r.marker->resource == harness::marked::kTemplateResource) return "template";
  if (r.marker->kept) return "kept";
  if (resources.postgres() && !r.marker->origin.empty()) return resources.shared_state(r);
  return resources.owner_gone(*r.marker, grace) ? "orphan" : "alive";
}

int run_list(const Args& args) {
  Resources resources(parse_store_url(args.positionals[0]));
  const auto grace = grace_of(args);
  const auto found = resources.list();
  print_line(fmt::format("{:<48} {:<10} {:<12} {:<24} {:>8} {:>6}", "NAME", "STATE", "RESOURCE",
                         "OWNER (HOST:PID)", "AGE", "RUN"));
  for (const TestResource& r : found) {
    if (!r.marker) {
      print_line(fmt::format("{:<48} {:<10} {}", r.name, state_of(resources, r, grace), r.problem));
      continue;
    }
    const auto age =
        std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - r.marker->started_at);
    print_line(fmt::format("{:<48} {:<10} {:<12} {:<24} {:>8} {}", r.name,
                           state_of(resources, r, grace), r.marker->resource,
                           fmt::format("{}:{}", r.marker->host, r.marker->pid), age_text(age),
                           r.marker->run_id));
  }
  print_line(fmt::format("{} found", found.size()));
  return kExitOk;
}

int run_reap(const Args& args) {
  Resources resources(parse_store_url(args.positionals[0]));
  const auto grace = grace_of(args);
  const bool dry_run = args.has("dry-run");
  // Orphans, or (--kept) what runs kept on purpose.
  const std::string target = args.has("kept") ? "kept" : "orphan";
  Progress progress("reaped");
  std::uint64_t reaped = 0;
  std::uint64_t kept = 0;
  for (const TestResource& r : resources.list()) {
    const std::string state = state_of(resources, r, grace);
    if ((state != target && !(target == "orphan" && state == "stale")) ||
        (!resources.postgres() && r.marker->resource != "sqlite-run")) {
      ++kept;
      continue;
    }
    if (dry_run) {
      print_line(
          fmt::format("would reap {} (owner pid {} on {})", r.name, r.marker->pid, r.marker->host));
      continue;
    }
    if (resources.remove(r)) {
      print_line(
          fmt::format("reaped {} (owner pid {} on {})", r.name, r.marker->pid, r.marker->host));
      progress.update(++reaped);
    }
  }
  progress.finish();
  // A kept private server (its URL names the server's directory as the host): it goes too.
  if (target == "kept" && !dry_run) {
    if (const auto server = resources.private_server();
        server && harness::EphemeralPostgres::remove_kept(*server)) {
      print_line(fmt::format("stopped and removed the kept server {}", server->string()));
    }
  }
  print_line(fmt::format("{} reaped, {} kept", reaped, kept));
  return kExitOk;
}

// ---- cache ----

std::vector<fs::path> cache_places(const Args& args) {
  std::vector<fs::path> places;
  if (auto dir = args.value("dir")) places.emplace_back(*dir);
  return places;
}

std::string size_text(std::uintmax_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  if (bytes < 1024 * 1024) return fmt::format("{:.1f} KiB", bytes / 1024.0);
  if (bytes < 1024ull * 1024 * 1024) return fmt::format("{:.1f} MiB", bytes / 1048576.0);
  return fmt::format("{:.1f} GiB", bytes / 1073741824.0);
}

int run_cache_list(const Args& args) {
  const auto places = cache_places(args);
  const auto found = harness::caches::list(places);
  print_line(fmt::format("{:<56} {:>10}  {}", "PATH", "SIZE", "WHAT"));
  for (const auto& cache : found)
    print_line(
        fmt::format("{:<56} {:>10}  {}", cache.path.string(), size_text(cache.bytes), cache.what));
  print_line(fmt::format("{} found", found.size()));
  return kExitOk;
}

int run_cache_clear(const Args& args) {
  const auto places = cache_places(args);
  std::uint64_t removed = 0;
  for (const auto& cache : harness::caches::list(places)) {
    if (!harness::caches::clear(cache)) continue;
    print_line(fmt::format("removed {} ({}, {})", cache.path.string(), cache.what,
                           size_text(cache.bytes)));
    ++removed;
  }
  print_line(fmt::format("{} removed", removed));
  return kExitOk;
}

// ---- report ----

std::string text_of(const rapidjson::Value& object, const char* key) {
  auto it = object.FindMember(key);
  if (it == object.MemberEnd() || it->value.IsNull()) return {};
  if (it->value.IsString()) return std::string(it->value.GetString(), it->value.GetStringLength());
  if (it->value.IsBool()) return it->value.GetBool() ? "true" : "false";
  if (it->value.IsInt64()) return std::to_string(it->value.GetInt64());
  if (it->value.IsNumber()) return fmt::format("{:.1f}", it->value.GetDouble());
  return {};
}

double number_of(const rapidjson::Value& object, const char* key) {
  auto it = object.FindMember(key);
  return it != object.MemberEnd() && it->value.IsNumber() ? it->value.GetDouble() : 0.0;
}

const rapidjson::Value* array_of(const rapidjson::Value& object, const char* key) {
  auto it = object.FindMember(key);
  return it != object.MemberEnd() && it->value.IsArray() ? &it->value : nullptr;
}

std::string duration_text(double ms) {
  return ms >= 1000.0 ? fmt::format("{:.2f} s", ms / 1000.0) : fmt::format("{:.1f} ms", ms);
}

// `text` after `label`, its later lines indented under the first.
void print_field(std::string_view label, const std::string& text) {
  if (text.empty()) return;
  std::string indented;
  for (char c : text) {
    indented += c;
    if (c == '\n') indented += std::string(8, ' ');
  }
  print_line(fmt::format("      {}: {}", label, indented));
}

// Why a failed test failed, where, on which database, its log and how to rerun it.
void print_failure_detail(const rapidjson::Value& test) {
  std::string kind = text_of(test, "kind");
  const std::string file = text_of(test, "file");
  if (!file.empty()) {
    kind += fmt::format("{}at {}", kind.empty() ? "" : " ", file);
    if (const std::string line = text_of(test, "line"); !line.empty() && line != "0")
      kind += ":" + line;
  }
  print_field("kind", kind);
  print_field("expression", text_of(test, "expression"));
  print_field("expansion", text_of(test, "expansion"));
  const std::string type = text_of(test, "exception_type");
  const std::string what = text_of(test, "exception_text");
  if (!type.empty() || !what.empty())
    print_field("exception", type.empty() ? what : type + ": " + what);
  print_field("database", text_of(test, "database"));
  if (const auto* log = array_of(test, "log"); log && !log->Empty()) {
    const std::string dropped = text_of(test, "log_dropped");
    print_line(fmt::format(
        "      log (last {} lines{}):", log->Size(),
        dropped.empty() || dropped == "0" ? "" : fmt::format(", {} earlier left out", dropped)));
    for (const auto& line : log->GetArray())
      if (line.IsString()) print_line(fmt::format("        | {}", line.GetString()));
  }
  print_field("rerun", text_of(test, "rerun"));
}

int run_report(const Args& args) {
  const std::string& path = args.positionals[0];
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(FaultClass::configuration, fmt::format("cannot read {}", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    throw Error(FaultClass::serialization,
                fmt::format("{} is not a run report: {}", path,
                            doc.HasParseError() ? rapidjson::GetParseError_En(doc.GetParseError())
                                                : "not a JSON object"));
  }
  if (auto html_path = args.value("html")) {
    // Atomically, so a viewer never loads half a page.
    const std::string temporary = *html_path + ".tmp";
    {
      std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
      out << gamebot::harness::render_report_html(text);
      if (!out) {
        throw Failure(FaultClass::configuration, fmt::format("cannot write {}", *html_path));
      }
    }
    std::filesystem::rename(temporary, *html_path);
    print_line(fmt::format("wrote {}", *html_path));
    return kExitOk;
  }
  print_line(fmt::format("Run {} on {} (isolation {}), started {}, harness {}",
                         text_of(doc, "run_id"), text_of(doc, "backend"), text_of(doc, "isolation"),
                         text_of(doc, "started_at"), text_of(doc, "harness_version")));
  if (const auto* command = array_of(doc, "command_line"); command && !command->Empty()) {
    std::vector<std::string> arguments;
    for (const auto& argument : command->GetArray())
      if (argument.IsString()) arguments.emplace_back(argument.GetString());
    print_line("Command: " + harness::shell_command(arguments));
  }
  if (!text_of(doc, "options").empty()) print_line("Options: " + text_of(doc, "options"));
  print_line(fmt::format("Verdict: {}", text_of(doc, "verdict")));
  if (const auto* phases = array_of(doc, "phases")) {
    print_line("Phases:");
    for (const auto& p : phases->GetArray()) {
      if (!p.IsObject()) continue;
      const bool ok = text_of(p, "ok") == "true";
      std::string line =
          fmt::format("  {:<13} {:<7} {:>10}", text_of(p, "name"), ok ? "ok" : "FAILED",
                      duration_text(number_of(p, "duration_ms")));
      if (!ok && !text_of(p, "fault").empty()) line += "  [" + text_of(p, "fault") + "]";
      if (!text_of(p, "message").empty()) line += "  " + text_of(p, "message");
      print_line(line);
    }
  }
  auto totals = doc.FindMember("totals");
  if (totals != doc.MemberEnd() && totals->value.IsObject()) {
    const auto& t = totals->value;
    print_line(
        fmt::format("Tests: {} total, {} passed, {} assertion failures, {} infrastructure failures",
                    text_of(t, "total"), text_of(t, "passed"), text_of(t, "assertion_failures"),
                    text_of(t, "infrastructure_failures")));
  }
  if (const auto* tests = array_of(doc, "tests")) {
    bool header = false;
    for (const auto& t : tests->GetArray()) {
      if (!t.IsObject() || text_of(t, "outcome") == "passed") continue;
      if (!header) print_line("Failures:");
      header = true;
      std::string line = fmt::format("  [{}] {} ({})", text_of(t, "outcome"), text_of(t, "name"),
                                     duration_text(number_of(t, "duration_ms")));
      if (!text_of(t, "fault").empty()) line += " fault " + text_of(t, "fault");
      if (!text_of(t, "message").empty()) line += ": " + text_of(t, "message");
      print_line(line);
      print_failure_detail(t);
    }
  }
  if (const auto* slowest = array_of(doc, "slowest"); slowest && !slowest->Empty()) {
    print_line("Slowest tests:");
    for (const auto& t : slowest->GetArray()) {
      if (!t.IsObject()) continue;
      print_line(fmt::format("  {:>10}  {}", duration_text(number_of(t, "duration_ms")),
                             text_of(t, "name")));
    }
  }
  auto pool = doc.FindMember("pool");
  if (pool != doc.MemberEnd() && pool->value.IsObject()) {
    print_line(fmt::format("Pool: peak {} in use, {} waits, {} timeouts; retries {}",
                           text_of(pool->value, "peak_in_use"), text_of(pool->value, "waits"),
                           text_of(pool->value, "timeouts"), text_of(doc, "retries")));
  }
  auto faults = doc.FindMember("faults");
  if (faults != doc.MemberEnd() && faults->value.IsObject() && faults->value.MemberCount() > 0) {
    std::string line = "Faults:";
    for (const auto& f : faults->value.GetObject())
      line += fmt::format(" {} {}", f.name.GetString(), text_of(faults->value, f.name.GetString()));
    print_line(line);
  }
  return kExitOk;
}

// The process a fixture command holds the shared server for: --holder, else our parent (ctest,
// when CTest runs this as the fixture's setup or cleanup test).
pid_t holder_of(const Args& args) {
  if (auto pid = args.integer("holder", 1, 4'194'304)) return static_cast<pid_t>(*pid);
  return ::getppid();
}

int run_test_server_start(const Args& args) {
  const fs::path run_dir = fs::absolute(args.positionals.at(0));
  const std::string url =
      harness::SharedPostgres::hold_for(run_dir, holder_of(args), harness::RunId::generate().str());
  print_line(fmt::format("shared private server for {} running: {}", run_dir.string(), url));
  return kExitOk;
}

int run_test_server_stop(const Args& args) {
  const fs::path run_dir = fs::absolute(args.positionals.at(0));
  if (!harness::SharedPostgres::release_for(run_dir, holder_of(args))) {
    print_line(fmt::format("shared private server for {} still held by a running process",
                           run_dir.string()));
    return kExitOk;
  }
  print_line(fmt::format("shared private server for {} stopped", run_dir.string()));
  return kExitOk;
}

}  // namespace

void add_harness_commands(std::vector<Command>& commands) {
  const std::string where =
      "URL: postgresql://... (the server whose gamebot_test_* databases to inspect; the\n"
      "marker is each database's COMMENT) or sqlite:DIR (the directory holding the harness's\n"
      "gamebot_test_* SQLite run directories, e.g. sqlite:/tmp).\n";
  commands.push_back(
      {{"test-dbs list",
        {"URL"},
        "List the harness's test databases (or SQLite run directories) with owner and age.",
        where + "STATE: alive (owner running), orphan (owner gone), kept (by --keep: no run\n"
                "reaps it; `test-dbs reap --kept` does), template (a schema template, kept),\n"
                "pooled / ready (a run database or an unused clone kept for the next run),\n"
                "claimed (one of those in use), stale\n"
                "(one whose template is gone or rebuilt: reaped like an orphan),\n"
                "unmarked / bad-marker (never touched).\n",
        {{"grace-hours", "N",
          "age past which another host's marker without a server lease is an orphan "
          "(default 24)"}}},
       run_list});
  commands.push_back(
      {{"test-dbs reap",
        {"URL"},
        "Remove the harness's orphaned test databases (or SQLite run directories).",
        where + "Only resources whose marker says the owner is gone are removed: on this host its\n"
                "pid is dead (or the host rebooted), whatever the age; on another host its server\n"
                "lease is no longer held (markers without one: older than the grace). Unmarked\n"
                "ones and templates never. Progress on stderr when it is a terminal.\n",
        {{"grace-hours", "N",
          "age past which another host's marker without a server lease is an orphan "
          "(default 24)"},
         {"dry-run", "", "print what would be reaped, remove nothing"},
         {"kept", "",
          "remove what --keep kept instead of orphans (with a kept private server's URL, as the "
          "run printed it, the server too)"}}},
       run_reap});
  const std::string cache_where =
      "The harness's caches of this user: the private PostgreSQL server's cluster image and its\n"
      "spare clusters, and the SQLite template cache ($XDG_CACHE_HOME/gamebot, the server's base\n"
      "directory, $TMPDIR or /tmp, and --dir). Only private directories of this user (mode 0700)\n"
      "count; anything else of the same name is neither listed nor removed. A run rebuilds what\n"
      "it needs.\n";
  commands.push_back({{"cache list",
                       {},
                       "List the harness's caches on this host: path, size, what each is.",
                       cache_where,
                       {{"dir", "DIR", "also look in DIR (e.g. the directory of a SQLite URL)"}}},
                      run_cache_list});
  commands.push_back({{"cache clear",
                       {},
                       "Remove the harness's caches on this host (only this user's own).",
                       cache_where,
                       {{"dir", "DIR", "also look in DIR (e.g. the directory of a SQLite URL)"}}},
                      run_cache_clear});
  const std::string server_where =
      "DIR: the run directory of the shared private PostgreSQL server (what\n"
      "GAMEBOT_TEST_SHARED_SERVER_DIR names for the tests; gamebot_discover_tests() sets both).\n"
      "The server lives while any holder lives: each test process holds it while it runs, and\n"
      "`start` holds it for the process that runs it (ctest, for a CTest fixture) until `stop`.\n"
      "A holder that died (even by SIGKILL) holds nothing; a server left without live holders\n"
      "is stopped by the next start or stop in DIR.\n";
  const OptionSpec holder{"holder", "PID",
                          "the process to hold the server for (default: the parent process)"};
  commands.push_back({{"test-server start",
                       {"DIR"},
                       "Start (or join) the shared private PostgreSQL server of a test run.",
                       server_where,
                       {holder}},
                      run_test_server_start});
  commands.push_back({{"test-server stop",
                       {"DIR"},
                       "Release a test run's shared private server; stop it if no one holds it.",
                       server_where,
                       {holder}},
                      run_test_server_stop});
  commands.push_back({{"report",
                       {"FILE"},
                       "Render a harness JSON run report (--report FILE of a test run) as text.",
                       "With --html, write it as one self-contained HTML page instead (phase\n"
                       "timeline, failures by kind, faults, pool use over time, per-test\n"
                       "durations; no network needed to view it).\n",
                       {{"html", "OUT", "write the report as an HTML page to OUT"}}},
                      run_report});
}

}  // namespace gamebot::tools
