#include "gamebot/harness/options.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "gamebot/core/error.hpp"

using namespace gamebot;
using namespace gamebot::harness;

namespace {

ParsedOptions parse(std::vector<std::string> args,
                    std::vector<std::pair<std::string, std::string>> env = {}) {
  args.insert(args.begin(), "my_tests");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  return parse_options(static_cast<int>(argv.size()), argv.data(), fixed_environment(env));
}

// The configuration error thrown by parsing, or a failure if none is thrown.
Error parse_error(std::vector<std::string> args,
                  std::vector<std::pair<std::string, std::string>> env = {}) {
  try {
    parse(std::move(args), std::move(env));
  } catch (const Error& e) {
    return e;
  }
  FAIL("expected a configuration error");
  return Error(FaultClass::internal, "unreachable");
}

}  // namespace

TEST_CASE("without flags or environment the defaults apply", "[harness][options]") {
  ParsedOptions parsed = parse({});
  CHECK(parsed.options.backend == Backend::sqlite);
  CHECK_FALSE(parsed.options.database_url.has_value());
  CHECK(parsed.options.isolation == Isolation::transaction);
  CHECK_FALSE(parsed.options.keep);
  CHECK(parsed.options.report_path.empty());
  CHECK(parsed.options.connect_deadline == std::chrono::seconds(30));
  CHECK(parsed.options.log_level == LogLevel::info);
  CHECK(parsed.remaining == std::vector<std::string>{"my_tests"});
  CHECK(parsed.notes.empty());
}

TEST_CASE("every flag is parsed in both the spaced and the = form", "[harness][options]") {
  ParsedOptions spaced =
      parse({"--backend", "postgres", "--database-url", "postgres://u@h:5432/db", "--isolation",
             "database", "--keep", "--report", "out.json", "--connect-deadline", "2.5",
             "--log-level", "debug", "--max-connections", "7"});
  ParsedOptions equals =
      parse({"--backend=postgres", "--database-url=postgres://u@h:5432/db", "--isolation=database",
             "--keep=yes", "--report=out.json", "--connect-deadline=2.5", "--log-level=debug",
             "--max-connections=7"});
  for (const ParsedOptions* parsed : {&spaced, &equals}) {
    CHECK(parsed->options.backend == Backend::postgres);
    REQUIRE(parsed->options.database_url.has_value());
    CHECK(parsed->options.database_url->redacted() == "postgresql://u@h:5432/db");
    CHECK(parsed->options.isolation == Isolation::database);
    CHECK(parsed->options.keep);
    CHECK(parsed->options.report_path == "out.json");
    CHECK(parsed->options.connect_deadline == std::chrono::milliseconds(2500));
    CHECK(parsed->options.log_level == LogLevel::debug);
    CHECK(parsed->options.max_connections == 7);
    CHECK(parsed->remaining == std::vector<std::string>{"my_tests"});
  }
}

TEST_CASE("environment variables set every option", "[harness][options]") {
  ParsedOptions parsed = parse({}, {{"GAMEBOT_TEST_BACKEND", "memory"},
                                    {"GAMEBOT_TEST_ISOLATION", "none"},
                                    {"GAMEBOT_TEST_KEEP", "1"},
                                    {"GAMEBOT_TEST_REPORT", "/tmp/r.json"},
                                    {"GAMEBOT_TEST_CONNECT_DEADLINE", "7"},
                                    {"GAMEBOT_TEST_LOG_LEVEL", "warn"},
                                    {"GAMEBOT_TEST_MAX_CONNECTIONS", "30"}});
  CHECK(parsed.options.backend == Backend::memory);
  CHECK(parsed.options.isolation == Isolation::none);
  CHECK(parsed.options.keep);
  CHECK(parsed.options.report_path == "/tmp/r.json");
  CHECK(parsed.options.connect_deadline == std::chrono::seconds(7));
  CHECK(parsed.options.log_level == LogLevel::warn);
  CHECK(parsed.options.max_connections == 30);
}

