"""Training: checkpoint assets that run snowcoder_train through Dagster Pipes."""
