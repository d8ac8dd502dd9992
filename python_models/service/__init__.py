"""The scoring service (`uba serve`): stored scores from the published warehouse, the next
action from posted events (features by the feature mart's own compiled SQL), trigger rules with
per-user rate limits and an audit of what fired. See app.py."""
