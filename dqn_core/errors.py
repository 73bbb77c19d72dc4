"""Errors that reach users as one readable line (the CLI prints them without a traceback)."""

import unicodedata

# What str.splitlines() breaks a line at: a message holding one of these is no longer one line.
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"


def shown(name: object) -> str:
    """A path (or any name a user chose) as a message shows it: as it is, unless it holds a line break or another
    control character; then quoted as Python's repr (`'/tmp/a\\nb'`), so the message stays one line and still
    names the file exactly (a folder may legally be called "a<newline>b")."""
    text = str(name)
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text):
        return repr(text)
    return text


def one_line(text: str) -> str:
    """`text` with every line break escaped (`\\n`): the last guard behind `shown` for a message built elsewhere."""
    return "".join(c.encode("unicode_escape").decode("ascii") if c in LINE_BREAKS else c for c in text)


class ConfigError(ValueError):
    """A configuration problem: an invalid value, an unknown key, an unusable environment or file.

    Its text is always one line (line breaks escaped), whatever path or value went into it: the CLI promises
    one line per error, and a folder name or a driver's message may hold a newline."""

    def __str__(self) -> str:
        return one_line(super().__str__())
