-- Why: `scorekeeper backfill --since DATE` re-pulls a stream's history. The start of a
-- backfill in progress is kept beside the cursor so an interrupted backfill resumes
-- (any sync of the stream continues it) instead of starting over or being forgotten.

ALTER TABLE streams ADD COLUMN backfill_since BIGINT;  -- unix seconds; NULL when none
