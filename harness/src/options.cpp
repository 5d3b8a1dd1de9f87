#include "gamebot/harness/options.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <utility>

#include "gamebot/core/closest_names.hpp"
#include "gamebot/core/error.hpp"

namespace gamebot::harness {
namespace {

[[noreturn]] void configuration_error(std::string message) {
  throw Error(FaultClass::configuration, std::move(message));
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// One option's value and where it came from ("--backend" or "GAMEBOT_TEST_BACKEND").
struct Source {
  std::string value;
  std::string name;
  bool from_flag = false;
};

std::optional<Source> pick(const std::optional<std::string>& flag, std::string_view flag_name,
                           const EnvGetter& env, std::string_view env_name) {
  if (flag) return Source{*flag, std::string(flag_name), true};
  if (env) {
    if (auto value = env(std::string(env_name)); value && !value->empty()) {
      return Source{*value, std::string(env_name), false};
    }
  }
  return std::nullopt;
}

bool parse_bool(const Source& source) {
  std::string value = lower(source.value);
  if (value == "1" || value == "true" || value == "yes" || value == "on") return true;
  if (value == "0" || value == "false" || value == "no" || value == "off") return false;
  configuration_error(
      fmt::format("{}: invalid value '{}' (expected true/false, 1/0, yes/no, on/off)", source.name,
                  source.value));
}

std::chrono::milliseconds parse_deadline(const Source& source) {
  const std::string& text = source.value;
  double seconds = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, seconds);
  if (text.empty() || ec != std::errc() || ptr != end || !std::isfinite(seconds) || seconds <= 0 ||
      seconds > 86'400) {
    configuration_error(
        fmt::format("{}: invalid deadline '{}' (expected a number of seconds, > 0 and <= 86400)",
                    source.name, text));
  }
  auto millis = static_cast<long long>(std::llround(seconds * 1000.0));
  return std::chrono::milliseconds(std::max(1LL, millis));
}

std::size_t parse_connection_count(const Source& source) {
  const std::string& text = source.value;
  std::size_t count = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, count);
  if (text.empty() || ec != std::errc() || ptr != end || count == 0 || count > 10'000) {
    configuration_error(fmt::format(
        "{}: invalid connection count '{}' (expected a whole number, >= 1 and <= 10000)",
        source.name, text));
  }
  return count;
}

// The one place a harness URL's text is parsed; the message names the flag or
// variable and, like every DatabaseUrl error, shows no secret.
repo::DatabaseUrl parse_url(const Source& source) {
  try {
    return repo::DatabaseUrl::parse(source.value);
  } catch (const Error& error) {
    configuration_error(fmt::format("{}: {}", source.name, error.message()));
  }
}

Backend backend_of(const repo::DatabaseUrl& url) {
  switch (url.driver()) {
    case repo::Driver::memory:
      return Backend::memory;
    case repo::Driver::sqlite:
      return Backend::sqlite;
    case repo::Driver::postgres:
      return Backend::postgres;
  }
  return Backend::sqlite;
}

}  // namespace

std::string_view to_string(Backend backend) noexcept {
  switch (backend) {
    case Backend::memory:
      return "memory";
    case Backend::sqlite:
      return "sqlite";
    case Backend::postgres:
      return "postgres";
  }
  return "sqlite";
}

std::string_view to_string(Isolation isolation) noexcept {
  switch (isolation) {
    case Isolation::transaction:
      return "transaction";
    case Isolation::schema:
      return "schema";
    case Isolation::database:
      return "database";
    case Isolation::none:
      return "none";
  }
  return "transaction";
}

Backend parse_backend(std::string_view text, std::string_view option_name) {
  std::string value = lower(text);
  if (value == "memory") return Backend::memory;
  if (value == "sqlite") return Backend::sqlite;
  if (value == "postgres" || value == "postgresql") return Backend::postgres;
  configuration_error(fmt::format("{}: invalid backend '{}' (expected memory, sqlite or postgres)",
                                  option_name, text));
}

Isolation parse_isolation(std::string_view text, std::string_view option_name) {
  std::string value = lower(text);
  for (Isolation isolation :
       {Isolation::transaction, Isolation::schema, Isolation::database, Isolation::none}) {
    if (value == to_string(isolation)) return isolation;
  }
  configuration_error(
      fmt::format("{}: invalid isolation '{}' (expected transaction, schema, database or none)",
                  option_name, text));
}

