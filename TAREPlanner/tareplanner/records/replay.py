"""Replaying a plan record: recompute it from the case and limits it holds and report every
difference (reproducibility of individually planned exposures, EURATOM 2013/59 art. 56)."""

from __future__ import annotations

import math
from typing import Any

from .. import catalogue
from ..planning import plan_case
from .case import canonical_sha256, parse_case

#: fields that legitimately differ between a record and its replay
VOLATILE = ("created", "software")
REL_TOL = 1e-9


def site_limits_from_record(record: dict) -> tuple[dict | None, str]:
    """The limits of a record, as a site-limits document when they differ from the defaults."""
    defaults = catalogue.product(record["product"]["key"]).limits
    overrides = {name: entry["value"] for name, entry in record["limits"].items()
                 if name in defaults and entry["value"] != defaults[name].value}
    site_lung_mass = (record.get("lung_mass") or {}).get("chosen_by") == "site"
    if not overrides and not site_lung_mass:
        return None, ""
    label = record.get("limits_source", "record").removeprefix("site limits: ")
    site = {"schema": catalogue.SITE_LIMITS_SCHEMA,
            "products": {record["product"]["key"]: overrides}}
    if site_lung_mass:
        site["lung_mass"] = "convention"
    return site, label


def _diff(a: Any, b: Any, path: str, out: list) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if not path and key in VOLATILE:
                continue
            if key not in a or key not in b:
                out.append({"field": f"{path}.{key}".lstrip("."),
                            "record": a.get(key, "<absent>"), "replay": b.get(key, "<absent>")})
            else:
                _diff(a[key], b[key], f"{path}.{key}".lstrip("."), out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _diff(x, y, f"{path}[{i}]", out)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and \
            not isinstance(a, bool) and not isinstance(b, bool):
        if not math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12):
            out.append({"field": path, "record": a, "replay": b})
    elif a != b:
        out.append({"field": path, "record": a, "replay": b})


def replay(record: dict) -> dict:
    """Recompute ``record`` and compare. Returns {"identical", "differences", "software"}."""
    case = parse_case(record["case"])
    if case.input_sha256 != record["input_sha256"]:
        return {"identical": False, "input_changed": True,
                "differences": [{"field": "input_sha256", "record": record["input_sha256"],
                                 "replay": canonical_sha256(record["case"])}]}
    site, label = site_limits_from_record(record)
    again = plan_case(case, site, label)
    differences: list = []
    _diff(record, again, "", differences)
    return {"identical": not differences, "input_changed": False, "differences": differences,
            "software": {"record": record["software"], "replay": again["software"]}}
