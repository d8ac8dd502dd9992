"""uba: warehouse-native user-behavior analytics (the project's Python package)."""

# First, so that its process-wide defaults (OpenMP's wait policy) are set before LightGBM or
# scikit-learn load their thread libraries.
from python_models import config as _config  # noqa: F401
