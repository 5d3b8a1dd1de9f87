// DatabaseUrl::parse on untrusted text. The contract (database_url.hpp): a
// malformed URL throws gamebot::Error with FaultClass::configuration, nothing
// else; and no secret (the password, any kSecretKeywords value) ever appears
// in redacted(), to_string(), describe_target() or a parse error's message.
//
// Byte 0 picks how the rest is used (K: one of kSecretKeywords, by byte 0 / 4):
//   0: the URL text as given;
//   1: "postgres://fuzzer:<secret>@" + rest   (password in the authority)
//   2: "K=<secret> " + rest                   (libpq key=value form)
//   3: rest + "?K=<secret>"                   (a secret as a query parameter)
// where <secret> is a marker that occurs nowhere else, so finding it in any
// output is a leak. For every postgres parse, the leak check is also made
// after setting each secret keyword to the marker (with_parameter). Where
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
using gamebot::repo::is_secret_keyword;
using gamebot::repo::kSecretKeywords;
using gamebot::repo::kStoreParameters;

constexpr std::string_view kSecret = "Qz7SecretPw0rdXk";

[[noreturn]] void fail(const char* what, const std::string& text) {
  std::fprintf(stderr, "database_url: %s: %s\n", what, text.c_str());
  std::abort();
}

void check_no_secret(const std::string& text, const char* where) {
  if (text.find(kSecret) != std::string::npos) fail(where, text);
}

// True if the marker is part of a component that is not secret (a host or a
// non-secret parameter value that merely contains the text "password=<marker>"):
// then showing it is right.
bool marker_outside_password(const DatabaseUrl& url) {
  auto has = [](const std::string& text) { return text.find(kSecret) != std::string::npos; };
  if (has(url.user()) || has(url.host()) || has(url.port()) || has(url.database()) ||
      has(url.sqlite_path()) || has(url.sqlite_shared_name())) {
    return true;
  }
  for (const auto& [key, value] : url.parameters()) {
    if (has(key) || (!is_secret_keyword(key) && has(value))) return true;
  }
  for (std::string_view key : kStoreParameters) {
    if (has(url.store_parameter(key).value_or(""))) return true;
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
  const std::string key(kSecretKeywords[(data[0] / 4) % kSecretKeywords.size()]);
  std::string text;
  switch (data[0] % 4) {
    case 0:
      text = rest;
      break;
    case 1:
      text = "postgres://fuzzer:" + std::string(kSecret) + "@" + rest;
      break;
    case 2:
      text = key + "=" + std::string(kSecret) + " " + rest;
      break;
    default:
      text = rest + "?" + key + "=" + std::string(kSecret);
      break;
  }

  DatabaseUrl url = DatabaseUrl::sqlite_memory();
  try {
    url = DatabaseUrl::parse(text);
  } catch (const gamebot::Error& error) {
    if (error.fault() != gamebot::FaultClass::configuration) {
      fail("parse threw a non-configuration gamebot::Error", error.what());
    }
    // Modes 1 and 2 put the marker where only a secret can be; in mode 3 the
    // text before it may make "?K=..." part of another value.
    if (data[0] % 4 == 1 || data[0] % 4 == 2) {
      check_no_secret(error.what(), "a parse error shows the password");
    }
    return 0;
  }
  check_outputs(url);

  if (url.driver() == gamebot::repo::Driver::postgres) {
    // Whatever each secret was, with the marker in its place it must stay hidden.
    for (std::string_view secret_key : kSecretKeywords) {
      DatabaseUrl marked = url;
      try {
        marked = url.with_parameter(secret_key, std::string(kSecret));
      } catch (const gamebot::Error&) {
        continue;  // a keyword this libpq does not know
      }
      const std::string set =
          secret_key == "password" ? marked.password() : marked.parameter(secret_key).value_or("");
      if (set != kSecret) fail("with_parameter lost a secret", marked.redacted());
      check_outputs(marked);
    }
  }
  return 0;
}
