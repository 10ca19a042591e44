-- Phase 3's prompts by generator and fate (a reason without its detail), most frequent first.
SELECT generator, kept, split_part(coalesce(reason, ''), ':', 1) AS reason, count(*) AS prompts
FROM synthetic
GROUP BY ALL
ORDER BY prompts DESC, reason;
