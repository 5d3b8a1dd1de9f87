#pragma once

// The one test body of the per-process cost bench: both child processes (the plain libpq one and
// the harness one) run exactly these statements, so the difference between them is the harness.

namespace gamebot::bench::per_process {

// Three round trips of small reads, none of them DDL (the harness's sandbox refuses it).
inline constexpr const char* kTestBody[] = {
    "SELECT set_config('gamebot.bench', 'per-process', true)",
    "SELECT g, 'event ' || g FROM generate_series(1, 10) AS g",
    "SELECT current_setting('gamebot.bench')",
};

}  // namespace gamebot::bench::per_process
