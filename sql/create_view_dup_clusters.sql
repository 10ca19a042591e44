-- Exact and near duplicates: each member with its cluster's surviving representative.
CREATE OR REPLACE VIEW dup_clusters AS
SELECT doc_id, cluster_id, representative_doc_id, method, similarity
FROM read_parquet({table_glob}, union_by_name = true);
