"""The web UI for runs: ``conveyor ui`` on a laptop, the same pages on the server."""
