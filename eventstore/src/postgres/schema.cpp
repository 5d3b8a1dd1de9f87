// The PostgreSQL backend's schema as repo migrations (see postgres_schema.hpp).
//
// Tables:
// * streams: one row per live or soft-deleted stream. `sequence` (identity,
//   never reused) is the creation order list_streams pages by; `version` is
//   the newest own event or link; appends lock this row, so writers of one
//   stream serialize and writers of different streams do not meet.
// * events: one row per event; `position` is the global position (from the
//   sequence `positions`). Unique constraints on event_id (the duplicate
//   check) and on (stream_id, stream_version) (stream reads; a second guard on
//   versions). data_json holds the data as jsonb when json_data is on.
// * links: stream entries that refer to another stream's event by position;
//   a hard delete of the event removes them (ON DELETE CASCADE) and leaves a
//   hole in the link stream's versions.
// * snapshots, subscriptions (persistent-subscription checkpoints).
// * events and links are append-only (migration 5): triggers refuse UPDATE,
//   DELETE and TRUNCATE except delete_stream's own deletes.
//
// Functions: append_events, link_events and delete_stream do a whole write in
// one statement (one round trip); probe_watermark is the reader's half of the
// no-skip rule (watermark.hpp), record_watermark feeds it bounds through the
// table watermark_log. Status codes returned by the functions:
// 0 ok, 1 wrong_expected_version, 2 stream_exists, 3 stream_not_found,
// 4 stream_deleted, 5 duplicate_event_id, 6 event_not_found. Expected-version
// kinds passed in: 0 any, 1 no_stream, 2 stream_exists, 3 exact.
//
// Advisory locks (database-scoped), with N = postgres_lock_namespace(schema):
// * in-flight mark of writer transaction xid X: (N << 32) | (X mod 2^32),
//   shared, held to the end of the writer's transaction (or its savepoint);
// * position reservation: N << 32 (X = 0 is never a transaction id), exclusive,
//   held only while a block of positions is taken;
// * persistent-subscription leases: 2^62 | (62-bit hash of the key), session
//   level on the lease's own connection (with transaction pooling:
//   transaction level, in a transaction the lease keeps open); never inside
//   the marks' range (N is below 2^30, so marks are below 2^62).
// Since migration 6 the functions take only transaction-level locks.

#include <fmt/format.h>

#include <deque>
#include <memory>
#include <mutex>
#include <utility>

#include "gamebot/eventstore/errors.hpp"
#include "gamebot/eventstore/postgres_schema.hpp"
#include "gamebot/repo/identifier.hpp"
#include "released_migrations.hpp"
#include "sql_names.hpp"

