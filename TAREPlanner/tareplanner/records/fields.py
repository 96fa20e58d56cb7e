"""Small validators that raise the package's named input errors."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Iterable, Mapping

from ..errors import FieldValueError, MissingFieldError, SchemaError, UnknownNameError


def require_object(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise SchemaError(field, type(value).__name__, "a JSON object")
    return value


def check_keys(obj: Mapping[str, Any], field: str, allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    for key in obj:
        if key not in allowed:
            raise UnknownNameError(f"{field}.{key}" if field else key, key,
                                   "fields " + ", ".join(allowed))


def number(obj: Mapping[str, Any], key: str, field: str, *, default: Any = MissingFieldError,
           minimum: float | None = None, exclusive_minimum: float | None = None,
           maximum: float | None = None, exclusive_maximum: float | None = None) -> float:
    """A finite number from ``obj[key]`` within the given bounds."""
    path = f"{field}.{key}" if field else key
    bounds = []
    if minimum is not None:
        bounds.append(f">= {minimum}")
    if exclusive_minimum is not None:
        bounds.append(f"> {exclusive_minimum}")
    if maximum is not None:
        bounds.append(f"<= {maximum}")
    if exclusive_maximum is not None:
        bounds.append(f"< {exclusive_maximum}")
    allowed = "a number " + " and ".join(bounds) if bounds else "a number"
    if key not in obj or obj[key] is None:
        if default is MissingFieldError:
            raise MissingFieldError(path, allowed)
        return default
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FieldValueError(path, value, allowed)
    if ((minimum is not None and value < minimum)
            or (exclusive_minimum is not None and value <= exclusive_minimum)
            or (maximum is not None and value > maximum)
            or (exclusive_maximum is not None and value >= exclusive_maximum)):
        raise FieldValueError(path, value, allowed)
    return float(value)


def string(obj: Mapping[str, Any], key: str, field: str, *, default: Any = MissingFieldError,
           choices: Iterable[str] | None = None) -> str:
    path = f"{field}.{key}" if field else key
    choices = tuple(choices) if choices is not None else None
    allowed = "one of " + ", ".join(choices) if choices else "a non-empty string"
    if key not in obj or obj[key] is None:
        if default is MissingFieldError:
            raise MissingFieldError(path, allowed)
        return default
    value = obj[key]
    if not isinstance(value, str) or not value.strip():
        raise FieldValueError(path, value, allowed)
    if choices is not None and value not in choices:
        raise UnknownNameError(path, value, allowed)
    return value


def boolean(obj: Mapping[str, Any], key: str, field: str, *, default: bool) -> bool:
    path = f"{field}.{key}" if field else key
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise FieldValueError(path, value, "true or false")
    return value


def timestamp(obj: Mapping[str, Any], key: str, field: str, *, required: bool) -> datetime | None:
    """An ISO 8601 date-time with a UTC offset."""
    path = f"{field}.{key}" if field else key
    allowed = "an ISO 8601 date-time with UTC offset, e.g. 2026-12-01T10:00:00+01:00"
    if key not in obj or obj[key] is None:
        if required:
            raise MissingFieldError(path, allowed)
        return None
    value = obj[key]
    if not isinstance(value, str):
        raise FieldValueError(path, value, allowed)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise FieldValueError(path, value, allowed) from None
    if parsed.tzinfo is None:
        raise FieldValueError(path, value, allowed, "no UTC offset given")
    return parsed
