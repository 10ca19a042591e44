-- A synthetic file by doc_id or prompt_id: its whole phase-3 row.
SELECT doc_id, seed_doc_ids, generator, prompt_id, kept, reason, detail, lang, template_id,
       sampling, finish_reason, prompt_tokens, completion_tokens
FROM synthetic
WHERE doc_id = $ref OR prompt_id = $ref;
