-- Why: the first schema. Records as the API sent them, each stream's cursor beside
-- them, every record's contribution to each measure, and one value per (measure, period).
-- Same tables and columns as migrations/sqlite/0001_initial.sql.

CREATE TABLE streams (
    id              BIGSERIAL PRIMARY KEY,
    source          TEXT NOT NULL,
    stream          TEXT NOT NULL,
    cursor          TEXT,
    last_sync_at    BIGINT,
    last_success_at BIGINT,
    last_error      TEXT,
    UNIQUE (source, stream)
);

CREATE TABLE records (
    id        BIGSERIAL PRIMARY KEY,
    stream_id BIGINT NOT NULL REFERENCES streams (id),
    key       TEXT NOT NULL,
    data      TEXT NOT NULL,            -- kept as text: byte for byte what the API sent
    UNIQUE (stream_id, key)
);

CREATE TABLE measures (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    definition TEXT NOT NULL
);

CREATE TABLE measure_inputs (
    measure_id   BIGINT NOT NULL,
    period_start BIGINT NOT NULL,
    record_id    BIGINT NOT NULL,
    event_time   BIGINT NOT NULL,
    num          DOUBLE PRECISION,
    txt          TEXT,
    PRIMARY KEY (measure_id, period_start, record_id)
);

CREATE TABLE measure_values (
    measure_id   BIGINT NOT NULL,
    period_start BIGINT NOT NULL,
    value        DOUBLE PRECISION,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (measure_id, period_start)
);

CREATE TABLE dirty_periods (
    measure_id   BIGINT NOT NULL,
    period_start BIGINT NOT NULL,
    PRIMARY KEY (measure_id, period_start)
);

CREATE TABLE sync_runs (
    id          BIGSERIAL PRIMARY KEY,
    source      TEXT NOT NULL,
    trigger     TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    result      TEXT,
    records     BIGINT NOT NULL DEFAULT 0,
    pages       BIGINT NOT NULL DEFAULT 0,
    error       TEXT
);
CREATE INDEX sync_runs_by_source ON sync_runs (source, started_at);
