#pragma once

// Umbrella header for gamebot::core.
#include "gamebot/core/closest_names.hpp"
#include "gamebot/core/error.hpp"
#include "gamebot/core/utf8.hpp"
#include "gamebot/core/uuid.hpp"
