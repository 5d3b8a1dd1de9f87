#include "gamebot/eventstore/event_range.hpp"

#include "gamebot/eventstore/errors.hpp"

namespace gamebot::eventstore {

EventRange::EventRange(PageReader reader, std::int64_t start, Direction direction,
                       std::size_t page_size)
    : reader_(std::move(reader)),
      next_start_(start),
      direction_(direction),
      page_size_(page_size == 0 ? 1 : page_size) {}

EventRange::iterator EventRange::begin() {
  if (started_) throw InvalidArgument("EventRange::begin() called twice on a single-pass range");
  started_ = true;
  if (!fetch()) return iterator();
  status_ = page_.status;
  return iterator(this);
}

bool EventRange::fetch() {
  if (exhausted_) return false;
  if (direction_ == Direction::backward && next_start_ == 0) {
    exhausted_ = true;
    return false;
  }
  page_ = reader_(next_start_, page_size_);
  if (!page_.ok()) status_ = page_.status;
  if (page_.events.size() < page_size_) exhausted_ = true;
  if (page_.events.empty()) return false;
  const StreamVersion last = page_.events.back().event_number;
  next_start_ = direction_ == Direction::forward ? last + 1 : last - 1;
  return true;
}

EventRange::iterator& EventRange::iterator::operator++() {
  if (++index_ < range_->page_.events.size()) return *this;
  index_ = 0;
  if (!range_->fetch()) range_ = nullptr;
  return *this;
}

}  // namespace gamebot::eventstore
