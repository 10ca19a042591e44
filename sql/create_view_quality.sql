-- Phase-2 quality scores and top-k selection.
CREATE OR REPLACE VIEW quality AS
SELECT doc_id, annotator, score, rank, selected, repeats
FROM read_parquet({table_glob}, union_by_name = true);