namespace gamebot::eventstore {

namespace {

// The schema name's FNV-1a hash, keeping the bits of `mask` (never 0).
std::int32_t lock_namespace_of(std::string_view schema, std::uint32_t mask) noexcept {
  std::uint32_t hash = 2166136261u;
  for (unsigned char c : schema) {
    hash ^= c;
    hash *= 16777619u;
  }
  hash &= mask;
  return static_cast<std::int32_t>(hash == 0 ? 1 : hash);
}

}  // namespace

std::int32_t postgres_lock_namespace(std::string_view schema) noexcept {
  return lock_namespace_of(schema, 0x3FFFFFFFu);
}

std::int64_t postgres_subscription_lock_key(std::string_view schema, std::string_view subscription,
                                            std::string_view stream_id) noexcept {
  std::uint64_t hash = 14695981039346656037ull;
  auto mix = [&hash](std::string_view text) {
    for (unsigned char c : text) {
      hash ^= c;
      hash *= 1099511628211ull;
    }
    hash ^= 0xFF;  // a separator no UTF-8 text contains
    hash *= 1099511628211ull;
  };
  mix(schema);
  mix(subscription);
  mix(stream_id);
  return static_cast<std::int64_t>((hash & ((std::uint64_t{1} << 62) - 1)) |
                                   (std::uint64_t{1} << 62));
}

namespace postgres_detail {

SqlNames::SqlNames(std::string_view schema_name)
    : schema(schema_name), lock_namespace(postgres_lock_namespace(schema_name)) {
  using repo::SqlPlace;
  using repo::SqlToken;
  try {
    quoted_schema =
        repo::embed_sql_name(schema_name, SqlToken::identifier, SqlPlace::dollar_quoted_body);
    schema_literal =
        repo::embed_sql_name(quoted_schema, SqlToken::literal, SqlPlace::dollar_quoted_body);
    xids_literal = repo::embed_sql_name(quoted_schema + ".writer_xids", SqlToken::literal,
                                        SqlPlace::dollar_quoted_body);
    positions_literal = repo::embed_sql_name(quoted_schema + ".positions", SqlToken::literal,
                                             SqlPlace::dollar_quoted_body);
  } catch (const gamebot::Error& e) {
    throw InvalidArgument("PostgreSQL schema name: " + e.message());
  }
  *this = with_lock_namespace(lock_namespace);
}

SqlNames SqlNames::with_lock_namespace(std::int32_t other) const {
  SqlNames out = *this;
  out.lock_namespace = other;
  out.channel = fmt::format("gamebot_es_{:08x}", static_cast<std::uint32_t>(other));
  out.reservation_key = static_cast<std::int64_t>(other) << 32;
  return out;
}

std::string SqlNames::table(std::string_view name) const {
  return quoted_schema + "." + std::string(name);
}

}  // namespace postgres_detail

namespace {

constexpr std::string_view kCreateTables = R"sql(
CREATE SCHEMA IF NOT EXISTS {s};
CREATE SEQUENCE {s}.positions AS bigint MINVALUE 1 NO CYCLE;
CREATE SEQUENCE {s}.writer_xids AS bigint MINVALUE 0 NO CYCLE;
CREATE TABLE {s}.streams (
  sequence bigint GENERATED ALWAYS AS IDENTITY,
  stream_id text NOT NULL,
  version bigint NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  CONSTRAINT streams_pkey PRIMARY KEY (sequence),
  CONSTRAINT streams_stream_id_key UNIQUE (stream_id)
);
CREATE TABLE {s}.events (
  position bigint NOT NULL,
  event_id uuid NOT NULL,
  stream_id text NOT NULL,
  stream_version bigint NOT NULL,
  type text NOT NULL,
  data bytea NOT NULL,
  metadata bytea NOT NULL,
  causation_id uuid,
  correlation_id uuid,
  created_at timestamptz NOT NULL,
  data_json jsonb,
  CONSTRAINT events_pkey PRIMARY KEY (position),
  CONSTRAINT events_event_id_key UNIQUE (event_id),
  CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);
CREATE TABLE {s}.links (
  stream_id text NOT NULL,
  version bigint NOT NULL,
  position bigint NOT NULL REFERENCES {s}.events (position) ON DELETE CASCADE,
  CONSTRAINT links_pkey PRIMARY KEY (stream_id, version),
  CONSTRAINT links_stream_position_key UNIQUE (stream_id, position)
);
CREATE INDEX links_position_idx ON {s}.links (position);
CREATE TABLE {s}.snapshots (
  source_id text NOT NULL,
  source_version bigint NOT NULL,
  source_type text NOT NULL,
  data bytea NOT NULL,
  metadata bytea NOT NULL,
  created_at timestamptz NOT NULL,
  CONSTRAINT snapshots_pkey PRIMARY KEY (source_id)
);
CREATE TABLE {s}.watermark_log (
  writer_xid bigint NOT NULL,
  last_reserved bigint NOT NULL,
  CONSTRAINT watermark_log_pkey PRIMARY KEY (writer_xid)
);
CREATE TABLE {s}.subscriptions (
  name text NOT NULL,
  stream_id text NOT NULL,
  checkpoint bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT subscriptions_pkey PRIMARY KEY (name, stream_id)
);
)sql";

// append_events: the whole append in one statement. Order matters:
// 1+2. the stream row is locked and bumped only if the expectation holds and
//    no id of the batch is taken already or repeated in it (one UPDATE in the
//    common case; otherwise the checks run one by one to tell which outcome
//    it is, and a failed one writes nothing); 3. the
//    transaction is marked in flight (W1 in watermark.hpp); 4. under the
//    reservation lock (session level, taken and released inside a block whose
//    handler releases it on any error or cancel, so it never leaks), its xid
//    is published in writer_xids (W2) and a consecutive block of positions is
//    taken (W3); 5. the rows are inserted. Conflicts found in 1 and 2 leave no
//    hole. A duplicate id that a concurrent writer commits between 1 and 5
//    raises a unique violation (events_event_id_key), which the client turns
//    into a result; inside a caller's transaction append_events_guarded does
//    that in a subtransaction, so the caller's transaction survives.
// Function calls are assignments (plpgsql's fast path for simple expressions)
// rather than PERFORM/SELECT statements, which would each start an executor.
// Every function runs with enable_seqscan off: PL/pgSQL keeps the plans it
// made on its first calls, typically while the tables were small and not yet
// analyzed, and a sequential scan chosen then makes every later append O(n).
constexpr std::string_view kAppendFunction = R"sql(
CREATE FUNCTION {s}.append_events(p_stream text, p_kind int, p_expected bigint,
    p_ids uuid[], p_types text[], p_data bytea[], p_metadata bytea[], p_causation uuid[],
    p_correlation uuid[], p_created timestamptz[], p_json boolean, p_notify boolean,
    OUT status int, OUT version bigint, OUT first_position bigint, OUT event_id uuid)
LANGUAGE plpgsql SET enable_seqscan = off AS $fn$
DECLARE
  n int := coalesce(cardinality(p_ids), 0);
  cur bigint;
  deleted timestamptz;
  dup uuid;
  me bigint;
  done text;
BEGIN
  first_position := 0;
  IF n > 0 THEN
    -- The common case in one statement: an existing live stream, the
    -- expectation holds, no id is taken or repeated.
    UPDATE {s}.streams s SET version = s.version + n
     WHERE s.stream_id = p_stream AND s.deleted_at IS NULL
       AND (p_kind = 0 OR p_kind = 2 OR (p_kind = 3 AND s.version = p_expected))
       AND NOT EXISTS (SELECT 1 FROM {s}.events e WHERE e.event_id = ANY (p_ids))
       AND (n = 1 OR (SELECT count(DISTINCT i) FROM unnest(p_ids) i) = n)
    RETURNING s.version - n INTO cur;
  END IF;
  IF n = 0 OR NOT FOUND THEN
    IF n > 0 THEN
      SELECT e.event_id INTO dup FROM {s}.events e WHERE e.event_id = ANY (p_ids) LIMIT 1;
      IF dup IS NULL AND n > 1 THEN
        SELECT i INTO dup FROM unnest(p_ids) i GROUP BY i HAVING count(*) > 1 LIMIT 1;
      END IF;
    END IF;
    LOOP
      IF n > 0 AND dup IS NULL THEN
        UPDATE {s}.streams s SET version = s.version + n
         WHERE s.stream_id = p_stream AND s.deleted_at IS NULL
           AND (p_kind = 0 OR p_kind = 2 OR (p_kind = 3 AND s.version = p_expected))
        RETURNING s.version - n INTO cur;
        EXIT WHEN FOUND;
      END IF;
      SELECT s.version, s.deleted_at INTO cur, deleted FROM {s}.streams s
       WHERE s.stream_id = p_stream;
      IF FOUND THEN
        status := CASE WHEN deleted IS NOT NULL THEN 4
                       WHEN p_kind = 1 THEN 2
                       WHEN p_kind = 3 AND p_expected <> cur THEN 1
                       WHEN dup IS NOT NULL THEN 5
                       ELSE 0 END;
        IF status = 0 AND n > 0 THEN
          CONTINUE;  -- the stream changed between the UPDATE and the SELECT: again
        END IF;
        version := cur;
        event_id := dup;
        RETURN;
      END IF;
      status := CASE WHEN p_kind = 2 THEN 3
                     WHEN p_kind = 3 AND p_expected <> 0 THEN 1
                     WHEN dup IS NOT NULL THEN 5
                     ELSE 0 END;
      IF status <> 0 OR n = 0 THEN
        version := 0;
        event_id := dup;
        RETURN;
      END IF;
      INSERT INTO {s}.streams (stream_id, version) VALUES (p_stream, n)
        ON CONFLICT (stream_id) DO NOTHING;
      cur := 0;
      EXIT WHEN FOUND;
    END LOOP;
  END IF;
  status := 0;
  version := cur + n;
  me := pg_current_xact_id()::text::bigint;
  done := pg_advisory_xact_lock_shared({ns}::bigint << 32 | (me & 4294967295))::text;
  BEGIN
    done := pg_advisory_lock({ns}::bigint << 32)::text;
    -- Exactly the xid (no headroom): watermark_log entries bound only the
    -- writers above the value they logged, so a higher value would leave new
    -- readers unable to bound the next writers.
    IF me > coalesce(pg_sequence_last_value({xids_literal}::regclass), 0) THEN
      done := setval({xids_literal}::regclass, me)::text;
    END IF;
    -- The whole batch in one step (under the reservation lock): a probe reading the sequence
    -- never sees a batch half reserved, so no watermark can fall inside a batch and a reader
    -- of $all never sees part of one.
    first_position := coalesce(pg_sequence_last_value({positions_literal}::regclass), 0) + 1;
    done := setval({positions_literal}::regclass, first_position + n - 1)::text;
    done := pg_advisory_unlock({ns}::bigint << 32)::text;
  EXCEPTION WHEN OTHERS OR query_canceled THEN
    done := pg_advisory_unlock({ns}::bigint << 32)::text;
    RAISE;
  END;
  IF n = 1 THEN
    INSERT INTO {s}.events (position, event_id, stream_id, stream_version, type, data, metadata,
                            causation_id, correlation_id, created_at, data_json)
    VALUES (first_position, p_ids[1], p_stream, cur + 1, p_types[1], p_data[1], p_metadata[1],
            p_causation[1], p_correlation[1], p_created[1],
            CASE WHEN p_json THEN convert_from(p_data[1], 'UTF8')::jsonb END);
  ELSE
    INSERT INTO {s}.events (position, event_id, stream_id, stream_version, type, data, metadata,
                            causation_id, correlation_id, created_at, data_json)
    SELECT first_position + r.o - 1, r.id, p_stream, cur + r.o, r.t, r.d, r.m, r.c, r.k, r.ts,
           CASE WHEN p_json THEN convert_from(r.d, 'UTF8')::jsonb END
      FROM unnest(p_ids, p_types, p_data, p_metadata, p_causation, p_correlation, p_created)
           WITH ORDINALITY AS r(id, t, d, m, c, k, ts, o);
  END IF;
  IF p_notify THEN
    done := pg_notify('{channel}', '')::text;
  END IF;
END
$fn$;
CREATE FUNCTION {s}.append_events_guarded(p_stream text, p_kind int, p_expected bigint,
    p_ids uuid[], p_types text[], p_data bytea[], p_metadata bytea[], p_causation uuid[],
    p_correlation uuid[], p_created timestamptz[], p_json boolean, p_notify boolean,
    OUT status int, OUT version bigint, OUT first_position bigint, OUT event_id uuid)
LANGUAGE plpgsql SET enable_seqscan = off AS $fn$
DECLARE
  violated text;
BEGIN
  BEGIN
    SELECT a.status, a.version, a.first_position, a.event_id
      INTO status, version, first_position, event_id
      FROM {s}.append_events(p_stream, p_kind, p_expected, p_ids, p_types, p_data, p_metadata,
                             p_causation, p_correlation, p_created, p_json, p_notify) a;
  EXCEPTION WHEN unique_violation THEN
    GET STACKED DIAGNOSTICS violated = CONSTRAINT_NAME;
    IF violated = 'events_event_id_key' THEN
      status := 5;
      SELECT e.event_id INTO event_id FROM {s}.events e WHERE e.event_id = ANY (p_ids) LIMIT 1;
    ELSIF violated = 'events_stream_version_key' THEN
      status := 1;
      event_id := NULL;
    ELSE
      RAISE;
    END IF;
    first_position := 0;
    SELECT s.version INTO version FROM {s}.streams s WHERE s.stream_id = p_stream;
    version := coalesce(version, 0);
  END;
END
$fn$;
)sql";

