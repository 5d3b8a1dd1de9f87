#include <cstring>
#include <memory>
#include <vector>

#include "gamebot/eventstore/backend.hpp"

namespace gamebot::eventstore {

struct EventStorageBuilder::Chunks {
  static constexpr std::size_t kChunkBytes = std::size_t{16} * 1024;
  std::vector<std::unique_ptr<char[]>> chunks;
  std::size_t used = 0;
  std::size_t capacity = 0;
};

EventStorageBuilder::EventStorageBuilder() {
  auto chunks = std::make_shared<Chunks>();
  chunks_ = chunks.get();
  handle_ = std::move(chunks);
}

std::string_view EventStorageBuilder::keep(std::string_view bytes) {
  if (bytes.empty()) return {};
  Chunks& c = *chunks_;
  if (c.capacity - c.used < bytes.size()) {
    // Chunks never move, so earlier views stay valid.
    std::size_t size = bytes.size() > Chunks::kChunkBytes ? bytes.size() : Chunks::kChunkBytes;
    c.chunks.push_back(std::make_unique_for_overwrite<char[]>(size));
    c.used = 0;
    c.capacity = size;
  }
  char* destination = c.chunks.back().get() + c.used;
  std::memcpy(destination, bytes.data(), bytes.size());
  c.used += bytes.size();
  return {destination, bytes.size()};
}

}  // namespace gamebot::eventstore
