#include "gamebot/harness/version.hpp"

#ifndef GAMEBOT_HARNESS_VERSION
#error "GAMEBOT_HARNESS_VERSION must be defined by the build (harness/CMakeLists.txt)"
#endif

namespace gamebot::harness {

std::string_view harness_version() noexcept {
  return GAMEBOT_HARNESS_VERSION;
}

}  // namespace gamebot::harness
