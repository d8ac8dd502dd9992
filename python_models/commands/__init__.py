"""The `uba` commands that drive the models and the pipeline: the top floor of the package
(python_models.cli routes to them; nothing below imports them)."""
