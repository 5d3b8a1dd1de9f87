#pragma once

// Umbrella header for gamebot::core.
#include "gamebot/core/error.hpp"
#include "gamebot/core/utf8.hpp"
#include "gamebot/core/uuid.hpp"
