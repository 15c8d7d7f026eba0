"""Helpers for running SPHEREx pipelines under ctrl_bps (see ``bps/`` at the top of the repository)."""
