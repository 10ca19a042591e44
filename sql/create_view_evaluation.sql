-- Benchmark evaluation: one row per executed sample (greedy, so one per task and checkpoint).
CREATE OR REPLACE VIEW evaluation AS
SELECT checkpoint, phase, benchmark, task_id, passed, result, completion, sandbox, seconds,
       generator, completion_tokens
FROM read_parquet({table_glob}, union_by_name = true);
