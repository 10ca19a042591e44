-- Phase-3 synthetic documents and their seeds.
CREATE OR REPLACE VIEW synthetic AS
SELECT doc_id, seed_doc_ids, generator, prompt_id, kept, reason
FROM read_parquet({table_glob}, union_by_name = true);
