#pragma once

// Umbrella header for gamebot::eventstore.
#include "gamebot/eventstore/backend.hpp"
#include "gamebot/eventstore/change_notifier.hpp"
#include "gamebot/eventstore/errors.hpp"
#include "gamebot/eventstore/event.hpp"
#include "gamebot/eventstore/event_range.hpp"
#include "gamebot/eventstore/event_store.hpp"
#include "gamebot/eventstore/memory_backend.hpp"
#include "gamebot/eventstore/postgres_backend.hpp"
#include "gamebot/eventstore/postgres_schema.hpp"
#include "gamebot/eventstore/results.hpp"
#include "gamebot/eventstore/sqlite_backend.hpp"
#include "gamebot/eventstore/subscription.hpp"
#include "gamebot/eventstore/typed_event_store.hpp"
#include "gamebot/eventstore/types.hpp"
#include "gamebot/eventstore/validation.hpp"
#include "gamebot/eventstore/verify.hpp"
