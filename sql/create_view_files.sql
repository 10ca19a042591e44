-- Every file ever read, one row per file (written by raw_files).
CREATE OR REPLACE VIEW files AS
SELECT doc_id, source, "partition", repo, path, lang, bytes, content_sha
FROM read_parquet({table_glob}, union_by_name = true);
