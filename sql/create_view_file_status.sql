-- The latest fate of each file: the first stage that dropped it, else the last stage that kept it.
-- A file with no decision at all shows kept = NULL and reason 'undecided' (an asset check fails).
CREATE OR REPLACE VIEW file_status AS
WITH ranked AS (
    SELECT
        d.doc_id,
        d.stage,
        d.kept,
        d.reason,
        d.detail,
        row_number() OVER (
            PARTITION BY d.doc_id
            ORDER BY
                CASE WHEN d.kept THEN 1 ELSE 0 END,
                CASE WHEN d.kept THEN -coalesce(s.stage_order, 999) ELSE coalesce(s.stage_order, 999) END
        ) AS rn
    FROM decisions AS d
    LEFT JOIN stages AS s ON d.stage = s.stage
)
SELECT
    f.doc_id,
    f.source,
    f.repo,
    f.path,
    f.lang,
    r.kept,
    r.stage,
    coalesce(r.reason, CASE WHEN r.doc_id IS NULL THEN 'undecided' END) AS reason,
    r.detail
FROM files AS f
LEFT JOIN ranked AS r ON f.doc_id = r.doc_id AND r.rn = 1;
