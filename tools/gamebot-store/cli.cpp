#include "cli.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "gamebot/eventstore/open.hpp"

namespace gamebot::tools {

std::string_view exit_code_help() noexcept {
  return "Exit codes: 0 ok; 1 failure (integrity violations, version conflicts, bad input);\n"
         "2 usage or configuration error; 3 infrastructure fault (connectivity, authentication,\n"
         "timeout, pool_exhausted). Errors are one line: gamebot-store: <fault class>: "
         "<message>.\n";
}

int exit_code_for(FaultClass fault) noexcept {
  switch (fault) {
    case FaultClass::configuration:
      return kExitUsage;
    case FaultClass::connectivity:
    case FaultClass::authentication:
    case FaultClass::timeout:
    case FaultClass::pool_exhausted:
      return kExitInfrastructure;
    default:
      return kExitFailure;
  }
}

std::optional<std::string> Args::value(std::string_view name) const {
  auto it = values.find(name);
  if (it == values.end()) return std::nullopt;
  return it->second;
}

std::optional<std::int64_t> Args::integer(std::string_view name, std::int64_t min,
                                          std::int64_t max) const {
  auto text = value(name);
  if (!text) return std::nullopt;
  std::int64_t number = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), number);
  if (ec != std::errc() || end != text->data() + text->size() || number < min || number > max) {
    throw UsageError(
        fmt::format("--{} needs an integer from {} to {}, not '{}'", name, min, max, *text));
  }
  return number;
}

namespace {

const OptionSpec* find_option(const CommandSpec& spec, std::string_view name) {
  for (const OptionSpec& option : spec.options)
    if (option.name == name) return &option;
  return nullptr;
}

std::size_t required_positionals(const CommandSpec& spec) {
  std::size_t count = 0;
  for (const std::string& p : spec.positionals)
    if (!p.starts_with('[')) ++count;
  return count;
}

}  // namespace

Args parse_args(const CommandSpec& spec, std::span<const std::string> arguments) {
  Args args;
  bool options_done = false;
  for (std::size_t i = 0; i < arguments.size(); ++i) {
    const std::string& arg = arguments[i];
    if (options_done || arg == "-" || !arg.starts_with('-')) {
      args.positionals.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      args.help = true;
      continue;
    }
    if (!arg.starts_with("--")) {
      throw UsageError(fmt::format("{}: unknown option '{}' (see gamebot-store {} --help)",
                                   spec.name, arg, spec.name));
    }
    std::string name = arg.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name.resize(eq);
    }
    const OptionSpec* option = find_option(spec, name);
    if (option == nullptr) {
      throw UsageError(fmt::format("{}: unknown option '--{}' (see gamebot-store {} --help)",
                                   spec.name, name, spec.name));
    }
    if (option->value_name.empty()) {
      if (inline_value) throw UsageError(fmt::format("{}: --{} takes no value", spec.name, name));
      args.values[name] = "true";
    } else if (inline_value) {
      args.values[name] = *inline_value;
    } else if (i + 1 < arguments.size()) {
      args.values[name] = arguments[++i];
    } else {
      throw UsageError(
          fmt::format("{}: --{} needs a value ({})", spec.name, name, option->value_name));
    }
  }
  if (args.help) return args;
  if (args.positionals.size() < required_positionals(spec)) {
    throw UsageError(fmt::format("{}: missing {} (see gamebot-store {} --help)", spec.name,
                                 spec.positionals[args.positionals.size()], spec.name));
  }
  if (args.positionals.size() > spec.positionals.size()) {
    throw UsageError(fmt::format("{}: unexpected argument '{}' (see gamebot-store {} --help)",
                                 spec.name, args.positionals[spec.positionals.size()], spec.name));
  }
  return args;
}