std::string describe(const HarnessOptions& options) {
  return fmt::format(
      "backend={} url={} isolation={} keep={} report={} connect-deadline={}s log-level={} "
      "max-connections={}",
      to_string(options.backend),
      options.database_url ? options.database_url->redacted() : "(harness-provided)",
      to_string(options.isolation), options.keep ? "yes" : "no",
      options.report_path.empty() ? "(none)" : options.report_path,
      static_cast<double>(options.connect_deadline.count()) / 1000.0, to_string(options.log_level),
      options.max_connections);
}

EnvGetter process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr || *value == '\0') return std::nullopt;
    return std::string(value);
  };
}

EnvGetter fixed_environment(std::vector<std::pair<std::string, std::string>> variables) {
  std::map<std::string, std::string> table(variables.begin(), variables.end());
  return [table = std::move(table)](const std::string& name) -> std::optional<std::string> {
    auto it = table.find(name);
    if (it == table.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
}

ResolvedOptions resolve_options(const OptionInputs& flags, const EnvGetter& env) {
  ResolvedOptions resolved;
  HarnessOptions& options = resolved.options;

  auto backend = pick(flags.backend, "--backend", env, kEnvBackend);
  auto url = pick(flags.database_url, "--database-url", env, kEnvDatabaseUrl);
  // Plain values and flags rather than std::optional<Backend>: g++ 12 under
  // -fsanitize=thread reports a false maybe-uninitialized for the latter.
  bool use_backend_flag = backend.has_value();
  const Backend explicit_backend =
      backend ? parse_backend(backend->value, backend->name) : Backend::sqlite;
  bool use_url = url.has_value();
  std::optional<repo::DatabaseUrl> parsed_url;
  if (url) parsed_url = parse_url(*url);
  const Backend url_backend = parsed_url ? backend_of(*parsed_url) : Backend::sqlite;
  if (use_backend_flag && use_url && explicit_backend != url_backend) {
    if (backend->from_flag && !url->from_flag) {
      resolved.notes.push_back(fmt::format("{} '{}' ignored: {} {} chooses another backend",
                                           url->name, parsed_url->redacted(), backend->name,
                                           backend->value));
      use_url = false;
    } else if (!backend->from_flag && url->from_flag) {
      resolved.notes.push_back(fmt::format("{} '{}' overridden by {} (a {} URL)", backend->name,
                                           backend->value, url->name, to_string(url_backend)));
      use_backend_flag = false;
    } else {
      configuration_error(fmt::format("{} '{}' is a {} URL but {} is {}: they contradict",
                                      url->name, parsed_url->redacted(), to_string(url_backend),
                                      backend->name, backend->value));
    }
  }
  if (use_url) options.database_url = std::move(parsed_url);
  options.backend = use_backend_flag ? explicit_backend : (use_url ? url_backend : Backend::sqlite);

  if (auto isolation = pick(flags.isolation, "--isolation", env, kEnvIsolation)) {
    options.isolation = parse_isolation(isolation->value, isolation->name);
    if (options.isolation == Isolation::schema && options.backend != Backend::postgres) {
      configuration_error(
          fmt::format("{}: isolation 'schema' needs the postgres backend (the "
                      "backend is {}; use transaction or database)",
                      isolation->name, to_string(options.backend)));
    }
  }
  if (auto keep = pick(flags.keep, "--keep", env, kEnvKeep)) options.keep = parse_bool(*keep);
  if (auto report = pick(flags.report_path, "--report", env, kEnvReport)) {
    if (report->value.empty()) configuration_error(report->name + ": empty file name");
    options.report_path = report->value;
  }
  if (auto deadline =
          pick(flags.connect_deadline, "--connect-deadline", env, kEnvConnectDeadline)) {
    options.connect_deadline = parse_deadline(*deadline);
  }
  if (auto level = pick(flags.log_level, "--log-level", env, kEnvLogLevel)) {
    options.log_level = parse_log_level(level->value, level->name);
  }
  if (auto count = pick(flags.max_connections, "--max-connections", env, kEnvMaxConnections))
    options.max_connections = parse_connection_count(*count);
  return resolved;
}

std::vector<const char*> ParsedOptions::remaining_argv() const {
  std::vector<const char*> pointers;
  pointers.reserve(remaining.size());
  for (const std::string& argument : remaining) pointers.push_back(argument.c_str());
  return pointers;
}

std::span<const HarnessFlag> harness_flags() noexcept {
  static constexpr HarnessFlag flags[] = {
      {"--backend", "memory|sqlite|postgres", kEnvBackend,
       "store the tests run on (default sqlite, or the backend of the URL)",
       &OptionInputs::backend},
      {"--database-url", "URL", kEnvDatabaseUrl,
       "memory:, sqlite:PATH, sqlite::memory:, postgres://... (postgres without a URL starts a "
       "private server)",
       &OptionInputs::database_url},
      {"--isolation", "transaction|schema|database|none", kEnvIsolation,
       "per-test isolation strategy (default transaction)", &OptionInputs::isolation},
      {"--keep", "", kEnvKeep, "keep the run's databases for inspection", &OptionInputs::keep},
      {"--report", "FILE", kEnvReport, "write the JSON run report", &OptionInputs::report_path},
      {"--connect-deadline", "SECONDS", kEnvConnectDeadline, "connectivity deadline, default 30",
       &OptionInputs::connect_deadline},
      {"--log-level", "LEVEL", kEnvLogLevel,
       "trace|debug|info|warn|error|critical|off, default info", &OptionInputs::log_level},
      {"--max-connections", "N", kEnvMaxConnections,
       "PostgreSQL connections the harness opens at once at most, default 12",
       &OptionInputs::max_connections},
  };
  return flags;
}

ExtractedOptions extract_options(int argc, const char* const* argv) {
  ExtractedOptions extracted;
  if (argc > 0 && argv != nullptr && argv[0] != nullptr) extracted.remaining.emplace_back(argv[0]);
  for (int i = 1; i < argc; ++i) {
    std::string_view argument = argv[i];
    if (argument == "--") {
      for (; i < argc; ++i) extracted.remaining.emplace_back(argv[i]);
      break;
    }
    bool consumed = false;
    for (const HarnessFlag& flag : harness_flags()) {
      if (argument == flag.name) {
        if (flag.value.empty()) {
          extracted.inputs.*flag.input = "true";
        } else {
          if (i + 1 >= argc || std::string_view(argv[i + 1]).starts_with("--"))
            configuration_error(fmt::format("{} needs a value ({})", flag.name, flag.value));
          extracted.inputs.*flag.input = std::string(argv[++i]);
        }
        consumed = true;
        break;
      }
      if (argument.size() > flag.name.size() && argument.starts_with(flag.name) &&
          argument[flag.name.size()] == '=') {
        extracted.inputs.*flag.input = std::string(argument.substr(flag.name.size() + 1));
        consumed = true;
        break;
      }
    }
    if (!consumed) extracted.remaining.emplace_back(argument);
  }
  return extracted;
}

std::optional<std::string> nearest_flag(std::string_view unknown,
                                        std::span<const std::string_view> others) {
  const std::string_view name = unknown.substr(0, unknown.find('='));
  std::vector<std::string_view> candidates;
  for (const HarnessFlag& flag : harness_flags()) candidates.push_back(flag.name);
  candidates.insert(candidates.end(), others.begin(), others.end());
  if (auto closest = closest_names(name, candidates, 1); !closest.empty()) return closest.front();
  std::optional<std::string> prefixed;
  for (std::string_view candidate : candidates) {
    if (name.size() <= 2 || !candidate.starts_with(name)) continue;
    if (prefixed) return std::nullopt;  // more than one: no guess
    prefixed = std::string(candidate);
  }
  return prefixed;
}

ParsedOptions parse_options(int argc, const char* const* argv, const EnvGetter& env) {
  ExtractedOptions extracted = extract_options(argc, argv);
  ResolvedOptions resolved = resolve_options(extracted.inputs, env);
  ParsedOptions parsed;
  parsed.options = std::move(resolved.options);
  parsed.notes = std::move(resolved.notes);
  parsed.remaining = std::move(extracted.remaining);
  return parsed;
}

std::string options_help() {
  std::string help =
      "Harness options (each also settable by the environment variable shown; flags win):\n";
  for (const HarnessFlag& flag : harness_flags()) {
    std::string usage(flag.name);
    if (!flag.value.empty()) usage += " " + std::string(flag.value);
    help += fmt::format("  {}\n      {} ({})\n", usage, flag.help, flag.env);
  }
  return help;
}

}  // namespace gamebot::harness
