"""Phase 2: quality annotation of the phase-1 corpus and top-k selection of its best files."""
