"""Hyperparameters as data: frozen dataclasses whose fields carry a one-line description.

open_lth's pattern (``PruningHparams`` with a sibling description per field), hashed as
canonical JSON instead of ``str()``: every config that changes a number is a frozen
dataclass whose fields are declared with ``param(default, "what it is")``; ``config_dict``
is what enters a content id, ``make_config`` builds one from a (preset's) mapping and names
the key and the valid keys when one is wrong.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any


class ConfigError(ValueError):
    """A hyperparameter key or value that a config does not accept; the message names both."""


def param(
    default: Any,
    doc: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: tuple | None = None,
) -> Any:
    """A config field with its default, a one-line description (``describe_config``) and its
    valid values: bounds ``ge`` (>=), ``gt`` (>), ``le`` (<=), ``lt`` (<) and/or ``choices``.
    ``make_config`` refuses a value outside them, naming the key and the valid range."""
    bounds = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None}
    return dataclasses.field(default=default, metadata={"doc": doc, "bounds": bounds, "choices": choices})


_BOUND_TEXT = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
_BOUND_OK = {
    "ge": lambda v, b: v >= b,
    "gt": lambda v, b: v > b,
    "le": lambda v, b: v <= b,
    "lt": lambda v, b: v < b,
}


def valid_range(f: dataclasses.Field) -> str:
    """The field's valid values in words (``>= 1``, ``> 0 and < 1``, ``one of: a, b``), or ''."""
    parts = [f"{_BOUND_TEXT[k]} {b:g}" for k, b in f.metadata.get("bounds", {}).items()]
    if f.metadata.get("choices"):
        parts.append("one of: " + ", ".join(map(str, f.metadata["choices"])))
    return " and ".join(parts)


def check_value(f: dataclasses.Field, value: Any, where: str) -> None:
    """Refuse a non-finite number or a value outside the field's declared range (``ConfigError``)."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}.{f.name}: {value!r} is not a finite number")
    choices = f.metadata.get("choices")
    bounds = f.metadata.get("bounds", {})
    in_range = all(_BOUND_OK[k](value, b) for k, b in bounds.items()) if bounds else True
    if (choices and value not in choices) or not in_range:
        raise ConfigError(f"{where}.{f.name}: {value!r} is outside its valid range; valid: {valid_range(f)}")


def config_dict(config: object) -> dict:
    """The config's fields as plain JSON values (what enters a content id)."""
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config or {})


def _expected(annotation: Any) -> tuple[type, ...]:
    """The Python types a JSON/TOML value may have for a field annotation (``"int"``, ``float | None``)."""
    names = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}
    if isinstance(annotation, str):
        out: tuple[type, ...] = ()
        for part in annotation.replace(" ", "").split("|"):
            out += names.get(part, (type(None),) if part == "None" else (object,))
        return out
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return tuple(t for a in typing.get_args(annotation) for t in _expected(a))
    if annotation is float:
        return (int, float)
    return (annotation,) if isinstance(annotation, type) else (object,)


def make_config(cls: type, values: Mapping[str, Any] | None, where: str = "config") -> Any:
    """``cls(**values)`` after checking every key and type; ``ConfigError`` names ``where.key``."""
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in values.items():
        if key not in fields:
            valid = ", ".join(fields) or "none (this config has no hyperparameters)"
            raise ConfigError(f"{where}.{key}: unknown key; valid: {valid}")
        expected = _expected(fields[key].type)
        bad_bool = isinstance(value, bool) and bool not in expected
        if bad_bool or not isinstance(value, expected):
            raise ConfigError(f"{where}.{key}: {value!r} is not of type {fields[key].type}")
        check_value(fields[key], value, where)
    try:
        config = cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    # normalise ints given for float fields, so 1 and 1.0 hash alike
    for name, f in fields.items():
        v = getattr(config, name)
        if isinstance(v, int) and not isinstance(v, bool) and _expected(f.type) == (int, float):
            object.__setattr__(config, name, float(v))
    return config


def describe_config(cls: type) -> list[tuple[str, str, Any, str]]:
    """``(name, type, default, description)`` of every field of a config class; the description
    ends with the valid range where the field declares one."""
    out = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        doc = f.metadata.get("doc", "")
        rng = valid_range(f)
        out.append((f.name, kind, default, f"{doc} ({rng})" if rng else doc))
    return out
