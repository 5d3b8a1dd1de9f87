// gamebot-store: manage event stores and the harness's test databases from a
// shell. See tools/README.md and `gamebot-store --help`.

#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "cli.hpp"
#include "gamebot/repo/logging.hpp"

namespace {

using namespace gamebot::tools;

std::string overview(const std::vector<Command>& commands) {
  std::string text =
      "Usage: gamebot-store COMMAND [options] ARGS...\n\n"
      "Manage GameBot event stores (SQLite, PostgreSQL) and the test harness's databases.\n\n"
      "Commands:\n";
  for (const Command& c : commands)
    text += fmt::format("  {:<15} {}\n", c.spec.name, c.spec.summary);
  text += "\n`gamebot-store COMMAND --help` describes a command.\n\n";
  text += exit_code_help();
  return text;
}

int run(const std::vector<std::string>& argv) {
  std::vector<Command> commands;
  add_store_commands(commands);
  add_transfer_commands(commands);
  add_harness_commands(commands);

  if (argv.empty()) {
    std::fputs(overview(commands).c_str(), stderr);
    return kExitUsage;
  }
  if (argv[0] == "--help" || argv[0] == "-h" || argv[0] == "help") {
    std::fputs(overview(commands).c_str(), stdout);
    return kExitOk;
  }
  std::string name = argv[0];
  std::size_t consumed = 1;
  if (name == "test-dbs") {
    if (argv.size() < 2 || argv[1] == "--help" || argv[1] == "-h") {
      std::string text =
          "Usage: gamebot-store test-dbs list|reap [options] URL\n\n"
          "  list   the harness's test databases / run directories with owner and age\n"
          "  reap   remove those whose owner is gone\n\n"
          "`gamebot-store test-dbs list --help` describes each.\n\n";
      text += exit_code_help();
      std::fputs(text.c_str(), argv.size() < 2 ? stderr : stdout);
      return argv.size() < 2 ? kExitUsage : kExitOk;
    }
    name += " " + argv[1];
    consumed = 2;
  } else if (name == "subscriptions") {
    if (argv.size() < 2 || argv[1] == "--help" || argv[1] == "-h") {
      std::string text =
          "Usage: gamebot-store subscriptions list|delete [options] URL [NAME]\n\n"
          "  list    stored persistent subscriptions: checkpoint, lease, holder, lag\n"
          "  delete  delete one by NAME (refused while a subscriber holds it)\n\n"
          "`gamebot-store subscriptions list --help` describes each.\n\n";
      text += exit_code_help();
      std::fputs(text.c_str(), argv.size() < 2 ? stderr : stdout);
      return argv.size() < 2 ? kExitUsage : kExitOk;
    }
    name += " " + argv[1];
    consumed = 2;
  } else if (name == "cache") {
    if (argv.size() < 2 || argv[1] == "--help" || argv[1] == "-h") {
      std::string text =
          "Usage: gamebot-store cache list|clear [--dir DIR]\n\n"
          "  list   the harness's caches on this host: path, size, what each is\n"
          "  clear  remove them (only this user's own private directories)\n\n";
      text += exit_code_help();
      std::fputs(text.c_str(), argv.size() < 2 ? stderr : stdout);
      return argv.size() < 2 ? kExitUsage : kExitOk;
    }
    name += " " + argv[1];
    consumed = 2;
  } else if (name == "test-server") {
    if (argv.size() < 2 || argv[1] == "--help" || argv[1] == "-h") {
      std::string text =
          "Usage: gamebot-store test-server start|stop [--holder PID] DIR\n\n"
          "  start  start (or join) the shared private PostgreSQL server of a test run\n"
          "  stop   release it; it stops once no live process holds it\n\n";
      text += exit_code_help();
      std::fputs(text.c_str(), argv.size() < 2 ? stderr : stdout);
      return argv.size() < 2 ? kExitUsage : kExitOk;
    }
    name += " " + argv[1];
    consumed = 2;
  }
  const Command* command = nullptr;
  for (const Command& c : commands)
    if (c.spec.name == name) command = &c;
  if (command == nullptr) {
    throw UsageError(fmt::format("unknown command '{}' (see gamebot-store --help)", name));
  }
  const std::vector<std::string> rest(argv.begin() + static_cast<std::ptrdiff_t>(consumed),
                                      argv.end());
  Args args = parse_args(command->spec, rest);
  if (args.help) {
    std::fputs(help_text(command->spec).c_str(), stdout);
    return kExitOk;
  }
  return command->run(args);
}

}  // namespace

int main(int argc, char** argv) {
  // Library logs go to stderr (stdout carries the JSON lines), and only when
  // GAMEBOT_STORE_LOG_LEVEL asks: the one error line already says what failed.
  auto logger = spdlog::stderr_logger_mt("gamebot-store");
  const char* level = std::getenv("GAMEBOT_STORE_LOG_LEVEL");
  logger->set_level(level != nullptr ? spdlog::level::from_str(level) : spdlog::level::off);
  gamebot::repo::set_logger(logger);

  const std::vector<std::string> arguments(argv + 1, argv + argc);
  int code = kExitFailure;
  try {
    code = run(arguments);
  } catch (const UsageError& e) {
    print_error(e.fault(), e.message());
    code = kExitUsage;
  } catch (const Failure& e) {
    print_error(e.fault(), e.message());
    code = kExitFailure;
  } catch (const gamebot::Error& e) {
    print_error(e.fault(), e.message());
    code = exit_code_for(e.fault());
  } catch (const std::exception& e) {
    print_error(gamebot::FaultClass::internal, e.what());
    code = kExitFailure;
  }
  if (std::fflush(stdout) != 0 && code == kExitOk) code = kExitFailure;
  return code;
}
