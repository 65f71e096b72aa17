-- Why: several replicas may run against one PostgreSQL database, each source's syncs
-- under a lease row (see migrations/postgres/0005_leases.sql). SQLite serves a single
-- process (a lock file next to the database refuses a second one), so the lease code is
-- a no-op here; the table exists so both schemas keep the same tables and numbering.

CREATE TABLE leases (
    source          TEXT PRIMARY KEY,
    holder          TEXT,
    expires_at      INTEGER,              -- unix seconds (unused on SQLite)
    taken_at        INTEGER,
    sync_tick       INTEGER,
    reconcile_tick  INTEGER
);