std::string help_text(const CommandSpec& spec) {
  std::string text = fmt::format("Usage: gamebot-store {}", spec.name);
  if (!spec.options.empty()) text += " [options]";
  for (const std::string& p : spec.positionals) text += " " + p;
  text += "\n\n" + spec.summary + "\n";
  if (!spec.details.empty()) text += "\n" + spec.details;
  if (!spec.details.empty() && !spec.details.ends_with('\n')) text += "\n";
  text += "\nOptions:\n";
  for (const OptionSpec& option : spec.options) {
    std::string left = "--" + option.name;
    if (!option.value_name.empty()) left += " " + option.value_name;
    text += fmt::format("  {:<26} {}\n", left, option.help);
  }
  text += fmt::format("  {:<26} {}\n", "--help", "show this help and exit");
  text +=
      "\nStore URLs: sqlite:PATH, sqlite::memory:, memory:, postgresql://user@host:port/db"
      "[?schema=NAME]\n\n";
  text += exit_code_help();
  return text;
}

namespace {
std::vector<repo::DatabaseUrl>& parsed_urls() {
  static std::vector<repo::DatabaseUrl> list;
  return list;
}
}  // namespace

repo::DatabaseUrl parse_store_url(std::string_view text) {
  repo::DatabaseUrl url = repo::DatabaseUrl::parse(text);
  parsed_urls().push_back(url);
  return url;
}

std::string scrub(std::string text) {
  for (const repo::DatabaseUrl& url : parsed_urls()) text = url.scrub(std::move(text));
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  return text;
}

void print_error(FaultClass fault, std::string_view message) {
  std::fflush(stdout);
  std::string line =
      scrub(fmt::format("gamebot-store: {}: {}", gamebot::to_string(fault), message));
  std::fprintf(stderr, "%s\n", line.c_str());
}

void print_line(std::string_view line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
}

eventstore::ExpectedVersion parse_expected_version(std::string_view text) {
  if (text == "any") return eventstore::ExpectedVersion::any();
  if (text == "no_stream" || text == "no-stream") return eventstore::ExpectedVersion::no_stream();
  if (text == "stream_exists" || text == "stream-exists")
    return eventstore::ExpectedVersion::stream_exists();
  std::int64_t number = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || end != text.data() + text.size() || number < 0) {
    throw UsageError(fmt::format(
        "--expected-version must be any, no_stream, stream_exists or a version >= 0, not '{}'",
        text));
  }
  return eventstore::ExpectedVersion::exact(number);
}

void require_existing_sqlite_file(const repo::DatabaseUrl& url) {
  if (url.driver() != repo::Driver::sqlite || url.sqlite_in_memory() ||
      std::filesystem::exists(url.sqlite_path())) {
    return;
  }
  throw Error(FaultClass::schema,
              fmt::format("no store at {} (create it with: gamebot-store init {})",
                          url.sqlite_path(), url.redacted()));
}

eventstore::EventStore open_store(const repo::DatabaseUrl& url, bool migrate,
                                  bool allow_hard_delete) {
  if (!migrate) require_existing_sqlite_file(url);
  eventstore::OpenOptions options;
  options.store.allow_hard_delete = allow_hard_delete;
  options.sqlite.migrate = migrate;
  options.sqlite.watch_interval = std::chrono::milliseconds(20);
  options.postgres.migrate = migrate;
  return eventstore::open(url, std::move(options));
}

Progress::Progress(std::string what) : what_(std::move(what)), enabled_(::isatty(2) == 1) {}

Progress::~Progress() {
  finish();
}

void Progress::finish() {
  if (enabled_ && last_ms_ >= 0) {
    std::fprintf(stderr, "\r%s: %llu done\n", what_.c_str(),
                 static_cast<unsigned long long>(done_));
  }
  enabled_ = false;
}

void Progress::update(std::uint64_t done) {
  done_ = done;
  if (!enabled_) return;
  const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::steady_clock::now().time_since_epoch())
                                  .count();
  if (last_ms_ >= 0 && now_ms - last_ms_ < 200) return;
  last_ms_ = now_ms;
  std::fprintf(stderr, "\r%s: %llu", what_.c_str(), static_cast<unsigned long long>(done));
  std::fflush(stderr);
}

}  // namespace gamebot::tools
