"""CT-number to mass-density calibration curves: the packaged default and site files.

A curve file (``tareplanner.hu-density/1``; the packaged one is ``data/hu_density.json``)::

    {"schema": "tareplanner.hu-density/1",
     "name": "Hospital X, CT scanner Y, 120 kV",
     "source": "stoichiometric calibration with phantom Z, 2026-01-12",
     "minimum_density_g_per_ml": {"value": 0.001, "source": "..."},
     "points_hu_g_per_ml": [[-1000, 0.0], [0, 1.0], [1000, 1.6]]}

The density is linear between the points (HU strictly increasing), constant beyond the first
and last, and never below the minimum (optional; 0.001 g/mL when absent). The dose record
names the curve used (name, source, file and SHA-256).
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import FieldValueError, SchemaError
from .physics.voxel_dose import HuDensityCurve

HU_DENSITY_SCHEMA = "tareplanner.hu-density/1"
DEFAULT_FILE = "hu_density.json"
DEFAULT_MINIMUM_G_PER_ML = 0.001


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def curve_from_document(document: Any, label: str = "density curve") -> HuDensityCurve:
    """Check a ``tareplanner.hu-density/1`` document and return its curve; a named error on
    anything wrong."""
    if not isinstance(document, dict):
        raise SchemaError(label, type(document).__name__, "a JSON object")
    if document.get("schema") != HU_DENSITY_SCHEMA:
        raise SchemaError(f"{label}.schema", document.get("schema"), HU_DENSITY_SCHEMA)
    for key in ("name", "source"):
        if not isinstance(document.get(key), str) or not document[key].strip():
            raise FieldValueError(f"{label}.{key}", document.get(key), "a non-empty text")
    points = document.get("points_hu_g_per_ml")
    if (not isinstance(points, list) or len(points) < 2
            or not all(isinstance(p, list) and len(p) == 2 and all(_is_number(v) for v in p)
                       for p in points)):
        raise FieldValueError(f"{label}.points_hu_g_per_ml", points,
                              "at least two [HU, density g/mL] number pairs")
    hu = [float(p[0]) for p in points]
    rho = [float(p[1]) for p in points]
    if any(b <= a for a, b in zip(hu, hu[1:])):
        raise FieldValueError(f"{label}.points_hu_g_per_ml", hu, "HU values strictly increasing")
    if any(r < 0 or r > 25 for r in rho):
        raise FieldValueError(f"{label}.points_hu_g_per_ml", rho,
                              "densities between 0 and 25 g/mL")
    minimum = document.get("minimum_density_g_per_ml", {"value": DEFAULT_MINIMUM_G_PER_ML})
    value = minimum.get("value") if isinstance(minimum, dict) else minimum
    if not _is_number(value) or not value > 0:
        raise FieldValueError(f"{label}.minimum_density_g_per_ml", value, "a number > 0")
    return HuDensityCurve(hu=tuple(hu), density_g_per_ml=tuple(rho),
                          minimum_g_per_ml=float(value), name=document["name"],
                          source=document["source"])


@lru_cache(maxsize=None)
def _default() -> tuple[HuDensityCurve, str]:
    text = resources.files("tareplanner.data").joinpath(DEFAULT_FILE).read_text("utf-8")
    return (curve_from_document(json.loads(text), DEFAULT_FILE),
            hashlib.sha256(text.encode("utf-8")).hexdigest())


def default_curve() -> HuDensityCurve:
    """The packaged HU-to-density curve (``data/hu_density.json``)."""
    return _default()[0]


def read_curve(path: str | Path) -> tuple[HuDensityCurve, dict]:
    """Read and check a site's curve file; return the curve and its record entry."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SchemaError("density curve file", str(path), "a readable JSON file",
                          exc.strerror or "") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError("density curve file", str(path), "valid JSON",
                          f"line {exc.lineno}: {exc.msg}") from None
    curve = curve_from_document(document, "density curve")
    return curve, curve_record(curve, str(path), hashlib.sha256(text.encode("utf-8")).hexdigest())


def curve_record(curve: HuDensityCurve, file: str | None = None,
                 sha256: str | None = None) -> dict:
    """What a dose record keeps of the curve it used (the packaged file when ``file`` is
    None)."""
    if file is None and curve == default_curve():
        file, sha256 = f"tareplanner/data/{DEFAULT_FILE}", _default()[1]
    return {"name": curve.name, "source": curve.source, "file": file, "sha256": sha256,
            "points_hu_g_per_ml": [[h, r] for h, r in zip(curve.hu, curve.density_g_per_ml)],
            "minimum_density_g_per_ml": curve.minimum_g_per_ml}


__all__ = ["HU_DENSITY_SCHEMA", "curve_from_document", "default_curve", "read_curve",
           "curve_record"]
