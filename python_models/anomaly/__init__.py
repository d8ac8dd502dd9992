"""anomaly model."""
