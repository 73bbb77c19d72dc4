"""The strict YAML reader for sweep files and `train --config`: one-line errors for what PyYAML lets through.

PyYAML keeps the last of two equal keys (a typo'd duplicate silently wins), recurses once per nesting level (a file
of 50,000 `[` ends in a RecursionError traceback), and reads files of any size into memory. Here duplicate keys,
nesting deeper than `MAX_DEPTH` and files over `MAX_BYTES` are refused before anything is built from them, and
only regular files are read: opening a FIFO blocks until a writer appears (forever, for a typo'd path), and a
device may never end.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from dqn_core.errors import ConfigError, shown

MAX_BYTES = 1 << 20  # a sweep file is a few hundred bytes; 1 MiB leaves room for long choice lists
MAX_DEPTH = 32  # sweep files nest three levels deep


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key; PyYAML reports it below
                duplicate = False
            if duplicate:
                raise ConfigError(f"duplicate key '{key}' at line {key_node.start_mark.line + 1}")
            with contextlib.suppress(TypeError):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_mapping(path: str | Path) -> dict[str, Any]:
    """The mapping a YAML file holds ({} for an empty file); every problem is one ConfigError naming the file.

    The one YAML reader: sweep files (`run --config`), `--base-config`, `--enqueue` and `train --config` all come
    through here, so each is refused the same way when it is not a regular file."""
    path = Path(path)
    raw = _read_regular_file(path)
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"{shown(path)}: larger than {MAX_BYTES // 1024} KiB; not a sweep file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{shown(path)}: not UTF-8 text") from None
    _check_depth(text, path)
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except ConfigError as exc:
        raise ConfigError(f"{shown(path)}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise ConfigError(f"{shown(path)}: invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{shown(path)}: nested too deeply (at most {MAX_DEPTH} levels)") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{shown(path)}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def _read_regular_file(path: Path) -> bytes:
    """At most MAX_BYTES + 1 bytes of `path`, which must be a regular file (links followed).

    The type is checked with stat() before the file is opened (opening a FIFO would block), and again on the open
    descriptor, opened non-blocking, in case the path was swapped in between."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {shown(path)}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {shown(path)}: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"config file {shown(path)} is a folder")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{shown(path)}: {_kind(info.st_mode)}, not a regular file; name a YAML file")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {shown(path)}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ConfigError(f"{shown(path)}: {_kind(mode)}, not a regular file; name a YAML file")
        try:
            return handle.read(MAX_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {shown(path)}: {exc.strerror}") from None


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _check_depth(text: str, path: Path) -> None:
    """Nesting depth from the event stream (flat, no recursion), before the recursive composer runs."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise ConfigError(f"{shown(path)}: nested too deeply (at most {MAX_DEPTH} levels)")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return  # the loader reports the syntax error with its line
