"""Typed reads of `ModelSpec.options`, which arrive as untyped JSON."""

from __future__ import annotations

from workers.contracts import ModelSpec


def option_float(spec: ModelSpec, name: str, default: float) -> float:
    value = spec.options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{spec.ref}: option {name} must be a number, got {value!r}")
    return float(value)


def option_int(spec: ModelSpec, name: str, default: int) -> int:
    value = spec.options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{spec.ref}: option {name} must be an integer, got {value!r}")
    return value


def option_str(spec: ModelSpec, name: str, default: str) -> str:
    value = spec.options.get(name, default)
    if not isinstance(value, str):
        raise ValueError(f"{spec.ref}: option {name} must be a string, got {value!r}")
    return value


def option_optional_str(spec: ModelSpec, name: str) -> str | None:
    value = spec.options.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{spec.ref}: option {name} must be a string, got {value!r}")
    return value


def option_bool(spec: ModelSpec, name: str, default: bool) -> bool:
    value = spec.options.get(name, default)
    if not isinstance(value, bool):
        raise ValueError(f"{spec.ref}: option {name} must be true or false, got {value!r}")
    return value
