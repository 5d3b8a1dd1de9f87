// DatabaseUrl::parse on untrusted text. The contract (database_url.hpp): a
// malformed URL throws gamebot::Error with FaultClass::configuration, nothing
// else; and the password never appears in redacted(), to_string(),
// describe_target() or a parse error's message.
//
// Byte 0 picks how the rest is used:
//   0: the URL text as given;
//   1: "postgres://fuzzer:<secret>@" + rest   (password in the authority)
//   2: "password=<secret> " + rest            (libpq key=value form)
//   3: rest + "?password=<secret>"            (password as a query parameter)
// where <secret> is a marker that occurs nowhere else, so finding it in any
// output is a leak. For every parse with a password, the leak check is also
// made after replacing the password with the marker (with_parameter). Where
// the marker lands in a component that is not secret (e.g. mode 3 after a
// "?host=..." whose value then runs on), showing it is right and not checked.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "gamebot/core/error.hpp"
#include "gamebot/repo/database_url.hpp"

namespace {

using gamebot::repo::DatabaseUrl;

constexpr std::string_view kSecret = "Qz7SecretPw0rdXk";

[[noreturn]] void fail(const char* what, const std::string& text) {
  std::fprintf(stderr, "database_url: %s: %s\n", what, text.c_str());
  std::abort();
}

void check_no_secret(const std::string& text, const char* where) {
  if (text.find(kSecret) != std::string::npos) fail(where, text);
}

// True if the marker is part of a component that is not secret (a host or a
// parameter value that merely contains the text "password=<marker>"): then
// showing it is right.
bool marker_outside_password(const DatabaseUrl& url) {
  auto has = [](const std::string& text) { return text.find(kSecret) != std::string::npos; };
  if (has(url.user()) || has(url.host()) || has(url.port()) || has(url.database()) ||
      has(url.sqlite_path()) || has(url.sqlite_shared_name())) {
    return true;
  }
  for (const auto& [key, value] : url.parameters()) {
    if (has(key) || has(value)) return true;
  }
  return false;
}

void check_outputs(const DatabaseUrl& url) {
  if (marker_outside_password(url)) return;
  check_no_secret(url.redacted(), "redacted() shows the password");
  check_no_secret(url.to_string(), "to_string() shows the password");
  check_no_secret(url.describe_target(), "describe_target() shows the password");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  // The marker must be what the mode puts in; the fuzzer's own copy of it
  // would be a false alarm.
  if (rest.find(kSecret) != std::string::npos) return 0;
  std::string text;
  switch (data[0] % 4) {
    case 0:
      text = rest;
      break;
    case 1:
      text = "postgres://fuzzer:" + std::string(kSecret) + "@" + rest;
      break;
    case 2:
      text = "password=" + std::string(kSecret) + " " + rest;
      break;
    default:
      text = rest + "?password=" + std::string(kSecret);
      break;
  }

  DatabaseUrl url = DatabaseUrl::sqlite_memory();
  try {
    url = DatabaseUrl::parse(text);
  } catch (const gamebot::Error& error) {
    if (error.fault() != gamebot::FaultClass::configuration) {
      fail("parse threw a non-configuration gamebot::Error", error.what());
    }
    // Modes 1 and 2 put the marker where only a password can be; in mode 3 the
    // text before it may make "?password=..." part of another value.
    if (data[0] % 4 == 1 || data[0] % 4 == 2) {
      check_no_secret(error.what(), "a parse error shows the password");
    }
    return 0;
  }
  check_outputs(url);

  if (url.driver() == gamebot::repo::Driver::postgres) {
    // Whatever the password was, with the marker in its place it must stay hidden.
    DatabaseUrl marked = url.with_parameter("password", std::string(kSecret));
    if (marked.password() != kSecret) fail("with_parameter lost the password", marked.redacted());
    check_outputs(marked);
  }
  return 0;
}
