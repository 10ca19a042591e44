"""Phase 1: filter, decontaminate and deduplicate the raw corpus."""
