-- Why: QuickBooks and Xero rotate refresh tokens: every refresh returns a new one and
-- invalidates the old. The newest token must survive a crash or a restart, so it lives
-- here, written before the access token it came with is used.

CREATE TABLE oauth_tokens (
    source         TEXT PRIMARY KEY,
    -- The refresh token the configuration held when this chain of tokens started; a
    -- different one in the configuration means the user authorized again.
    seed           TEXT NOT NULL,
    refresh_token  TEXT NOT NULL,       -- the newest refresh token
    access_token   TEXT,                -- the access token that came with it
    expires_at     INTEGER,             -- when the access token expires, unix seconds
    updated_at     INTEGER NOT NULL     -- unix seconds
);