TEST_CASE("flags win over environment variables option by option", "[harness][options]") {
  ParsedOptions parsed =
      parse({"--backend", "sqlite", "--isolation", "database", "--connect-deadline", "3",
             "--log-level", "error", "--report", "flag.json"},
            {{"GAMEBOT_TEST_BACKEND", "memory"},
             {"GAMEBOT_TEST_ISOLATION", "none"},
             {"GAMEBOT_TEST_KEEP", "true"},
             {"GAMEBOT_TEST_REPORT", "env.json"},
             {"GAMEBOT_TEST_CONNECT_DEADLINE", "9"},
             {"GAMEBOT_TEST_LOG_LEVEL", "trace"}});
  CHECK(parsed.options.backend == Backend::sqlite);
  CHECK(parsed.options.isolation == Isolation::database);
  CHECK(parsed.options.keep);  // no --keep flag: the environment decides
  CHECK(parsed.options.report_path == "flag.json");
  CHECK(parsed.options.connect_deadline == std::chrono::seconds(3));
  CHECK(parsed.options.log_level == LogLevel::error);

  ParsedOptions keep_off = parse({"--keep=false"}, {{"GAMEBOT_TEST_KEEP", "1"}});
  CHECK_FALSE(keep_off.options.keep);
}

TEST_CASE("the backend is inferred from the URL scheme when only a URL is given",
          "[harness][options]") {
  CHECK(parse({"--database-url", "memory:"}).options.backend == Backend::memory);
  CHECK(parse({"--database-url", "sqlite:/tmp/x.db"}).options.backend == Backend::sqlite);
  CHECK(parse({"--database-url", "sqlite::memory:"}).options.backend == Backend::sqlite);
  CHECK(parse({"--database-url", "postgres://u@h/db"}).options.backend == Backend::postgres);
  CHECK(parse({"--database-url", "postgresql://u@h/db"}).options.backend == Backend::postgres);
  CHECK(parse({}, {{"GAMEBOT_TEST_DATABASE_URL", "postgresql:///db?host=/tmp"}}).options.backend ==
        Backend::postgres);
}

TEST_CASE("a URL contradicting --backend from the same source is a configuration error",
          "[harness][options]") {
  Error flags = parse_error({"--backend", "sqlite", "--database-url", "postgres://u:secret@h/db"});
  CHECK(flags.fault() == FaultClass::configuration);
  CHECK_THAT(flags.message(), Catch::Contains("--database-url") && Catch::Contains("--backend"));
  CHECK_THAT(flags.message(), !Catch::Contains("secret"));

  Error env = parse_error(
      {}, {{"GAMEBOT_TEST_BACKEND", "memory"}, {"GAMEBOT_TEST_DATABASE_URL", "sqlite:/tmp/a.db"}});
  CHECK(env.fault() == FaultClass::configuration);
  CHECK_THAT(env.message(), Catch::Contains("GAMEBOT_TEST_BACKEND") &&
                                Catch::Contains("GAMEBOT_TEST_DATABASE_URL"));
}

TEST_CASE("a flag overrides a contradicting environment setting and says so",
          "[harness][options]") {
  ParsedOptions backend_flag = parse(
      {"--backend", "memory"}, {{"GAMEBOT_TEST_DATABASE_URL", "postgres://ci:hunter2@db/ci"}});
  CHECK(backend_flag.options.backend == Backend::memory);
  CHECK_FALSE(backend_flag.options.database_url.has_value());
  REQUIRE(backend_flag.notes.size() == 1);
  CHECK_THAT(backend_flag.notes[0], Catch::Contains("GAMEBOT_TEST_DATABASE_URL"));
  CHECK_THAT(backend_flag.notes[0], !Catch::Contains("hunter2"));

  ParsedOptions url_flag =
      parse({"--database-url", "sqlite::memory:"}, {{"GAMEBOT_TEST_BACKEND", "postgres"}});
  CHECK(url_flag.options.backend == Backend::sqlite);
  CHECK(url_flag.options.database_url == repo::DatabaseUrl::parse("sqlite::memory:"));
  CHECK(url_flag.notes.size() == 1);
}

