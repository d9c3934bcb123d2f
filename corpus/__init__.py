"""Corpus stage: read news sources, clean, detect language, deduplicate, store, chunk."""
