"""Dagster code location: one asset graph from raw event files to published score tables."""
