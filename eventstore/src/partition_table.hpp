#pragma once

// Who may take the next event of a partition (PersistentSubscriptionOptions::
// partition_by): the one home of the rebalancing rule.
//
// * The owner of a partition is derived, not stored: rendezvous hashing of the
//   partition's hash over the current members (the member with the highest
//   mixed score wins). A join or leave moves only the partitions that the
//   newcomer wins or the leaver held, and every member owns about 1/n of them,
//   old keys included.
// * A partition with delivered, un-acked events is pinned to the member that
//   holds them. Its events go to nobody else, and while its derived owner is
//   another member (it is moving) not to the holder either: it drains, and
//   once its last event is acked (or its holder leaves and the events are
//   queued again) the owner takes it. So no event of a partition reaches a
//   member while an earlier one is un-acked at another.
// * Only pinned partitions have an entry, so memory is bounded by the events
//   in flight, not by the distinct keys ever seen.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace gamebot::eventstore::detail {

class PartitionTable {
 public:
  using MemberId = std::uint64_t;

  // The hash a partition key is placed by (computed once per event).
  static std::uint64_t hash_key(std::string_view key) noexcept;

  void add_member(MemberId member);
  void remove_member(MemberId member) noexcept;

  // The member that owns an idle partition of this hash; requires a member.
  MemberId owner(std::uint64_t key_hash) const noexcept;
  // True if `member` may be given the next queued event of the partition.
  bool may_deliver(MemberId member, const std::string& key, std::uint64_t key_hash) const;

  // An event of the partition was delivered to `member` (who may_deliver it).
  void delivered(MemberId member, const std::string& key);
  // An event of the partition delivered earlier is acked, or was queued again
  // because its member left. True if that unpinned a partition whose owner is
  // now another member: the caller wakes the other members.
  bool released(const std::string& key, std::uint64_t key_hash) noexcept;

  // Partitions with un-acked events (the only ones with an entry).
  std::size_t pinned() const noexcept { return pinned_.size(); }
  void clear() noexcept { pinned_.clear(); }

 private:
  struct Pin {
    MemberId holder;
    std::size_t in_flight;  // delivered, un-acked events of the partition at holder
  };

  std::vector<MemberId> members_;
  std::unordered_map<std::string, Pin> pinned_;
};

}  // namespace gamebot::eventstore::detail
