"""uba: warehouse-native user-behavior analytics (the project's Python package)."""
