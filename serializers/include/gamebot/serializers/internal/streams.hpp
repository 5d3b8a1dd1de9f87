#pragma once

// Reusable, copy-free streams for the codecs. cereal's archives only talk to
// std::ostream/std::istream; building a std::ostringstream per value costs a
// locale copy and an extra copy of the bytes at str(). These leases hand out a
// per-thread stream bound directly to the caller's std::string (output) or
// std::string_view (input). A nested lease on the same thread (a serialize
// function that itself encodes through the registry) gets a private stream.

#include <cstddef>
#include <istream>
#include <memory>
#include <ostream>
#include <streambuf>
#include <string>
#include <string_view>

namespace gamebot::serializers::internal {

// Writes into a std::string's own storage; finish() trims it to what was written.
class StringOutputBuffer final : public std::streambuf {
 public:
  void attach(std::string& target, std::size_t reserve);
  void finish();
  void detach() noexcept;

 protected:
  int_type overflow(int_type ch) override;
  std::streamsize xsputn(const char* data, std::streamsize count) override;

 private:
  void grow(std::size_t at_least);

  std::string* target_ = nullptr;
};

// Reads from borrowed memory without copying it.
class ViewInputBuffer final : public std::streambuf {
 public:
  void attach(std::string_view bytes) noexcept;
  void detach() noexcept;
};

struct OutputStreamSlot;
struct InputStreamSlot;

class OutputStreamLease {
 public:
  // Binds a stream to `target` (cleared; `reserve` bytes pre-sized). Not thread-safe
  // to share; each thread gets its own stream.
  OutputStreamLease(std::string& target, std::size_t reserve);
  ~OutputStreamLease();
  OutputStreamLease(const OutputStreamLease&) = delete;
  OutputStreamLease& operator=(const OutputStreamLease&) = delete;

  std::ostream& stream() noexcept;
  // Trims the target to the bytes written. Throws std::runtime_error if the
  // stream went bad (a write failed inside std::ostream, which swallows it).
  void finish();

 private:
  OutputStreamSlot* slot_;
  std::unique_ptr<OutputStreamSlot> private_slot_;
};

class InputStreamLease {
 public:
  // Binds a stream to `bytes`, which must outlive the lease.
  explicit InputStreamLease(std::string_view bytes);
  ~InputStreamLease();
  InputStreamLease(const InputStreamLease&) = delete;
  InputStreamLease& operator=(const InputStreamLease&) = delete;

  std::istream& stream() noexcept;

 private:
  InputStreamSlot* slot_;
  std::unique_ptr<InputStreamSlot> private_slot_;
};

}  // namespace gamebot::serializers::internal
