"""Infrastructure shared by two or more quietrl sub-packages.

Importing this package is cheap: modules that need JAX or matplotlib import them inside functions or are
imported on demand (``quietrl.core.checkpoint``, ``quietrl.core.train``, ``quietrl.core.plotting``).
"""

from quietrl.core.errors import CheckpointMismatch, ConfigError, UserError
from quietrl.core.summary import Row

__all__ = ["UserError", "ConfigError", "CheckpointMismatch", "Row"]
