"""Error types: quietrl.core.errors when core is present, a local stand-in otherwise.

The stand-ins keep the library importable and testable before core lands; the CLI maps both to exit 2.
"""
from __future__ import annotations

try:  # pragma: no cover - depends on whether core has landed
    from quietrl.core.errors import CheckpointMismatch, ConfigError, UserError  # type: ignore
except Exception:  # pragma: no cover
    class UserError(Exception):
        """Bad input from the user (one-line message)."""

        exit_code = 2

    class ConfigError(UserError):
        """Invalid configuration field."""

    class CheckpointMismatch(UserError):
        """Checkpoint of another model kind, config or shapes."""

__all__ = ["UserError", "ConfigError", "CheckpointMismatch"]
