"""Small validators that raise the package's named input errors."""

from __future__ import annotations

import difflib
import json
import math
import unicodedata
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import (FieldValueError, MissingFieldError, SchemaError, UnknownFieldError,
                      UnknownNameError)


def require_object(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise SchemaError(field, type(value).__name__, "a JSON object")
    return value


def suggestion(value: Any, choices: Iterable[str], *, any_case: bool = False) -> str:
    """``"did you mean 'X'?"`` for the choice closest to a mistyped ``value`` (difflib's
    similarity ratio of at least 0.6), or '' when none is close. ``any_case``: compared
    case-insensitively (product names)."""
    if not isinstance(value, str) or not value.strip():
        return ""
    choices = [c for c in choices if isinstance(c, str)]
    fold = (lambda text: text.strip().casefold()) if any_case else (lambda text: text)
    folded = {fold(c): c for c in choices}
    close = difflib.get_close_matches(fold(value), list(folded), n=1, cutoff=0.6)
    return f"did you mean {folded[close[0]]!r}?" if close else ""


def check_keys(obj: Mapping[str, Any], field: str, allowed: Iterable[str]) -> None:
    """Every key of ``obj`` is one of ``allowed``; an unknown one is refused with the
    closest allowed field suggested."""
    allowed = tuple(allowed)
    for key in obj:
        if key not in allowed:
            raise UnknownFieldError(f"{field}.{key}" if field else key, key,
                                    ", ".join(allowed), suggestion(key, allowed))


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
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2 ** 1000:
        try:
            float(value)
        except OverflowError:  # an integer beyond any float (math.isfinite would raise)
            digits = len(str(abs(value))) if abs(value) < 10 ** 4000 else "4000+"
            raise FieldValueError(path, f"an integer of {digits} digits", allowed) from None
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
        raise UnknownNameError(path, value, allowed, suggestion(value, choices))
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
    if not (YEARS[0] <= parsed.year <= YEARS[1]
            and YEARS[0] <= parsed.astimezone(timezone.utc).year <= YEARS[1]):
        raise FieldValueError(path, value, f"a date-time in the years {YEARS[0]} to {YEARS[1]}")
    return parsed


#: years a date-time may fall in (decay arithmetic on datetimes fails near years 1 and 9999)
YEARS = (1900, 2200)
#: longest name (position, tumour, case, patient): the DICOM LO limit, so that names reach
#: SEG segment labels and reports whole
NAME_MAX_CHARS = 64
NAME_ALLOWED = (f"1 to {NAME_MAX_CHARS} printable characters, no control characters "
                "(newline, tab, NUL), no '/' or '\\', not '.' or '..'")
#: longest reason (why readings are right, why a limit is overridden, why an activity was
#: changed): a sentence or two in words, which may hold '/' ("2/2 readings") unlike a name
REASON_MAX_CHARS = 200
REASON_ALLOWED = (f"a reason in words: 1 to {REASON_MAX_CHARS} printable characters, no "
                  "control characters (newline, tab, NUL)")
#: deepest nesting of a JSON document (records are a few levels deep)
JSON_MAX_DEPTH = 64


def _text_problem(value: Any, max_chars: int) -> str | None:
    """Why ``value`` is not a one-line text of 1 to ``max_chars`` characters without control
    characters, or None when it is: the part a name and a reason share."""
    if not isinstance(value, str):
        return f"not a string but {type(value).__name__}"
    if not value.strip():
        return "empty"
    if len(value) > max_chars:
        return f"{len(value)} characters"
    return _control_character(value)


def name_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a name (see :data:`NAME_ALLOWED`), or None when it can."""
    if (problem := _text_problem(value, NAME_MAX_CHARS)) is not None:
        return problem
    if "/" in value or "\\" in value:
        return "a path separator"
    if value.strip() in (".", ".."):
        return "a relative folder name"
    return None


def _control_character(value: str) -> str | None:
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            return f"control character {char!r}"
    return None


def reason_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a reason (see :data:`REASON_ALLOWED`), or None when it can."""
    return _text_problem(value, REASON_MAX_CHARS)


def check_reason(value: Any, field: str) -> str:
    """``value`` when it is an acceptable reason; raises :class:`FieldValueError` naming
    ``field`` otherwise."""
    return _checked(value, field, reason_problem(value), REASON_ALLOWED)


def check_name(value: Any, field: str) -> str:
    """``value`` when it is an acceptable name (position, tumour, case, patient); raises
    :class:`FieldValueError` naming ``field`` otherwise."""
    return _checked(value, field, name_problem(value), NAME_ALLOWED)


def _checked(value: Any, field: str, problem: str | None, allowed: str) -> Any:
    """``value`` when ``problem`` is None; else a FieldValueError naming ``field``, showing at
    most 80 characters of the value."""
    if problem is not None:
        shown = value[:80] + "..." if isinstance(value, str) and len(value) > 80 else value
        raise FieldValueError(field, shown, allowed, problem)
    return value


def name(obj: Mapping[str, Any], key: str, field: str, *, default: Any = MissingFieldError) -> str:
    """A name from ``obj[key]`` (see :func:`check_name`)."""
    path = f"{field}.{key}" if field else key
    if key not in obj or obj[key] is None:
        if default is MissingFieldError:
            raise MissingFieldError(path, NAME_ALLOWED)
        return default
    return check_name(obj[key], path)


def _depth_ok(text: str) -> bool:
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > JSON_MAX_DEPTH:
                return False
        elif char in "]}":
            depth -= 1
    return True


def loads_strict(text: str, field: str, source: str | None = None) -> Any:
    """Parse JSON text strictly: no NaN/Infinity, no number beyond the float range (1e400),
    no duplicate keys, at most :data:`JSON_MAX_DEPTH` levels. Errors are a
    :class:`SchemaError` naming ``field`` and ``source`` (the file) when given."""
    shown = source if source is not None else (text[:40] + ("..." if len(text) > 40 else ""))

    def constant(word):
        raise SchemaError(field, shown, "valid JSON numbers", f"{word} is not JSON")

    def floating(word):
        value = float(word)
        if not math.isfinite(value):
            raise SchemaError(field, shown, "numbers within +/-1.8e308", f"{word} overflows")
        return value

    def no_duplicates(pairs):
        seen = {}
        for key, value in pairs:
            if key in seen:
                raise SchemaError(field, shown, "each key once per object",
                                  f"duplicate key {key!r}")
            seen[key] = value
        return seen

    if text.count("[") + text.count("{") > JSON_MAX_DEPTH and not _depth_ok(text):
        raise SchemaError(field, shown, f"at most {JSON_MAX_DEPTH} levels of nested "
                                        "objects and lists")
    try:
        document = json.loads(text, parse_constant=constant, parse_float=floating,
                              object_pairs_hook=no_duplicates)
        json.dumps(document, ensure_ascii=False).encode("utf-8")
        return document
    except UnicodeEncodeError as exc:  # "\ud800": a lone surrogate cannot be written back
        raise SchemaError(field, shown, "text that is valid Unicode",
                          f"unpaired surrogate {exc.object[exc.start:exc.end]!r}") from None
    except json.JSONDecodeError as exc:
        raise SchemaError(field, shown, "valid JSON",
                          f"line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except SchemaError:
        raise
    except (RecursionError, ValueError) as exc:  # an integer of thousands of digits
        raise SchemaError(field, shown, "valid JSON", str(exc)[:120]) from None


def read_json_file(path: str | Path, field: str) -> Any:
    """A JSON document from a UTF-8 file, parsed by :func:`loads_strict`; named errors for a
    missing, unreadable or non-UTF-8 file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SchemaError(field, str(path), "a readable JSON file",
                          exc.strerror or type(exc).__name__) from None
    except UnicodeDecodeError as exc:
        raise SchemaError(field, str(path), "a UTF-8 text file",
                          f"byte {exc.start}: {exc.reason}") from None
    except ValueError as exc:  # a path with a NUL character
        raise SchemaError(field, str(path), "a readable JSON file", str(exc)) from None
    return loads_strict(text.removeprefix("\ufeff"), field, str(path))  # a UTF-8 BOM
