#pragma once

// The reader's half of the PostgreSQL backend's no-skip rule: which prefix of
// `$all` is final, computed from probes, without a global write lock.
//
// Writers (append_events, one transaction T with top-level xid x):
//   W1. mark T: a shared advisory lock keyed by x, held until T ends (or until
//       the savepoint it was taken in rolls back, which also removes T's rows);
//   W2. publish x: writer_xids := max(writer_xids, x) (a sequence, so it is
//       seen at once by everyone);
//   W3. take a block of positions from the sequence `positions`.
//   (W2 and W3 run under the reservation lock, a few microseconds.)
// Readers (probe_watermark, one statement in READ COMMITTED):
//   R1. L := the last position taken;
//   R2. H := writer_xids;
//   R3. S := a snapshot;
//   R4. M := the candidates that carry the mark (exclusive try-lock), where the
//       candidates are the in-progress xids of S and every xid in
//       [xmax(S), H] (a transaction that got its xid after the newest
//       completion is in progress but not listed in S).
// The reader then reads rows with a snapshot taken after R4 (the next
// statement).
//
// Claim: for a probe k, every position p <= W_k (below) is final once R4 ends:
// either committed and visible to every later snapshot, or never committed.
// Proof. Let p be taken by T (xid x). p <= W_k <= L_k, so T took p before R1
// (the sequence is linearizable), so T marked itself (W1) and published x
// (W2) before R1, hence H_k >= x.
//  (a) x < xmax(S) and x not in progress in S: T ended before S; committed ->
//      p is visible in S and later snapshots; aborted -> p never commits.
//  (b) x is a candidate (in progress in S, or in [xmax(S), H_k]) and marked at
//      R4: x is in M_k, and W_k < every position of T (see the bound b(x)
//      below), so p <= W_k is impossible.
//  (c) x is a candidate, not marked at R4: T held its mark from before R1
//      until it ended (or until its savepoint rolled back, removing p), so T
//      ended before R4. PostgreSQL releases a transaction's locks only after
//      its commit is visible (ProcArrayEndTransaction precedes the lock
//      release), so the read after R4 sees p if T committed.
// The bound b(x) for x in M_k, from either source:
//  * this reader's history: if an earlier probe j had x not in M_j, then x was
//    unmarked at R4_j, or not yet published at R2_j (x > H_j), or already over
//    (impossible: it is in flight now). In each case T took its positions
//    after R2_j or R4_j, both after R1_j: every position of T is > L_j. So
//    b(x) = L_j of the latest such probe.
//  * any process's log (watermark_log, written by record_watermark): an entry
//    (H_j, L_j), H_j read after L_j, bounds every x > H_j by L_j the same way
//    (x was not published at H_j's read). Each backend logs an entry before it
//    is used and then every second while positions move, so a reader that has
//    never seen a writer (a new process) still bounds it.
// W_k = min(L_k, b(x) for x in M_k); if some x in M_k has no bound (it
// published before any entry this reader can use), W_k = W_{k-1}. W_k >=
// W_{k-1} (a new mark gets b = L_{k-1} >= W_{k-1}), so the watermark never
// decreases.
//
// Consequences: readers never block writers, writers never wait for each
// other's commit, and transactions that did not append (whatever they do in
// the database) never hold readers back. A reader behind an append whose
// transaction stays open (the outbox case) stops `$all` before that append's
// positions until it commits.

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "gamebot/eventstore/types.hpp"

namespace gamebot::eventstore::postgres_detail {

// A marked in-flight writer as a probe reports it.
struct ProbedWriter {
  std::uint64_t xid = 0;                       // full xid8
  std::optional<GlobalPosition> logged_bound;  // from watermark_log, if an entry precedes it
};

// One probe_watermark result.
struct WatermarkProbe {
  GlobalPosition last_reserved = 0;   // L: last position taken when the probe began
  std::vector<ProbedWriter> writers;  // M: marked in-progress writers
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
