#pragma once

#include <string_view>

namespace gamebot::harness {

// Version of the harness (the project version), recorded in run markers and reports.
std::string_view harness_version() noexcept;

}  // namespace gamebot::harness
