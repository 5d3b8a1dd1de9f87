#pragma once

// Lazy reading: a range that fetches events one page at a time, so reading
// millions of events never holds more than a page.

#include <cstddef>
#include <functional>
#include <iterator>
#include <memory>
#include <vector>

#include "gamebot/eventstore/results.hpp"
#include "gamebot/eventstore/types.hpp"

namespace gamebot::eventstore {

// An input range over a stream or `$all`, in one direction. Each page is read
// when iteration reaches it (the first on begin()); a page continues after the
// last event_number seen, so events appended while iterating forward are
// included if they commit before their page is read. Single pass: begin() may
// be called once. Not thread-safe. Throws what the backend throws.
//   for (const RecordedEvent& event : store.stream_forward("game-1")) { ... }
class EventRange {
 public:
  // Reads up to `count` events starting at `start` in the range's direction.
  using PageReader = std::function<ReadResult(std::int64_t start, std::size_t count)>;

  EventRange(PageReader reader, std::int64_t start, Direction direction, std::size_t page_size);

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = RecordedEvent;
    using difference_type = std::ptrdiff_t;
    using pointer = const RecordedEvent*;
    using reference = const RecordedEvent&;

    iterator() = default;
    reference operator*() const { return range_->page_.events[index_]; }
    pointer operator->() const { return &range_->page_.events[index_]; }
    iterator& operator++();
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& a, std::default_sentinel_t) noexcept {
      return a.range_ == nullptr;
    }

   private:
    friend class EventRange;
    explicit iterator(EventRange* range) : range_(range) {}
    EventRange* range_ = nullptr;
    std::size_t index_ = 0;
  };

  iterator begin();
  std::default_sentinel_t end() const noexcept { return {}; }

  // Status of the first page (ok, or why the stream could not be read; an
  // unreadable stream iterates as empty). Valid after begin().
  ReadStatus status() const noexcept { return status_; }

 private:
  bool fetch();  // false when exhausted

  PageReader reader_;
  std::int64_t next_start_;
  Direction direction_;
  std::size_t page_size_;
  ReadResult page_;
  ReadStatus status_ = ReadStatus::ok;
  bool exhausted_ = false;
  bool started_ = false;
};

}  // namespace gamebot::eventstore
