"""Talking to a conveyor server: CLI profiles and an HTTP client."""
