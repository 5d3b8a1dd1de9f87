#pragma once

#include <string>
#include <string_view>

#include "gamebot/harness/options.hpp"

namespace gamebot::harness {

// The backend a database URL names, from its scheme: `memory:` -> memory,
// `sqlite:PATH` / `sqlite::memory:` -> sqlite, `postgres://` / `postgresql://`
// -> postgres (schemes are case-insensitive). Throws gamebot::Error(configuration)
// naming `option_name` for any other scheme or an empty sqlite path; the URL in
// the message is redacted.
Backend backend_of_url(std::string_view url, std::string_view option_name = "--database-url");

// The URL with any password replaced by "***": the `user:password@` part of a
// `scheme://` URL and `password=` query or keyword parameters. Safe to log.
std::string redact_url(std::string_view url);

// Percent-encodes everything but unreserved characters and '/', for a value in
// a URL query (a socket directory in `?host=`).
std::string percent_encode(std::string_view text);

}  // namespace gamebot::harness
