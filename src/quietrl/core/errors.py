"""Exceptions that the CLI turns into a one-line message and exit code 2."""


class UserError(Exception):
    """Bad input from the user: a config, a file, an option. The message is one line naming what and where."""

    exit_code = 2


class ConfigError(UserError):
    """An invalid configuration value, unknown key or malformed ``--set`` override."""


class CheckpointMismatch(UserError):
    """A checkpoint written for another model kind, config or parameter shapes."""
