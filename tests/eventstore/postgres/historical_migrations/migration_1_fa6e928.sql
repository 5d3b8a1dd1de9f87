
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

CREATE FUNCTION {s}.append_events(p_stream text, p_kind int, p_expected bigint,
    p_ids uuid[], p_types text[], p_data bytea[], p_metadata bytea[], p_causation uuid[],
    p_correlation uuid[], p_created timestamptz[], p_json boolean, p_notify boolean,
    OUT status int, OUT version bigint, OUT first_position bigint, OUT event_id uuid)
LANGUAGE plpgsql AS $fn$
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
  status := 0;
  version := cur + n;
  me := pg_current_xact_id()::text::bigint;
  done := pg_advisory_xact_lock_shared({ns}::bigint << 32 | (me & 4294967295))::text;
  BEGIN
    done := pg_advisory_lock({ns}::bigint << 32)::text;
    IF me > coalesce(pg_sequence_last_value('{s}.writer_xids'::regclass), 0) THEN
      done := setval('{s}.writer_xids'::regclass, me)::text;
    END IF;
    first_position := nextval('{s}.positions'::regclass);
    IF n > 1 THEN
      done := setval('{s}.positions'::regclass, first_position + n - 1)::text;
    END IF;
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
LANGUAGE plpgsql AS $fn$
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

CREATE FUNCTION {s}.link_events(p_stream text, p_kind int, p_expected bigint, p_ids uuid[],
    p_notify boolean, OUT status int, OUT version bigint, OUT event_id uuid)
LANGUAGE plpgsql AS $fn$
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

CREATE FUNCTION {s}.delete_stream(p_stream text, p_kind int, p_expected bigint, p_hard boolean,
    p_notify boolean, OUT status int, OUT version bigint)
LANGUAGE plpgsql AS $fn$
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

CREATE FUNCTION {s}.probe_watermark(OUT last_reserved bigint, OUT writers text)
LANGUAGE plpgsql AS $fn$
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
  last_reserved := coalesce(pg_sequence_last_value('{s}.positions'::regclass), 0);
  published := coalesce(pg_sequence_last_value('{s}.writer_xids'::regclass), 0);
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

CREATE FUNCTION {s}.record_watermark() RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  reserved bigint;
  published bigint;
BEGIN
  reserved := coalesce(pg_sequence_last_value('{s}.positions'::regclass), 0);
  published := coalesce(pg_sequence_last_value('{s}.writer_xids'::regclass), 0);
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
