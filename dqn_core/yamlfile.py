"""The strict YAML reader for sweep files and `train --config`: one-line errors for what PyYAML lets through.

PyYAML keeps the last of two equal keys (a typo'd duplicate silently wins), recurses once per nesting level (a file
of 50,000 `[` ends in a RecursionError traceback), and reads files of any size into memory. Here duplicate keys,
nesting deeper than `MAX_DEPTH` and files over `MAX_BYTES` are refused before anything is built from them.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import yaml

from dqn_core.errors import ConfigError

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
    """The mapping a YAML file holds ({} for an empty file); every problem is one ConfigError naming the file."""
    path = Path(path)
    try:
        if path.is_dir():
            raise ConfigError(f"config file {path} is a folder")
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_BYTES // 1024} KiB; not a sweep file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    _check_depth(text, path)
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply (at most {MAX_DEPTH} levels)") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def _check_depth(text: str, path: Path) -> None:
    """Nesting depth from the event stream (flat, no recursion), before the recursive composer runs."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise ConfigError(f"{path}: nested too deeply (at most {MAX_DEPTH} levels)")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return  # the loader reports the syntax error with its line
