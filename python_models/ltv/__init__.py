"""ltv model."""