// link_events: locks the target stream first, then checks every id in order
// (unknown -> 6, already in the stream or twice in the batch -> 5). The
// linked events are locked FOR KEY SHARE, so a concurrent hard delete waits.
constexpr std::string_view kLinkFunction = R"sql(
CREATE FUNCTION {s}.link_events(p_stream text, p_kind int, p_expected bigint, p_ids uuid[],
    p_notify boolean, OUT status int, OUT version bigint, OUT event_id uuid)
LANGUAGE plpgsql SET enable_seqscan = off AS $fn$
DECLARE
  n int := coalesce(cardinality(p_ids), 0);
  cur bigint;
  deleted timestamptz;
  exists_now boolean;
  bad_missing boolean;
BEGIN
  LOOP
    SELECT s.version, s.deleted_at INTO cur, deleted FROM {s}.streams s
     WHERE s.stream_id = p_stream FOR UPDATE;
    exists_now := FOUND;
    IF NOT exists_now THEN
      cur := 0;
    END IF;
    status := CASE WHEN exists_now AND deleted IS NOT NULL THEN 4
                   WHEN exists_now AND p_kind = 1 THEN 2
                   WHEN NOT exists_now AND p_kind = 2 THEN 3
                   WHEN p_kind = 3 AND p_expected <> cur THEN 1
                   ELSE 0 END;
    IF status <> 0 OR n = 0 THEN
      version := cur;
      RETURN;
    END IF;
    PERFORM 1 FROM {s}.events e WHERE e.event_id = ANY (p_ids) FOR KEY SHARE;
    SELECT j.id, j.position IS NULL INTO event_id, bad_missing
      FROM (SELECT r.o, r.id, e.position,
                   row_number() OVER (PARTITION BY r.id ORDER BY r.o) > 1 AS repeated,
                   (e.stream_id = p_stream OR EXISTS (
                      SELECT 1 FROM {s}.links l
                       WHERE l.stream_id = p_stream AND l.position = e.position)) AS present
              FROM unnest(p_ids) WITH ORDINALITY AS r(id, o)
              LEFT JOIN {s}.events e ON e.event_id = r.id) j
     WHERE j.position IS NULL OR j.repeated OR j.present
     ORDER BY j.o LIMIT 1;
    IF FOUND THEN
      status := CASE WHEN bad_missing THEN 6 ELSE 5 END;
      version := cur;
      RETURN;
    END IF;
    IF exists_now THEN
      UPDATE {s}.streams s SET version = cur + n WHERE s.stream_id = p_stream;
      EXIT;
    END IF;
    INSERT INTO {s}.streams (stream_id, version) VALUES (p_stream, n)
      ON CONFLICT (stream_id) DO NOTHING;
    EXIT WHEN FOUND;
  END LOOP;
  INSERT INTO {s}.links (stream_id, version, position)
  SELECT p_stream, cur + r.o, e.position
    FROM unnest(p_ids) WITH ORDINALITY AS r(id, o)
    JOIN {s}.events e ON e.event_id = r.id;
  version := cur + n;
  event_id := NULL;
  IF p_notify THEN
    PERFORM pg_notify('{channel}', '');
  END IF;
