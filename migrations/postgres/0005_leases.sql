-- Why: several replicas may run against one PostgreSQL database. Each source's syncs
-- (scheduled, reconcile, manual) run under a lease row: one holder (a per-process
-- replica id) until `expires_at` (the database's clock, never a replica's), renewed
-- while the sync runs and released when it ends. The last scheduled tick taken for each
-- job is kept beside it, so a replica that wakes late does not run a tick another
-- replica already ran. A replica that dies stops renewing; the lease expires and the
-- next tick runs elsewhere, from the last committed cursor.

CREATE TABLE leases (
    source          TEXT PRIMARY KEY,     -- [sources.NAME]
    holder          TEXT,                 -- replica id; NULL when released
    expires_at      TIMESTAMPTZ,          -- now() + TTL at the last take or renewal
    taken_at        TIMESTAMPTZ,
    sync_tick       BIGINT,               -- the last scheduled tick taken (unix seconds)
    reconcile_tick  BIGINT                -- the same for reconcile_schedule
);
