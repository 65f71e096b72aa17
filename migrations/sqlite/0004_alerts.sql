-- Why: alerts people trust need memory. The state of every alert (so a restart neither
-- re-sends nor forgets), its history, silences, and the outbox: every notification is
-- written here in the transaction of the state change that caused it, then delivered
-- (and every attempt recorded) by the dispatcher, so nothing is lost between the two.

CREATE TABLE alert_states (
    alert          TEXT PRIMARY KEY,      -- "measure:<id>", "forecast:<id>", "no_data:<id>", "stale:<source>"
    kind           TEXT NOT NULL,         -- measure | forecast | no_data | stale
    subject        TEXT NOT NULL,         -- the measure id or source name
    state          TEXT NOT NULL,         -- ok | pending | firing
    status         TEXT,                  -- the status at the last evaluation
    since          INTEGER NOT NULL,      -- when the state began, unix seconds
    pending_count  INTEGER NOT NULL DEFAULT 0,
    period_start   INTEGER,               -- the judged period at the last evaluation
    value          REAL,
    last_notified  INTEGER,               -- the last firing or reminder notification
    updated_at     INTEGER NOT NULL
);

CREATE TABLE alert_history (
    id      INTEGER PRIMARY KEY,
    alert   TEXT NOT NULL,
    at      INTEGER NOT NULL,
    event   TEXT NOT NULL,                -- firing | reminder | resolved | forecast | ... (notify::EventKind)
    status  TEXT,
    value   REAL,
    period_start INTEGER,
    silenced INTEGER NOT NULL DEFAULT 0,  -- 1 when a silence kept it from being sent
    message TEXT                          -- the outbox message that carries it, if any
);
CREATE INDEX alert_history_by_alert ON alert_history (alert, at);

CREATE TABLE silences (
    subject    TEXT PRIMARY KEY,          -- a measure id (its measure, forecast and no-data alerts)
    until      INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,     -- msg_...: the webhook-id, stable across attempts
    channel         TEXT NOT NULL,        -- [notify.NAME]
    kind            TEXT NOT NULL,        -- alerts | digest | test
    body            TEXT NOT NULL,        -- the notify::Notification as JSON
    created_at      INTEGER NOT NULL,
    not_before      INTEGER NOT NULL,     -- group wait / interval: not sent before this
    next_attempt_at INTEGER NOT NULL,     -- also the claim of a dispatcher working on it
    attempts        INTEGER NOT NULL DEFAULT 0,
    status          TEXT NOT NULL,        -- pending | delivered | failed | expired
    last_error      TEXT,
    finished_at     INTEGER,
    expires_at      INTEGER NOT NULL      -- give up after this
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_by_channel ON outbox (channel, created_at);

CREATE TABLE deliveries (
    id       INTEGER PRIMARY KEY,
    message  TEXT NOT NULL,               -- outbox.id
    attempt  INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    result   TEXT NOT NULL,               -- delivered | retry | failed | gone | expired
    error    TEXT
);
CREATE INDEX deliveries_by_message ON deliveries (message, attempt);

CREATE TABLE channels (
    name        TEXT PRIMARY KEY,
    disabled_at INTEGER,                  -- set when the receiver answered 410 Gone
    reason      TEXT,
    target      TEXT                      -- the address that was gone; a new one re-enables
);

CREATE TABLE digests (
    channel   TEXT PRIMARY KEY,
    sent_at   INTEGER NOT NULL,
    statuses  TEXT NOT NULL               -- JSON {measure id: status} at that digest
);