TEST_CASE("invalid values are configuration errors naming the option", "[harness][options]") {
  struct Case {
    std::vector<std::string> args;
    std::vector<std::pair<std::string, std::string>> env;
    std::string names;
  };
  const std::vector<Case> cases = {
      {{"--backend", "oracle"}, {}, "--backend"},
      {{}, {{"GAMEBOT_TEST_BACKEND", "mysql"}}, "GAMEBOT_TEST_BACKEND"},
      {{"--isolation", "snapshot"}, {}, "--isolation"},
      {{"--database-url", "mysql://h/db"}, {}, "--database-url"},
      {{"--database-url", "sqlite:"}, {}, "--database-url"},
      {{"--connect-deadline", "soon"}, {}, "--connect-deadline"},
      {{"--connect-deadline", "-1"}, {}, "--connect-deadline"},
      {{"--connect-deadline", "0"}, {}, "--connect-deadline"},
      {{"--connect-deadline", "nan"}, {}, "--connect-deadline"},
      {{}, {{"GAMEBOT_TEST_CONNECT_DEADLINE", "5s"}}, "GAMEBOT_TEST_CONNECT_DEADLINE"},
      {{"--log-level", "loud"}, {}, "--log-level"},
      {{"--max-connections", "0"}, {}, "--max-connections"},
      {{"--max-connections", "-3"}, {}, "--max-connections"},
      {{"--max-connections", "many"}, {}, "--max-connections"},
      {{}, {{"GAMEBOT_TEST_MAX_CONNECTIONS", "12.5"}}, "GAMEBOT_TEST_MAX_CONNECTIONS"},
      {{}, {{"GAMEBOT_TEST_KEEP", "maybe"}}, "GAMEBOT_TEST_KEEP"},
      {{"--keep=perhaps"}, {}, "--keep"},
      {{"--report"}, {}, "--report"},
      {{"--backend", "--keep"}, {}, "--backend"},
      {{"--isolation", "schema"}, {}, "--isolation"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.args, c.names);
    Error error = parse_error(c.args, c.env);
    CHECK(error.fault() == FaultClass::configuration);
    CHECK_THAT(error.message(), Catch::Contains(c.names));
  }
}

TEST_CASE("schema isolation is accepted with the postgres backend", "[harness][options]") {
  ParsedOptions parsed = parse({"--backend", "postgres", "--isolation", "schema"});
  CHECK(parsed.options.isolation == Isolation::schema);
}

TEST_CASE("arguments the harness does not own pass through in order", "[harness][options]") {
  ParsedOptions parsed = parse({"-s", "--backend", "memory", "--reporter", "junit", "[tag]",
                                "--keep", "-o", "x.xml", "--", "--backend", "sqlite"});
  CHECK(parsed.options.backend == Backend::memory);
  CHECK(parsed.options.keep);
  CHECK(parsed.remaining == std::vector<std::string>{"my_tests", "-s", "--reporter", "junit",
                                                     "[tag]", "-o", "x.xml", "--", "--backend",
                                                     "sqlite"});
  std::vector<const char*> argv = parsed.remaining_argv();
  REQUIRE(argv.size() == parsed.remaining.size());
  CHECK(std::string(argv[2]) == "--reporter");
}

TEST_CASE("a repeated flag: the last one wins", "[harness][options]") {
  CHECK(parse({"--backend", "memory", "--backend", "postgres"}).options.backend ==
        Backend::postgres);
}

TEST_CASE("resolve_options serves framework parsers with the same rules", "[harness][options]") {
  OptionInputs inputs;
  inputs.database_url = "memory:";
  inputs.keep = "true";
  ResolvedOptions resolved =
      resolve_options(inputs, fixed_environment({{"GAMEBOT_TEST_ISOLATION", "database"}}));
  CHECK(resolved.options.backend == Backend::memory);
  CHECK(resolved.options.keep);
  CHECK(resolved.options.isolation == Isolation::database);
}

