-- A file's decisions in stage order.
SELECT d.stage, d.kept, d.reason, d.detail, d."partition"
FROM decisions AS d
LEFT JOIN stages AS s ON d.stage = s.stage
WHERE d.doc_id = $doc_id
ORDER BY s.stage_order NULLS LAST, d.stage;
