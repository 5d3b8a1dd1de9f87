#pragma once

// The reader's half of the PostgreSQL backend's no-skip rule: which prefix of
// `$all` is final, computed from probes, without a global write lock.
//
// Writers (append_events, one transaction T with top-level xid x):
//   W1. mark T: a shared advisory lock keyed by x, held until T ends (or the
//       savepoint it was taken in rolls back, which also removes T's rows);
//   W2. only then take a block of positions from the sequence.
// Readers (probe_watermark, one statement in READ COMMITTED):
//   R1. L := the last position taken (the sequence, read non-transactionally);
//   R2. S := a snapshot taken after R1;
//   R3. M := the in-progress xids of S that carry the mark (exclusive try-lock).
// The reader then reads rows with a snapshot taken after R3 (the next
// statement).
//
// Claim: for a probe k, every position p <= W_k (below) is final once R3 ends:
// either committed and visible to every later snapshot, or never committed.
// Proof. Let p be taken by T (xid x). p <= W_k <= L_k, so T took p before R1
// (the sequence is linearizable), hence T's xid and its mark existed before
// R1, so before S: x < xmax(S).
//  (a) x not in progress in S: T ended before S; committed -> p visible in S
//      and later snapshots; aborted -> p never commits.
//  (b) x in progress in S and marked at R3: x is in M_k, and W_k < every
//      position of T (see the bound b(x) below), so p <= W_k is impossible.
//  (c) x in progress in S, not marked at R3: T held its mark from before R1
//      until it ended (or until its savepoint rolled back, removing p), so T
//      ended between S and R3. PostgreSQL releases a transaction's locks only
//      after its commit is visible (ProcArrayEndTransaction precedes the lock
//      release), so the read after R3 sees p if T committed.
// The bound b(x) for x in M_k: if an earlier probe j had x not in M_j and x
// still running (x >= xmax(S_j), or x in progress in S_j without a mark),
// then T marked itself after probe j's R1 or R3, both after L_j was read, and
// took its positions after marking (W2): every position of T is > L_j. So
// b(x) = L_j of the latest such probe. W_k = min(L_k, b(x) for x in M_k); if
// some x in M_k has no bound yet (this reader never saw it unmarked), W_k =
// W_{k-1}. W_k >= W_{k-1} (a new mark gets b = L_{k-1} >= W_{k-1}), so the
// watermark never decreases.
//
// Consequences: readers never block writers, writers never wait for each
// other's commit, and transactions that did not append (whatever they do in
// the database) never hold readers back. A reader that starts while a writer
// is in flight learns that writer's bound at its next probe, or waits for it
// to end; so does a reader behind an append whose transaction stays open (the
// outbox case): `$all` stops before that append's positions until it commits.

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "gamebot/eventstore/types.hpp"

namespace gamebot::eventstore::postgres_detail {

// One probe_watermark result.
struct WatermarkProbe {
  GlobalPosition last_reserved = 0;    // L: last position taken when the probe began
  std::vector<std::uint64_t> writers;  // M: marked in-progress xids (full xid8)
};

// What a probe tells, given the probes before it.
struct WatermarkOutcome {
  GlobalPosition safe = 0;  // W: every position <= safe is final
  bool unresolved = false;  // some marked writer has no bound yet (probe again later)
};

// The history of one reader's probes. Not thread-safe: apply probes one at a
// time, in the order they were taken.
class WatermarkTracker {
 public:
  // Records `probe` (taken after every probe applied before) and returns the
  // new watermark.
  WatermarkOutcome apply(const WatermarkProbe& probe);
  // The watermark `probe` would give, without recording it (for probes whose
  // own transaction's appends are not finished, which must not advance the
  // shared history).
  WatermarkOutcome peek(const WatermarkProbe& probe) const;
  GlobalPosition safe() const noexcept { return safe_; }

 private:
  using Bounds = std::map<std::uint64_t, std::optional<GlobalPosition>>;
  WatermarkOutcome evaluate(const WatermarkProbe& probe, Bounds& bounds) const;

  bool have_previous_ = false;
  GlobalPosition previous_last_ = 0;
  Bounds bounds_;  // marked writers of the previous probe -> bound (nullopt: unknown)
  GlobalPosition safe_ = 0;
};

}  // namespace gamebot::eventstore::postgres_detail
