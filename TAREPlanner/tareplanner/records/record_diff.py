"""Differences between a record and its recomputation, field by field (numbers within a
relative tolerance; the fields that legitimately differ are skipped)."""

from __future__ import annotations

import math
from typing import Any

#: fields that legitimately differ between a record and its replay
VOLATILE = ("created", "software")
REL_TOL = 1e-9


def diff_records(a: Any, b: Any, path: str, out: list) -> None:
    """Append to ``out`` every field where ``a`` (the record) and ``b`` (its replay) differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if not path and key in VOLATILE:
                continue
            if key not in a or key not in b:
                out.append({"field": f"{path}.{key}".lstrip("."),
                            "record": a.get(key, "<absent>"), "replay": b.get(key, "<absent>")})
            else:
                diff_records(a[key], b[key], f"{path}.{key}".lstrip("."), out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            diff_records(x, y, f"{path}[{i}]", out)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and \
            not isinstance(a, bool) and not isinstance(b, bool):
        if not math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12):
            out.append({"field": path, "record": a, "replay": b})
    elif a != b:
        out.append({"field": path, "record": a, "replay": b})
