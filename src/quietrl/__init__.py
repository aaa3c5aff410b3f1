"""quietrl: reference implementations of six RL results from May 2026.

Sub-packages (each imported only when used): ``prefrl``, ``proofsearch``, ``goalgen``, ``arms``, ``leo``,
``precise``. Shared infrastructure lives in :mod:`quietrl.core`.
"""

__version__ = "0.1.0"
