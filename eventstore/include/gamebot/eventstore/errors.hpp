#pragma once

// Exceptions of the event store. Expected outcomes are values (results.hpp);
// these are for misuse and faults.

#include <string>
#include <string_view>

#include "gamebot/core/error.hpp"

namespace gamebot::eventstore {

// A caller passed something the store never accepts: an empty, over-long,
// NUL-containing or non-UTF-8 stream id or event type, a negative expected
// version, an unknown URL scheme, a hard delete that the options do not allow.
// FaultClass::configuration: the call is wrong, retrying cannot help.
class InvalidArgument : public Error {
 public:
  explicit InvalidArgument(std::string message)
      : Error(FaultClass::configuration, std::move(message)) {}
};

// A persistent subscription already has `concurrency_limit` subscribers in this
// store. FaultClass::concurrency.
class SubscriptionLimitReached : public Error {
 public:
  explicit SubscriptionLimitReached(std::string message)
      : Error(FaultClass::concurrency, std::move(message)) {}
};

// This store's subscriber lost the ownership of a persistent subscription while
// it lived (its lease dropped and a newer owner took it, fencing token in
// backend.hpp). Its next() throws this from then on and its acks change
// nothing; subscribe again to go on standby. FaultClass::concurrency.
class SubscriptionFenced : public Error {
 public:
  explicit SubscriptionFenced(std::string message)
      : Error(FaultClass::concurrency, std::move(message)) {}
};

// EventStore::delete_subscription refused: a lease on the subscription is held
// (a live subscriber here or in another process owns it). Nothing was
// deleted; stop that subscriber and try again. FaultClass::concurrency.
class SubscriptionHeld : public Error {
 public:
  explicit SubscriptionHeld(std::string message)
      : Error(FaultClass::concurrency, std::move(message)) {}
};

}  // namespace gamebot::eventstore