END
$fn$;
)sql";

constexpr std::string_view kDeleteFunction = R"sql(
CREATE FUNCTION {s}.delete_stream(p_stream text, p_kind int, p_expected bigint, p_hard boolean,
    p_notify boolean, OUT status int, OUT version bigint)
LANGUAGE plpgsql SET enable_seqscan = off AS $fn$
DECLARE
  deleted timestamptz;
BEGIN
  SELECT s.version, s.deleted_at INTO version, deleted FROM {s}.streams s
   WHERE s.stream_id = p_stream FOR UPDATE;
  IF NOT FOUND THEN
    status := 3;
    version := 0;
    RETURN;
  END IF;
  status := CASE WHEN NOT p_hard AND deleted IS NOT NULL THEN 4
                 WHEN p_kind = 1 THEN 2
                 WHEN p_kind = 3 AND p_expected <> version THEN 1
                 ELSE 0 END;
  IF status <> 0 THEN
    RETURN;
  END IF;
  IF p_hard THEN
    DELETE FROM {s}.events e WHERE e.stream_id = p_stream;
    DELETE FROM {s}.links l WHERE l.stream_id = p_stream;
    DELETE FROM {s}.streams s WHERE s.stream_id = p_stream;
  ELSE
    UPDATE {s}.streams s SET deleted_at = now() WHERE s.stream_id = p_stream;
  END IF;
  IF p_notify THEN
    PERFORM pg_notify('{channel}', '');
  END IF;
END
$fn$;
)sql";

// probe_watermark: the reader's probe (R1-R4 in watermark.hpp): the last
// position taken, then the highest published writer xid, then a snapshot; the
// candidates are the snapshot's in-progress xids and every xid from its xmax
// up to that published one (running transactions that got their xid after the
// last completion are in progress too but not listed). Each candidate is
// tested for the in-flight mark with an exclusive try-lock, released at once
// (on an error or a cancel in between, the exception block releases it, so it
// never leaks). A marked writer comes back as "xid:bound", bound being the
// logged last position of the newest watermark_log entry below its xid (empty
// if none). Only READ COMMITTED gives each statement a fresh snapshot.
constexpr std::string_view kProbeFunction = R"sql(
CREATE FUNCTION {s}.probe_watermark(OUT last_reserved bigint, OUT writers text)
LANGUAGE plpgsql SET enable_seqscan = off AS $fn$
DECLARE
  published bigint;
  snap pg_snapshot;
  x bigint;
  k bigint;
  bound bigint;
  marked text[] := '{{}}';