TEST_CASE("describe() shows the URL without its password", "[harness][options]") {
  HarnessOptions options;
  options.database_url = repo::DatabaseUrl::parse("postgres://bob:pw123@h/db");
  CHECK_THAT(describe(options), !Catch::Contains("pw123") && Catch::Contains("bob:***@h"));
}

TEST_CASE("a bad database URL is a configuration error naming its source and no secret",
          "[harness][options][url]") {
  const std::string secret = "Kx9SecretValue";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--database-url", "postgres://u@h/db?sslpassword=" + secret + "&bogus=1"},
       "--database-url"},
      {{"--database-url=postgresql://alice:" + secret + "/db"}, "--database-url"},
      {{"--database-url", "postgresql://u@h/db?password=ab&" + secret}, "--database-url"},
  };
  for (const auto& [args, source] : cases) {
    CAPTURE(args);
    Error error = parse_error(args);
    CHECK(error.fault() == FaultClass::configuration);
    CHECK_THAT(error.message(), Catch::Contains(source) && !Catch::Contains(secret));
  }
  Error env = parse_error({}, {{"GAMEBOT_TEST_DATABASE_URL", "host=h sslpassword=ab " + secret}});
  CHECK_THAT(env.message(),
             Catch::Contains("GAMEBOT_TEST_DATABASE_URL") && !Catch::Contains(secret));
}

TEST_CASE("describe() and notes redact every libpq secret of the URL", "[harness][options][url]") {
  const std::string secret = "Kx9SecretValue";
  const std::string url = "postgres://u:" + secret + "@h/db?sslpassword=" + secret;
  ParsedOptions parsed = parse({"--database-url", url});
  CHECK_THAT(describe(parsed.options), !Catch::Contains(secret));
  ParsedOptions noted = parse({"--backend", "memory"}, {{"GAMEBOT_TEST_DATABASE_URL", url}});
  REQUIRE(noted.notes.size() == 1);
  CHECK_THAT(noted.notes[0], !Catch::Contains(secret));
}

TEST_CASE("the harness holds the parsed URL and schemes are case-insensitive",
          "[harness][options][url]") {
  const std::vector<std::pair<std::string, Backend>> cases = {
      {"POSTGRES://u@h/db", Backend::postgres},
      {"PostgreSQL://u@h/db", Backend::postgres},
      {"SQLite:x.db", Backend::sqlite},
      {"SQLITE::memory:", Backend::sqlite},
      {"MEMORY:", Backend::memory},
  };
  for (const auto& [text, backend] : cases) {
    CAPTURE(text);
    ParsedOptions parsed = parse({"--database-url", text});
    CHECK(parsed.options.backend == backend);
    REQUIRE(parsed.options.database_url.has_value());
    CHECK(parsed.options.database_url == repo::DatabaseUrl::parse(text));
  }
}

TEST_CASE("the flag table drives the parser and the help alike", "[harness][options]") {
  const std::string help = options_help();
  for (const HarnessFlag& flag : harness_flags()) {
    INFO(flag.name);
    CHECK_THAT(help, Catch::Contains(std::string(flag.name)));
    CHECK_THAT(help, Catch::Contains(std::string(flag.env)));
    const std::string given =
        flag.value.empty() ? std::string(flag.name) : std::string(flag.name) + "=given";
    std::vector<const char*> argv{"my_tests", given.c_str()};
    const ExtractedOptions extracted = extract_options(2, argv.data());
    CHECK(extracted.inputs.*flag.input == (flag.value.empty() ? "true" : "given"));
    CHECK(extracted.remaining == std::vector<std::string>{"my_tests"});
  }
}

TEST_CASE("an unknown flag gets the nearest known one as a hint", "[harness][options]") {
  CHECK(nearest_flag("--bakend") == "--backend");
  CHECK(nearest_flag("--isolaton=schema") == "--isolation");
  CHECK(nearest_flag("--conn") == "--connect-deadline");
  const std::string_view framework[] = {"--gtest_filter", "--gtest_repeat"};
  CHECK(nearest_flag("--gtest_filtr", framework) == "--gtest_filter");
  CHECK(nearest_flag("--frobnicate") == std::nullopt);
}
