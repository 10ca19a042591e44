-- The order in which stages look at a file (snowcoder_assets/lineage/schemas.py STAGE_ORDER).
CREATE OR REPLACE VIEW stages AS
SELECT stage, stage_order
FROM (VALUES {stage_rows}) AS s (stage, stage_order);
