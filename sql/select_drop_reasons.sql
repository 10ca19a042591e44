-- Drop reasons per stage, most frequent first.
SELECT d.stage, d.reason, count(*) AS files
FROM decisions AS d
LEFT JOIN stages AS s ON d.stage = s.stage
WHERE NOT d.kept
GROUP BY d.stage, s.stage_order, d.reason
ORDER BY s.stage_order NULLS LAST, files DESC, d.reason;
