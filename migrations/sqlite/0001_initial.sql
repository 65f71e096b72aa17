-- Why: the first schema. Records as the API sent them, each stream's cursor beside
-- them, every record's contribution to each measure, and one value per (measure, period).
-- Integer ids keep the per-record rows compact (one record row and one input row per
-- measure are written for every record synced).

CREATE TABLE streams (
    id              INTEGER PRIMARY KEY,
    source          TEXT NOT NULL,
    stream          TEXT NOT NULL,
    -- Preset-defined JSON; written in the same transaction as the records it follows.
    cursor          TEXT,
    last_sync_at    INTEGER,            -- unix seconds
    last_success_at INTEGER,            -- unix seconds
    last_error      TEXT,
    UNIQUE (source, stream)
);

CREATE TABLE records (
    id        INTEGER PRIMARY KEY,
    stream_id INTEGER NOT NULL REFERENCES streams (id),
    key       TEXT NOT NULL,            -- primary key in the API (composite keys joined by U+001F)
    data      TEXT NOT NULL,            -- the API's JSON object, byte for byte
    UNIQUE (stream_id, key)
);

CREATE TABLE measures (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    -- What the stored inputs were computed with; a change rebuilds them.
    definition TEXT NOT NULL
);

-- One row per (measure, record) that counts for the measure.
CREATE TABLE measure_inputs (
    measure_id   INTEGER NOT NULL,
    period_start INTEGER NOT NULL,      -- unix seconds
    record_id    INTEGER NOT NULL,
    event_time   INTEGER NOT NULL,      -- unix milliseconds
    num          REAL,
    txt          TEXT,
    PRIMARY KEY (measure_id, period_start, record_id)
) WITHOUT ROWID;

CREATE TABLE measure_values (
    measure_id   INTEGER NOT NULL,
    period_start INTEGER NOT NULL,      -- unix seconds
    value        REAL,                  -- NULL: the period has no value
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (measure_id, period_start)
) WITHOUT ROWID;

-- Periods whose inputs changed and whose value is not recomputed yet. Written with the
-- records, so a crash between a page commit and the recompute loses nothing.
CREATE TABLE dirty_periods (
    measure_id   INTEGER NOT NULL,
    period_start INTEGER NOT NULL,
    PRIMARY KEY (measure_id, period_start)
) WITHOUT ROWID;

CREATE TABLE sync_runs (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    trigger     TEXT NOT NULL,          -- schedule | manual | api
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    result      TEXT,                   -- success | failed | cancelled; NULL while running
    records     INTEGER NOT NULL DEFAULT 0,
    pages       INTEGER NOT NULL DEFAULT 0,
    error       TEXT
);
CREATE INDEX sync_runs_by_source ON sync_runs (source, started_at);
