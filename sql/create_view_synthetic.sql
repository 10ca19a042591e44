-- Phase-3 provenance: one row per prompt, kept or dropped with its reason, and its seeds.
CREATE OR REPLACE VIEW synthetic AS
SELECT doc_id, seed_doc_ids, generator, prompt_id, kept, reason, detail, lang, template_id,
       sampling, finish_reason, prompt_tokens, completion_tokens
FROM read_parquet({table_glob}, union_by_name = true);
