"""Typed configuration: TOML sections → frozen dataclasses, validated once at start-up.

``load(path)`` reads a TOML file; ``build(cls, table, where)`` turns one table into a dataclass,
rejecting unknown keys and wrongly typed values with a ConfigError naming the key (``router.port``).
Paths in a config are relative to the config file's folder.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from tandem.errors import InvalidArgument

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or value is invalid; the message names the key."""


def load(path: Path | str | None) -> dict[str, Any]:
    if path is None:
        return {}
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    data["__dir__"] = str(path.resolve().parent)
    return data


def build(cls: type[T], table: dict[str, Any] | None, where: str, base_dir: Path | None = None) -> T:
    """Instantiate dataclass `cls` from `table` (missing keys take the dataclass defaults)."""
    table = dict(table or {})
    table.pop("__dir__", None)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
    kwargs = {name: _coerce(hints[name], value, f"{where}.{name}", base_dir) for name, value in table.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, InvalidArgument) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _coerce(tp: Any, value: Any, where: str, base_dir: Path | None) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, where, base_dir)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table")
        return build(tp, value, where, base_dir)
    if origin in (tuple, list):
        args = typing.get_args(tp) or (Any,)
        if isinstance(value, dict) and typing.get_origin(args[0]) is tuple:  # a table for (key, value) pairs
            value = [list(kv) for kv in sorted(value.items())]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        if origin is tuple and len(args) > 1 and args[-1] is not Ellipsis:  # a fixed shape: tuple[str, float]
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(
                _coerce(a, v, f"{where}[{i}]", base_dir) for i, (a, v) in enumerate(zip(args, value))
            )
        items = [_coerce(args[0], v, f"{where}[{i}]", base_dir) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table")
        _, vt = typing.get_args(tp)
        return {k: _coerce(vt, v, f"{where}.{k}", base_dir) for k, v in value.items()}
    if tp is Path:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a path string")
        p = Path(value).expanduser()
        return p if p.is_absolute() or base_dir is None else (base_dir / p)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value
