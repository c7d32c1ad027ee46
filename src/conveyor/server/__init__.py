"""The conveyor server: HTTP API, users and tokens, a run queue in the database, workers."""
