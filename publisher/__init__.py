"""Pub/Sub publishing for ingest and the dead-letter topic (see issue: Ingest)."""
