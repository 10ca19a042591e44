"""Tokens: the tokenizer, tokenized and packed shards, and the phase manifest."""