BEGIN
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'reading $all needs READ COMMITTED, not %',
      current_setting('transaction_isolation') USING ERRCODE = 'GBISO';
  END IF;
  last_reserved := coalesce(pg_sequence_last_value({positions_literal}::regclass), 0);
  published := coalesce(pg_sequence_last_value({xids_literal}::regclass), 0);
  snap := pg_current_snapshot();
  BEGIN
    FOR x IN SELECT i::text::bigint FROM pg_snapshot_xip(snap) i
             UNION ALL
             SELECT g FROM generate_series(pg_snapshot_xmax(snap)::text::bigint, published) g
    LOOP
      k := {ns}::bigint << 32 | (x & 4294967295);
      IF pg_try_advisory_lock(k) THEN
        k := CASE WHEN pg_advisory_unlock(k) THEN NULL END;
      ELSE
        k := NULL;
        bound := NULL;
        SELECT w.last_reserved INTO bound FROM {s}.watermark_log w
         WHERE w.writer_xid < x ORDER BY w.writer_xid DESC LIMIT 1;
        marked := marked || (x::text || ':' || coalesce(bound::text, ''));
      END IF;
    END LOOP;
  EXCEPTION WHEN OTHERS OR query_canceled THEN
    IF k IS NOT NULL THEN
      PERFORM pg_advisory_unlock(k);
    END IF;
    RAISE;
  END;
  writers := array_to_string(marked, ',');
END
$fn$;
)sql";

// record_watermark: logs (highest published writer xid H, last position taken
// L), L read first. A writer whose xid is above H had not published it when H
// was read, so it takes its positions later: all of them are > L (the bound
// probe_watermark reports). Only the newest entry below the oldest running
// xid can still matter; older ones are pruned.
constexpr std::string_view kRecordFunction = R"sql(
CREATE FUNCTION {s}.record_watermark() RETURNS void
LANGUAGE plpgsql SET enable_seqscan = off AS $fn$
DECLARE
  reserved bigint;
  published bigint;
BEGIN
  reserved := coalesce(pg_sequence_last_value({positions_literal}::regclass), 0);
  published := coalesce(pg_sequence_last_value({xids_literal}::regclass), 0);
  -- An entry with the same L and a lower H bounds the same writers and more.
  IF NOT EXISTS (SELECT 1 FROM {s}.watermark_log w WHERE w.last_reserved >= reserved) THEN
    INSERT INTO {s}.watermark_log (writer_xid, last_reserved) VALUES (published, reserved)
    ON CONFLICT (writer_xid) DO UPDATE SET last_reserved = greatest(
      {s}.watermark_log.last_reserved, EXCLUDED.last_reserved);
  END IF;
  DELETE FROM {s}.watermark_log w
   WHERE w.writer_xid < (SELECT max(o.writer_xid) FROM {s}.watermark_log o
                          WHERE o.writer_xid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint);
END
$fn$;
)sql";

// Migration 2: no JIT inside the store's functions. Their `enable_seqscan =
// off` prices an unavoidable sequential scan (watermark_log has no index on
// last_reserved, and needs none at its few rows) at 1e10, far above
// jit_above_cost, so the server JIT-compiled record_watermark on every call:
// ~10 ms per call, during which the background thread could neither send nor
// pass on a NOTIFY (a 10-12 ms stall in live delivery once a second). Only the
// store's own functions: others in its schema are not ours to change.
constexpr std::string_view kNoJitInFunctions = R"sql(
DO $do$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
            WHERE p.pronamespace = {schema_literal}::regnamespace
              AND p.proname IN ('append_events', 'append_events_guarded', 'link_events',
                                'delete_stream', 'probe_watermark', 'record_watermark')
            ORDER BY p.oid LOOP
    EXECUTE format('ALTER FUNCTION %s SET jit = off', f);
  END LOOP;
END
$do$;
)sql";

std::string expand(std::string_view sql, const postgres_detail::SqlNames& names) {
  return fmt::format(fmt::runtime(sql), fmt::arg("s", names.quoted_schema),
                     fmt::arg("ns", names.lock_namespace), fmt::arg("channel", names.channel),
                     fmt::arg("schema_literal", names.schema_literal),
                     fmt::arg("xids_literal", names.xids_literal),
                     fmt::arg("positions_literal", names.positions_literal),
                     fmt::arg("append_only_sqlstate", kPostgresAppendOnlySqlstate));
}

// The 31-bit lock namespace of the releases before bdc94af.
std::int32_t lock_namespace_31_bits(std::string_view schema) noexcept {
  return lock_namespace_of(schema, 0x7FFFFFFFu);
}

// Migration 3: stores created by earlier releases (released_migrations.hpp)
// have other texts of the functions, some an older lock namespace baked in,
// and the oldest lack writer_xids and watermark_log; the tables are otherwise
// the same. This brings every one to today's objects: the missing ones
// created, the store's functions dropped (whatever their signatures were) and
// created again as migrations 1 and 2 create them.
constexpr std::string_view kConvergeTables = R"sql(
CREATE SEQUENCE IF NOT EXISTS {s}.writer_xids AS bigint MINVALUE 0 NO CYCLE;
CREATE TABLE IF NOT EXISTS {s}.watermark_log (
  writer_xid bigint NOT NULL,
  last_reserved bigint NOT NULL,
  CONSTRAINT watermark_log_pkey PRIMARY KEY (writer_xid)
);
)sql";

