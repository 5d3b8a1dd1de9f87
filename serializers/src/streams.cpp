#include "gamebot/serializers/internal/streams.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace gamebot::serializers::internal {

void StringOutputBuffer::attach(std::string& target, std::size_t reserve) {
  target_ = &target;
  target.clear();
  target.resize(std::max<std::size_t>(reserve, 16));
  setp(target.data(), target.data() + target.size());
}

void StringOutputBuffer::finish() {
  if (target_ == nullptr) return;
  target_->resize(static_cast<std::size_t>(pptr() - pbase()));
  detach();
}

void StringOutputBuffer::detach() noexcept {
  target_ = nullptr;
  setp(nullptr, nullptr);
}

void StringOutputBuffer::grow(std::size_t at_least) {
  const auto written = static_cast<std::size_t>(pptr() - pbase());
  target_->resize(std::max(target_->size() * 2, at_least));
  setp(target_->data(), target_->data() + target_->size());
  // pbump takes an int; advance in steps so huge outputs stay correct.
  std::size_t left = written;
  while (left > 0) {
    const auto step =
        static_cast<int>(std::min<std::size_t>(left, std::numeric_limits<int>::max()));
    pbump(step);
    left -= static_cast<std::size_t>(step);
  }
}

StringOutputBuffer::int_type StringOutputBuffer::overflow(int_type ch) {
  if (target_ == nullptr) return traits_type::eof();
  if (traits_type::eq_int_type(ch, traits_type::eof())) return traits_type::not_eof(ch);
  grow(static_cast<std::size_t>(pptr() - pbase()) + 1);
  *pptr() = traits_type::to_char_type(ch);
  pbump(1);
  return ch;
}

std::streamsize StringOutputBuffer::xsputn(const char* data, std::streamsize count) {
  if (target_ == nullptr || count <= 0) return 0;
  const auto size = static_cast<std::size_t>(count);
  if (static_cast<std::size_t>(epptr() - pptr()) < size) {
    grow(static_cast<std::size_t>(pptr() - pbase()) + size);
  }
  std::memcpy(pptr(), data, size);
  std::size_t left = size;
  while (left > 0) {
    const auto step =
        static_cast<int>(std::min<std::size_t>(left, std::numeric_limits<int>::max()));
    pbump(step);
    left -= static_cast<std::size_t>(step);
  }
  return count;
}

void ViewInputBuffer::attach(std::string_view bytes) noexcept {
  // The get area is never written through; std::streambuf just has no const variant.
  char* begin = const_cast<char*>(bytes.data());
  setg(begin, begin, begin + bytes.size());
}

void ViewInputBuffer::detach() noexcept {
  setg(nullptr, nullptr, nullptr);
}

struct OutputStreamSlot {
  StringOutputBuffer buffer;
  std::ostream stream{&buffer};
  bool busy = false;
};

struct InputStreamSlot {
  ViewInputBuffer buffer;
  std::istream stream{&buffer};
  bool busy = false;
};

namespace {

OutputStreamSlot& thread_output_slot() {
  thread_local OutputStreamSlot slot;
  return slot;
}

InputStreamSlot& thread_input_slot() {
  thread_local InputStreamSlot slot;
  return slot;
}

}  // namespace

OutputStreamLease::OutputStreamLease(std::string& target, std::size_t reserve)
    : slot_(&thread_output_slot()) {
  if (slot_->busy) {
    private_slot_ = std::make_unique<OutputStreamSlot>();
    slot_ = private_slot_.get();
  }
  slot_->busy = true;
  slot_->stream.clear();
  slot_->buffer.attach(target, reserve);
}

OutputStreamLease::~OutputStreamLease() {
  slot_->buffer.detach();
  slot_->busy = false;
}

std::ostream& OutputStreamLease::stream() noexcept {
  return slot_->stream;
}

void OutputStreamLease::finish() {
  if (!slot_->stream.good()) throw std::runtime_error("writing to the output buffer failed");
  slot_->buffer.finish();
}

InputStreamLease::InputStreamLease(std::string_view bytes) : slot_(&thread_input_slot()) {
  if (slot_->busy) {
    private_slot_ = std::make_unique<InputStreamSlot>();
    slot_ = private_slot_.get();
  }
  slot_->busy = true;
  slot_->stream.clear();
  slot_->buffer.attach(bytes);
}

InputStreamLease::~InputStreamLease() {
  slot_->buffer.detach();
  slot_->busy = false;
}

std::istream& InputStreamLease::stream() noexcept {
  return slot_->stream;
}

}  // namespace gamebot::serializers::internal
