"""Argo Workflows: render any pipeline as a Workflow, submit it, follow it."""
