#include "partition_table.hpp"

#include <algorithm>
#include <functional>

namespace gamebot::eventstore::detail {

namespace {

// splitmix64's finalizer: spreads every input bit over the whole word, so
// neighbouring member ids and similar keys score independently.
std::uint64_t mix(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace

std::uint64_t PartitionTable::hash_key(std::string_view key) noexcept {
  return mix(std::hash<std::string_view>{}(key));
}

void PartitionTable::add_member(MemberId member) {
  members_.push_back(member);
}

void PartitionTable::remove_member(MemberId member) noexcept {
  std::erase(members_, member);
}

PartitionTable::MemberId PartitionTable::owner(std::uint64_t key_hash) const noexcept {
  MemberId best = members_.front();
  std::uint64_t best_score = 0;
  for (MemberId member : members_) {
    const std::uint64_t score = mix(key_hash ^ mix(member));
    if (member == members_.front() || score > best_score) {
      best = member;
      best_score = score;
    }
  }
  return best;
}

bool PartitionTable::may_deliver(MemberId member, const std::string& key,
                                 std::uint64_t key_hash) const {
  if (owner(key_hash) != member) return false;
  auto it = pinned_.find(key);
  return it == pinned_.end() || it->second.holder == member;
}

void PartitionTable::delivered(MemberId member, const std::string& key) {
  auto [it, added] = pinned_.try_emplace(key, Pin{member, 0});
  ++it->second.in_flight;
}

bool PartitionTable::released(const std::string& key, std::uint64_t key_hash) noexcept {
  auto it = pinned_.find(key);
  if (it == pinned_.end() || --it->second.in_flight > 0) return false;
  const MemberId holder = it->second.holder;
  pinned_.erase(it);
  return !members_.empty() && owner(key_hash) != holder;
}

}  // namespace gamebot::eventstore::detail