constexpr std::string_view kDropFunctions = R"sql(
DO $do$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
            WHERE p.pronamespace = {schema_literal}::regnamespace
              AND p.proname IN ('append_events', 'append_events_guarded', 'link_events',
                                'delete_stream', 'probe_watermark', 'record_watermark')
            ORDER BY p.oid LOOP
    EXECUTE format('DROP FUNCTION %s', f);
  END LOOP;
END
$do$;
)sql";

// Migration 4: fencing tokens of subscription leases (backend.hpp). One
// sequence for every subscription, so a token is never reused, also after a
// subscription is deleted and created again; existing rows get token 0, which
// the first lease taken after the upgrade outranks.
constexpr std::string_view kFenceSubscriptionLeases = R"sql(
CREATE SEQUENCE {s}.subscription_lease_tokens AS bigint MINVALUE 1 NO CYCLE;
ALTER TABLE {s}.subscriptions ADD COLUMN lease_token bigint NOT NULL DEFAULT 0;
)sql";

// Migration 5: events and links are append-only. UPDATE, DELETE and TRUNCATE
// on them are refused with SQLSTATE kPostgresAppendOnlySqlstate (class 23, so
// repo reports FaultClass::integrity), except a DELETE while the setting
// gamebot.allow_delete is 'on'. Only delete_stream's hard delete turns it on,
// transaction-locally (set_config(..., true), i.e. SET LOCAL), and off again
// right after its two deletes; an error in between aborts the (sub)transaction,
// which undoes the setting too. So the caller's own statements in the same
// transaction stay refused. (A function-level SET clause would scope it more
// simply, but PostgreSQL before 16 lets only a superuser attach a custom
// setting to a function, and stores are owned by ordinary roles.) Statement
// triggers: a hard delete checks once, not once per row; the cascade from
// events to links runs while the setting is on and passes too. delete_stream
// is otherwise the text of migrations 1 and 3; a later migration that
// recreates the functions must take this one.
constexpr std::string_view kAppendOnlyEvents = R"sql(
CREATE FUNCTION {s}.refuse_event_change() RETURNS trigger
LANGUAGE plpgsql SET jit = off AS $fn$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('gamebot.allow_delete', true) = 'on' THEN
    RETURN NULL;
  END IF;
  RAISE EXCEPTION '% on %.% is refused: the event store is append-only', TG_OP,
    quote_ident(TG_TABLE_SCHEMA), quote_ident(TG_TABLE_NAME)
    USING ERRCODE = '{append_only_sqlstate}',
          HINT = 'Only the store''s hard delete (delete_stream) removes events.';
END
$fn$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {s}.events
  FOR EACH STATEMENT EXECUTE FUNCTION {s}.refuse_event_change();
CREATE TRIGGER links_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {s}.links
  FOR EACH STATEMENT EXECUTE FUNCTION {s}.refuse_event_change();
CREATE OR REPLACE FUNCTION {s}.delete_stream(p_stream text, p_kind int, p_expected bigint,
    p_hard boolean, p_notify boolean, OUT status int, OUT version bigint)
LANGUAGE plpgsql SET enable_seqscan = off SET jit = off AS $fn$
DECLARE
  deleted timestamptz;
  done text;
BEGIN
  SELECT s.version, s.deleted_at INTO version, deleted FROM {s}.streams s
   WHERE s.stream_id = p_stream FOR UPDATE;
  IF NOT FOUND THEN
    status := 3;
    version := 0;
    RETURN;
  END IF;
  status := CASE WHEN NOT p_hard AND deleted IS NOT NULL THEN 4
                 WHEN p_kind = 1 THEN 2
                 WHEN p_kind = 3 AND p_expected <> version THEN 1
                 ELSE 0 END;
  IF status <> 0 THEN
    RETURN;
  END IF;
  IF p_hard THEN
    done := set_config('gamebot.allow_delete', 'on', true);
    DELETE FROM {s}.events e WHERE e.stream_id = p_stream;
    DELETE FROM {s}.links l WHERE l.stream_id = p_stream;
    done := set_config('gamebot.allow_delete', 'off', true);
    DELETE FROM {s}.streams s WHERE s.stream_id = p_stream;
  ELSE
    UPDATE {s}.streams s SET deleted_at = now() WHERE s.stream_id = p_stream;
  END IF;
  IF p_notify THEN
    PERFORM pg_notify('{channel}', '');
  END IF;
END
$fn$;
)sql";

// Migration 6: no session-level lock in the store's functions, so that every
// call is whole within its transaction and works through a pooler in
// transaction mode (PgBouncer), which hands each transaction any server
// session. A session lock that an error left behind (as the one-statement
// append's could, before its client released it) would stay with a session
// that other clients get next.
// * reserve_positions: W2 and W3 (watermark.hpp), the one home of the
//   reservation for the functions and the pooled mode's one-statement appends
//   (PostgresBackend). The reservation lock is transaction-level, taken in a
//   subtransaction that is rolled back on purpose as soon as the block of
//   positions is taken: the rollback releases the lock (so it is held for
//   microseconds, not to commit, and writers still commit concurrently),
//   while the sequences keep their new values (sequence changes are never
//   rolled back) and so do the function's variables. Writers through a pooler
//   and direct writers whose one-statement append takes the same lock at
//   session level exclude each other alike: both levels are one lock tag.
// * append_events takes its positions from reserve_positions; otherwise it is
//   migration 3's text.
// * probe_watermark tests the in-flight marks with transaction-level
//   try-locks, all in one subtransaction rolled back on purpose after the
//   loop, which releases them (and on any error or cancel, likewise).
//   Otherwise it is migration 3's text.
constexpr std::string_view kTransactionScopedLocks = R"sql(
CREATE FUNCTION {s}.reserve_positions(p_me bigint, p_n bigint) RETURNS bigint
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
  first_position bigint;
  done text;
