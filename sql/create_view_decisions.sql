-- One row per file per stage that looked at it.
CREATE OR REPLACE VIEW decisions AS
SELECT doc_id, stage, kept, reason, detail, "partition"
FROM read_parquet({table_glob}, union_by_name = true);
