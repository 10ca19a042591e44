-- Greedy pass@1 per checkpoint and benchmark (one sample per task: the share passed).
SELECT phase, checkpoint, benchmark, count(*) AS tasks, count(*) FILTER (WHERE passed) AS passed,
       round(100.0 * avg(passed::INTEGER), 2) AS pass_at_1, any_value(sandbox) AS sandbox
FROM evaluation
GROUP BY ALL
ORDER BY phase, benchmark;