BEGIN
  BEGIN
    done := pg_advisory_xact_lock({ns}::bigint << 32)::text;
    -- Exactly the xid (no headroom): watermark_log entries bound only the
    -- writers above the value they logged.
    IF p_me > coalesce(pg_sequence_last_value({xids_literal}::regclass), 0) THEN
      done := setval({xids_literal}::regclass, p_me)::text;
    END IF;
    -- The whole batch in one step: a probe never sees a batch half reserved.
    first_position := coalesce(pg_sequence_last_value({positions_literal}::regclass), 0) + 1;
    done := setval({positions_literal}::regclass, first_position + p_n - 1)::text;
    RAISE SQLSTATE 'GBRSV';
  EXCEPTION WHEN SQLSTATE 'GBRSV' THEN
    NULL;  -- the subtransaction is gone and with it the lock; the sequences keep their values
  END;
  RETURN first_position;
END
$fn$;
CREATE OR REPLACE FUNCTION {s}.append_events(p_stream text, p_kind int, p_expected bigint,
    p_ids uuid[], p_types text[], p_data bytea[], p_metadata bytea[], p_causation uuid[],
    p_correlation uuid[], p_created timestamptz[], p_json boolean, p_notify boolean,
    OUT status int, OUT version bigint, OUT first_position bigint, OUT event_id uuid)
LANGUAGE plpgsql SET enable_seqscan = off SET jit = off AS $fn$
DECLARE
  n int := coalesce(cardinality(p_ids), 0);
  cur bigint;
  deleted timestamptz;
  dup uuid;
  me bigint;
  done text;
BEGIN
  first_position := 0;
  IF n > 0 THEN
    UPDATE {s}.streams s SET version = s.version + n
     WHERE s.stream_id = p_stream AND s.deleted_at IS NULL
       AND (p_kind = 0 OR p_kind = 2 OR (p_kind = 3 AND s.version = p_expected))
       AND NOT EXISTS (SELECT 1 FROM {s}.events e WHERE e.event_id = ANY (p_ids))
       AND (n = 1 OR (SELECT count(DISTINCT i) FROM unnest(p_ids) i) = n)
    RETURNING s.version - n INTO cur;
  END IF;
  IF n = 0 OR NOT FOUND THEN
    IF n > 0 THEN
      SELECT e.event_id INTO dup FROM {s}.events e WHERE e.event_id = ANY (p_ids) LIMIT 1;
      IF dup IS NULL AND n > 1 THEN
        SELECT i INTO dup FROM unnest(p_ids) i GROUP BY i HAVING count(*) > 1 LIMIT 1;
      END IF;
    END IF;
    LOOP
      IF n > 0 AND dup IS NULL THEN
        UPDATE {s}.streams s SET version = s.version + n
         WHERE s.stream_id = p_stream AND s.deleted_at IS NULL
           AND (p_kind = 0 OR p_kind = 2 OR (p_kind = 3 AND s.version = p_expected))
        RETURNING s.version - n INTO cur;
        EXIT WHEN FOUND;
      END IF;
      SELECT s.version, s.deleted_at INTO cur, deleted FROM {s}.streams s
       WHERE s.stream_id = p_stream;
      IF FOUND THEN
        status := CASE WHEN deleted IS NOT NULL THEN 4
                       WHEN p_kind = 1 THEN 2
                       WHEN p_kind = 3 AND p_expected <> cur THEN 1
                       WHEN dup IS NOT NULL THEN 5
                       ELSE 0 END;
        IF status = 0 AND n > 0 THEN
          CONTINUE;
        END IF;
        version := cur;
        event_id := dup;
        RETURN;
      END IF;
      status := CASE WHEN p_kind = 2 THEN 3
                     WHEN p_kind = 3 AND p_expected <> 0 THEN 1
                     WHEN dup IS NOT NULL THEN 5
                     ELSE 0 END;
      IF status <> 0 OR n = 0 THEN
        version := 0;
        event_id := dup;
        RETURN;
      END IF;
      INSERT INTO {s}.streams (stream_id, version) VALUES (p_stream, n)
        ON CONFLICT (stream_id) DO NOTHING;
      cur := 0;
      EXIT WHEN FOUND;
    END LOOP;
  END IF;
  status := 0;
  version := cur + n;
  me := pg_current_xact_id()::text::bigint;
  done := pg_advisory_xact_lock_shared({ns}::bigint << 32 | (me & 4294967295))::text;
  first_position := {s}.reserve_positions(me, n);
  IF n = 1 THEN
    INSERT INTO {s}.events (position, event_id, stream_id, stream_version, type, data, metadata,
                            causation_id, correlation_id, created_at, data_json)
    VALUES (first_position, p_ids[1], p_stream, cur + 1, p_types[1], p_data[1], p_metadata[1],
            p_causation[1], p_correlation[1], p_created[1],
            CASE WHEN p_json THEN convert_from(p_data[1], 'UTF8')::jsonb END);
  ELSE
    INSERT INTO {s}.events (position, event_id, stream_id, stream_version, type, data, metadata,
                            causation_id, correlation_id, created_at, data_json)
    SELECT first_position + r.o - 1, r.id, p_stream, cur + r.o, r.t, r.d, r.m, r.c, r.k, r.ts,
           CASE WHEN p_json THEN convert_from(r.d, 'UTF8')::jsonb END
      FROM unnest(p_ids, p_types, p_data, p_metadata, p_causation, p_correlation, p_created)
           WITH ORDINALITY AS r(id, t, d, m, c, k, ts, o);
  END IF;
  IF p_notify THEN
    done := pg_notify('{channel}', '')::text;
  END IF;
