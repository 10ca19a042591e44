-- Benchmark overlap found by decontamination.
CREATE OR REPLACE VIEW contamination AS
SELECT doc_id, benchmark, task_id, evidence
FROM read_parquet({table_glob}, union_by_name = true);
