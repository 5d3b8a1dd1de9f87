
CREATE SCHEMA IF NOT EXISTS {s};
CREATE SEQUENCE {s}.positions AS bigint MINVALUE 1 NO CYCLE;
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
  violated text;
BEGIN
  first_position := 0;
  IF n > 0 THEN
    SELECT e.event_id INTO dup FROM {s}.events e WHERE e.event_id = ANY (p_ids) LIMIT 1;
    IF dup IS NULL AND n > 1 THEN
      SELECT i INTO dup FROM unnest(p_ids) i GROUP BY i HAVING count(*) > 1 LIMIT 1;
    END IF;
  END IF;
  BEGIN
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
    PERFORM pg_advisory_xact_lock_shared(
        {ns}::bigint << 32 | (pg_current_xact_id()::text::bigint & 4294967295));
    BEGIN
      PERFORM pg_advisory_xact_lock({ns}::bigint << 32);
      first_position := nextval('{s}.positions');
      IF n > 1 THEN
        PERFORM setval('{s}.positions', first_position + n - 1);
      END IF;
      RAISE SQLSTATE 'GBRSV';
    EXCEPTION WHEN SQLSTATE 'GBRSV' THEN
      NULL;
    END;
    INSERT INTO {s}.events (position, event_id, stream_id, stream_version, type, data, metadata,
                            causation_id, correlation_id, created_at, data_json)
    SELECT first_position + r.o - 1, r.id, p_stream, cur + r.o, r.t, r.d, r.m, r.c, r.k, r.ts,
           CASE WHEN p_json THEN convert_from(r.d, 'UTF8')::jsonb END
      FROM unnest(p_ids, p_types, p_data, p_metadata, p_causation, p_correlation, p_created)
           WITH ORDINALITY AS r(id, t, d, m, c, k, ts, o);
    IF p_notify THEN
      PERFORM pg_notify('{channel}', '');
    END IF;
  EXCEPTION WHEN unique_violation THEN
    GET STACKED DIAGNOSTICS violated = CONSTRAINT_NAME;
    IF violated = 'events_event_id_key' THEN
      status := 5;
      SELECT e.event_id INTO event_id FROM {s}.events e WHERE e.event_id = ANY (p_ids) LIMIT 1;
    ELSIF violated = 'events_stream_version_key' THEN
      status := 1;
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

CREATE FUNCTION {s}.probe_watermark(OUT last_reserved bigint, OUT writers xid8[])
LANGUAGE plpgsql AS $fn$
DECLARE
  snap pg_snapshot;
  x xid8;
  k bigint;
BEGIN
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'reading $all needs READ COMMITTED, not %',
      current_setting('transaction_isolation') USING ERRCODE = 'GBISO';
  END IF;
  SELECT CASE WHEN p.is_called THEN p.last_value ELSE 0 END INTO last_reserved
    FROM {s}.positions p;
  snap := pg_current_snapshot();
  writers := '{{}}';
  BEGIN
    FOR x IN SELECT pg_snapshot_xip(snap) LOOP
      k := {ns}::bigint << 32 | (x::text::bigint & 4294967295);
      IF pg_try_advisory_lock(k) THEN
        PERFORM pg_advisory_unlock(k);
      ELSE
        writers := writers || x;
      END IF;
      k := NULL;
    END LOOP;
  EXCEPTION WHEN OTHERS OR query_canceled THEN
    IF k IS NOT NULL THEN
      PERFORM pg_advisory_unlock(k);
    END IF;
    RAISE;
  END;
END
$fn$;
