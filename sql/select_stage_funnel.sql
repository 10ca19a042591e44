-- Files seen, kept and dropped per stage, in stage order.
SELECT
    d.stage,
    count(*) AS files,
    count(*) FILTER (WHERE d.kept) AS kept,
    count(*) FILTER (WHERE NOT d.kept) AS dropped
FROM decisions AS d
LEFT JOIN stages AS s ON d.stage = s.stage
GROUP BY d.stage, s.stage_order
ORDER BY s.stage_order NULLS LAST, d.stage;
