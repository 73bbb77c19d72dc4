"""Errors that reach users as one readable line (the CLI prints them without a traceback)."""


class ConfigError(ValueError):
    """A configuration problem: an invalid value, an unknown key, an unusable environment or file."""
