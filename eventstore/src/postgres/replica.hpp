#pragma once

// Reads on a streaming hot-standby replica (PostgresBackendOptions::read_url):
// which prefix of `$all` a replica shows completely, and the thread that tells
// subscribers when a lagging replica has caught up.
//
// The no-skip watermark (watermark.hpp) cannot be probed on a standby: its
// marks are advisory locks and xids of the primary's transactions, which a
// standby neither holds nor sees in progress. So the reader probes on the
// PRIMARY and pairs each probe's watermark W_k with P_k :=
// pg_current_wal_insert_lsn() read on the primary after the probe (the same
// statement, after probe_watermark returned: a function in FROM runs to the
// end before the select list is evaluated).
//
// Claim: once a replica's pg_last_wal_replay_lsn() R >= P_k, a snapshot taken
// on the replica afterwards shows every committed event at a position <= W_k,
// and no event <= W_k appears there later.
// Proof. By watermark.hpp, every position p <= W_k is final when the probe
// (R4) ends: either T (the transaction that took p) committed and its commit
// is visible, or T never commits.
//  (a) T committed: PostgreSQL writes T's commit record to the WAL before it
//      makes T visible (RecordTransactionCommit precedes
//      ProcArrayEndTransaction), so the record ends at or before the insert
//      position read after R4: P_k. WAL is replayed in order and R counts
//      only applied records, so R >= P_k means T's commit (and its rows,
//      logged before it) have been replayed; a standby snapshot taken after
//      that sees T as committed.
//  (b) T never commits: its rows never become visible on the primary, nor
//      therefore on the replica, which only replays the primary's history.
// Hence with U := max { W_k : P_k <= R } (probes on the primary, R read on
// the replica before the read's statement), reading `$all` on the replica up
// to U is as safe as reading it on the primary up to U: no event <= U is
// missing now or appears later. U never decreases while R does not (pairs
// only gain), and W_k <= the primary's own watermark, so a reader that fails
// over to the primary (whose watermark is >= U) continues from its cursor
// with neither a gap nor a repeat; returning to the replica later it may find
// U below its cursor, which only delays it (nothing in between is skipped).
// A replica that restarts may come back behind what it replayed before, so
// the replay position a reader relies on is forgotten at every replica fault.
//
// Read-your-writes: a read that must see every commit that returned before it
// started waits until R >= P of a probe (for `$all`), or of a
// pg_current_wal_insert_lsn() (for stream reads), taken on the primary after
// the read started: both follow the caller's commit records in the WAL.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "gamebot/eventstore/types.hpp"

namespace gamebot::eventstore::postgres_detail {

// A WAL position (pg_lsn as a number: bytes since the start of the WAL).
using WalPosition = std::uint64_t;

// A primary probe: its watermark and the WAL insert position read after it.
struct ProbedWatermark {
  GlobalPosition safe = 0;  // W
  WalPosition wal = 0;      // P
};

// The probes a replica reader may use. Not thread-safe.
class ReplicaProgress {
 public:
  // Records a probe (in the order probes were taken: W and P never decrease).
  void add(ProbedWatermark probe);
  // U for a replica that has replayed up to `replayed`: the highest W whose P
  // it has reached (0 if none). Forgets probes that a later usable one makes
  // useless.
  GlobalPosition usable(WalPosition replayed);
  // The newest probe, if any.
  std::optional<ProbedWatermark> latest() const;

 private:
  static constexpr std::size_t kKept = 256;  // probes kept while the replica lags
  std::deque<ProbedWatermark> probes_;
};

// A thread that waits for a replica's replay to reach a WAL position and then
// calls `reached` (which wakes subscribers), so that a reader who found the
// replica behind learns when more became readable there. It polls `replayed`
// with a backoff from 100 us up to `longest_pause` (a standby has no
// notification of its replay progress). A fault of `replayed` also calls
// `reached` (readers then fail over to the primary).
class ReplayWatcher {
 public:
  ReplayWatcher(std::function<WalPosition()> replayed, std::function<void()> reached,
                std::chrono::milliseconds longest_pause);
  ~ReplayWatcher();
  ReplayWatcher(const ReplayWatcher&) = delete;
  ReplayWatcher& operator=(const ReplayWatcher&) = delete;

  // Asks to be told when replay reaches `wal` (the highest asked wins). Cheap.
  void watch(WalPosition wal) noexcept;

 private:
  void run() noexcept;

  std::function<WalPosition()> replayed_;
  std::function<void()> reached_;
  std::chrono::milliseconds longest_pause_;
  std::mutex mutex_;
  std::condition_variable wake_;
  WalPosition target_ = 0;  // 0: nothing to watch
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace gamebot::eventstore::postgres_detail
