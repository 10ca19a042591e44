-- What the later stages recorded about one file: clusters, contamination, quality, synthetic use.
SELECT 'dup_clusters' AS "table", to_json(c) AS row FROM dup_clusters AS c WHERE c.doc_id = $doc_id
UNION ALL
SELECT 'contamination', to_json(k) FROM contamination AS k WHERE k.doc_id = $doc_id
UNION ALL
SELECT 'quality', to_json(q) FROM quality AS q WHERE q.doc_id = $doc_id
UNION ALL
SELECT 'synthetic', to_json(y) FROM synthetic AS y WHERE list_contains(y.seed_doc_ids, $doc_id);
