"""Typed configuration, the one loader: TOML tables → frozen dataclasses, validated where they enter.

``load(path)`` reads a TOML file; ``build(cls, table, where)`` turns one table into dataclass
`cls`, coercing each value to its field's type (numbers, strings, booleans, paths, tuples, nested
dataclasses, enums, tables of (key, value) pairs) and rejecting unknown keys, wrongly typed
values and values the dataclass's own checks refuse. Every error is a :class:`ConfigError` — an
``InvalidArgument`` — whose field is the key's dotted path (``router.port``, ``pools[1].token_ms``),
so the same checks serve config files, scenarios and the Admin API alike. Paths in a config are
relative to the config file's folder.

Pure: the standard library and tandem.errors only (the routing policy loads through it too).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from tandem.errors import InvalidArgument

T = TypeVar("T")


class ConfigError(InvalidArgument):
    """A configuration file or value is invalid; `field` is the key's dotted path."""


def load(path: Path | str | None) -> dict[str, Any]:
    """The TOML file's tables (with ``__dir__``, the file's folder, for relative paths); {} for None."""
    if path is None:
        return {}
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(str(path), "config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    data["__dir__"] = str(path.resolve().parent)
    return data


def _key(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def build(
    cls: type[T],
    table: typing.Mapping[str, Any] | None,
    where: str,
    base_dir: Path | None = None,
    *,
    base: T | None = None,
    require_all: bool = False,
) -> T:
    """Instantiate dataclass `cls` from `table`. Missing keys take `base`'s values (default: the
    dataclass defaults) — or, with `require_all`, are an error (files where every number must be
    written down). Raises ConfigError naming the key."""
    if not isinstance(table, typing.Mapping) and table is not None:
        raise ConfigError(where, f"expected a table, got {table!r}")
    table = dict(table or {})
    table.pop("__dir__", None)
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(_key(where, unknown[0]), f"unknown key; known: {', '.join(fields)}")
    if require_all:
        missing = [n for n in fields if n not in table]
        if missing:
            raise ConfigError(_key(where, missing[0]), "missing (every value of this table must be given)")
    kwargs = {
        name: coerce(hints[name], value, _key(where, name), base_dir, require_all)
        for name, value in table.items()
    }
    try:
        return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)
    except InvalidArgument as exc:  # the dataclass's own checks name a field relative to it
        raise ConfigError(_key(where, exc.field) if exc.field else where, exc.detail) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(where, str(exc)) from None


def coerce(tp: Any, value: Any, where: str, base_dir: Path | None = None, require_all: bool = False) -> Any:
    """`value` as type `tp`, or ConfigError(where). Nested tables are built with `require_all` too."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return coerce(args[0], value, where, base_dir, require_all)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, where, base_dir, require_all=require_all)  # type: ignore[arg-type]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise ConfigError(
                where, f"must be one of {', '.join(str(m.value) for m in tp)}, got {value!r}"
            ) from None
    if origin in (tuple, list):
        args = typing.get_args(tp) or (Any,)
        if isinstance(value, dict) and typing.get_origin(args[0]) is tuple:  # a table for (key, value) pairs
            value = [list(kv) for kv in sorted(value.items())]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(where, f"expected an array, got {value!r}")
        if origin is tuple and len(args) > 1 and args[-1] is not Ellipsis:  # a fixed shape: tuple[str, float]
            if len(value) != len(args):
                raise ConfigError(where, f"expected {len(args)} items, got {len(value)}")
            return tuple(
                coerce(a, v, f"{where}[{i}]", base_dir, require_all)
                for i, (a, v) in enumerate(zip(args, value))
            )
        items = [coerce(args[0], v, f"{where}[{i}]", base_dir, require_all) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(where, "expected a table")
        _, vt = typing.get_args(tp)
        return {k: coerce(vt, v, f"{where}.{k}", base_dir, require_all) for k, v in value.items()}
    if tp is Path:
        if not isinstance(value, str):
            raise ConfigError(where, "expected a path string")
        p = Path(value).expanduser()
        return p if p.is_absolute() or base_dir is None else (base_dir / p)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(where, f"must be true or false, got {value!r}")
        return value
    if tp in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(where, f"must be a finite number, got {value!r}")
        if tp is int:
            if value != int(value):
                raise ConfigError(where, f"must be an integer, got {value!r}")
            return int(value)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(where, f"must be a string, got {value!r}")
        return value
    return value