END
$fn$;
CREATE OR REPLACE FUNCTION {s}.probe_watermark(OUT last_reserved bigint, OUT writers text)
LANGUAGE plpgsql SET enable_seqscan = off SET jit = off AS $fn$
DECLARE
  published bigint;
  snap pg_snapshot;
  x bigint;
  bound bigint;
  marked text[] := '{{}}';
BEGIN
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'reading $all needs READ COMMITTED, not %',
      current_setting('transaction_isolation') USING ERRCODE = 'GBISO';
  END IF;
  last_reserved := coalesce(pg_sequence_last_value({positions_literal}::regclass), 0);
  published := coalesce(pg_sequence_last_value({xids_literal}::regclass), 0);
  snap := pg_current_snapshot();
  BEGIN
    FOR x IN SELECT i::text::bigint FROM pg_snapshot_xip(snap) i
             UNION ALL
             SELECT g FROM generate_series(pg_snapshot_xmax(snap)::text::bigint, published) g
    LOOP
      IF NOT pg_try_advisory_xact_lock({ns}::bigint << 32 | (x & 4294967295)) THEN
        bound := NULL;
        SELECT w.last_reserved INTO bound FROM {s}.watermark_log w
         WHERE w.writer_xid < x ORDER BY w.writer_xid DESC LIMIT 1;
        marked := marked || (x::text || ':' || coalesce(bound::text, ''));
      END IF;
    END LOOP;
    RAISE SQLSTATE 'GBPRB';
  EXCEPTION WHEN SQLSTATE 'GBPRB' THEN
    NULL;  -- the subtransaction is gone and with it every try-lock taken
  END;
  writers := array_to_string(marked, ',');
END
$fn$;
)sql";

}  // namespace

namespace {

std::vector<repo::Migration> build_migrations(std::string_view schema) {
  const postgres_detail::SqlNames names(schema);
  const std::string functions = expand(kAppendFunction, names) + expand(kLinkFunction, names) +
                                expand(kDeleteFunction, names) + expand(kProbeFunction, names) +
                                expand(kRecordFunction, names);
  std::vector<repo::Migration> migrations;
  migrations.push_back({1, "create_event_store", expand(kCreateTables, names) + functions});
  migrations.push_back({2, "no_jit_in_functions", expand(kNoJitInFunctions, names)});
  migrations.push_back({3, "recreate_functions",
                        expand(kConvergeTables, names) + expand(kDropFunctions, names) + functions +
                            expand(kNoJitInFunctions, names)});
  migrations.push_back({4, "fence_subscription_leases", expand(kFenceSubscriptionLeases, names)});
  migrations.push_back({5, "append_only_events", expand(kAppendOnlyEvents, names)});
  migrations.push_back({6, "transaction_scoped_locks", expand(kTransactionScopedLocks, names)});
  const postgres_detail::SqlNames names_31_bits =
      names.with_lock_namespace(lock_namespace_31_bits(schema));
  for (const auto& earlier : postgres_detail::earlier_migration_texts()) {
    const bool wide = earlier.lock_namespace == postgres_detail::LockNamespaceBits::thirty_one;
    migrations[static_cast<std::size_t>(earlier.version - 1)].earlier_checksums.push_back(
        repo::Migrator::checksum(expand(earlier.sql, wide ? names_31_bits : names)));
  }
  return migrations;
}

// Building a set hashes ~120 KB (today's texts and every earlier released one) and a test process
// builds it several times for one schema (the harness's template key and check, each store's
// start): ~2 ms of CPU per process. The last few schemas' migrators are kept; schema isolation
// makes one store per prepared schema, so the cache is small and evicts the oldest.
constexpr std::size_t kCachedSchemas = 4;

std::shared_ptr<const repo::Migrator> cached_migrator(std::string_view schema) {
  static std::mutex mutex;
  static std::deque<std::pair<std::string, std::shared_ptr<const repo::Migrator>>> cache;
  {
    std::lock_guard lock(mutex);
    for (const auto& [name, migrator] : cache)
      if (name == schema) return migrator;
  }
  repo::MigratorOptions options;
  options.table = std::string(kPostgresMigrationsTable);
  options.schema = std::string(schema);
  auto migrator =
      std::make_shared<const repo::Migrator>(build_migrations(schema), std::move(options));
  std::lock_guard lock(mutex);
  cache.emplace_back(std::string(schema), migrator);
  if (cache.size() > kCachedSchemas) cache.pop_front();
  return migrator;
}

}  // namespace

std::vector<repo::Migration> postgres_event_store_migrations(std::string_view schema) {
  return cached_migrator(schema)->migrations();
}

repo::Migrator postgres_event_store_migrator(std::string_view schema) {
  return *cached_migrator(schema);
}

}  // namespace gamebot::eventstore
