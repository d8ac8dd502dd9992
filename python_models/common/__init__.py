"""Shared pieces of the ML models: registry, artifacts, metrics, reasons, plots, drift."""
