-- Files matching a doc_id or `<repo>/<path>` (repo names may themselves contain '/').
SELECT doc_id, source, "partition", repo, path, lang, bytes, content_sha
FROM files
WHERE doc_id = $ref OR repo || '/' || path = $ref
ORDER BY source, repo, path;
