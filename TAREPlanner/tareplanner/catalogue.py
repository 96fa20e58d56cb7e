"""Nuclide and product catalogues, read from the package's data files, and site limits.

The data files (``tareplanner/data/*.json``) hold every value with its source. A site
can override limits with its own JSON file, and choose the lung mass it plans with
(``"ct"``: the patient's CT mass when the case has one, the default; ``"convention"``: the
1 kg of the package inserts)::

    {"schema": "tareplanner.site-limits/1", "site": "Hospital X, 2026 protocol",
     "lung_mass": "ct",
     "products": {"sir-spheres": {"normal_liver_gy": 35}}}

A site also promotes a guideline recommendation to a hard limit, or changes its value, each
with its reason (``"guidelines": {"promote": [{"row": ID, "reason": ...}], "change":
[{"row": ID, "value": 80, "reason": ...}]}``, row ids from ``data/guidelines.json``), and sets
its ordering rules (``"ordering": {"activity_tolerance_fraction": 0.1, "working_hours":
{"start": "07:00", "end": "19:00"}}``).

The plan record lists the limits used and where each came from.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from .errors import FieldValueError, SchemaError, UnknownNameError
from .guidelines import validate_site_guidelines
from .physics.bsa import LsfBand, check_lsf_bands

LIMIT_NAMES = ("normal_liver_gy", "normal_liver_compromised_gy", "lung_single_gy",
               "lung_cumulative_gy", "lsf_cutoff", "whole_liver_gy", "whole_normal_liver_gy",
               "whole_normal_liver_compromised_gy")
#: Site-wide choices (top level of a site-limits file) besides the product limits.
LUNG_MASS_POLICIES = ("ct", "convention")
SITE_LIMITS_SCHEMA = "tareplanner.site-limits/1"


@dataclass(frozen=True)
class Nuclide:
    name: str
    half_life_h: float
    mean_beta_energy_mev: float
    energy_per_activity_j_per_gbq: float
    sources: Mapping[str, str]


@dataclass(frozen=True)
class LimitValue:
    value: float | None
    source: str


@dataclass(frozen=True)
class Product:
    key: str
    display_name: str
    nuclide: str
    methods: tuple[str, ...]
    limits: Mapping[str, LimitValue]
    tumour_target_gy: Mapping[str, Any]
    bsa_lsf_bands: tuple[LsfBand, ...]
    bsa_lsf_source: str
    sphere_activity_bq: Mapping[str, Any]
    supply: Mapping[str, Any] = field(default_factory=dict)


def _data_text(name: str) -> str:
    return resources.files("tareplanner.data").joinpath(name).read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def _load(name: str) -> dict:
    return json.loads(_data_text(name))


def data_file_sha256(name: str) -> str:
    """SHA-256 of a packaged data file, for the plan record."""
    return hashlib.sha256(_data_text(name).encode("utf-8")).hexdigest()


def nuclide(name: str) -> Nuclide:
    """The nuclide ``name`` (``"Y-90"`` or ``"Ho-166"``)."""
    table = _load("nuclides.json")["nuclides"]
    if name not in table:
        raise UnknownNameError("nuclide", name, ", ".join(sorted(table)),
                               _suggestion(name, table))
    entry = table[name]
    return Nuclide(name=name, half_life_h=entry["half_life_h"]["value"],
                   mean_beta_energy_mev=entry["mean_beta_energy_mev"]["value"],
                   energy_per_activity_j_per_gbq=entry["energy_per_activity_j_per_gbq"]["value"],
                   sources={k: v["source"] for k, v in entry.items()})


def _suggestion(value, choices) -> str:
    from .records.fields import suggestion
    return suggestion(value, choices, any_case=True)


def product_keys() -> tuple[str, ...]:
    return tuple(_load("products.json")["products"])


def product(key: str, site_limits: Mapping[str, Any] | None = None,
            site_limits_label: str = "") -> Product:
    """The product ``key`` with its default limits, overridden by ``site_limits`` if given."""
    table = _load("products.json")["products"]
    if key not in table:
        raise UnknownNameError("product", key, ", ".join(table), _suggestion(key, table))
    entry = table[key]
    limits = {name: LimitValue(v["value"], v["source"]) for name, v in entry["limits"].items()}
    overrides = (site_limits or {}).get("products", {}).get(key, {})
    for name, value in overrides.items():
        limits[name] = LimitValue(value, f"site limits: {site_limits_label}")
    bands_entry = entry.get("bsa_lsf_reductions") or {}
    bands = _lsf_bands(key)
    return Product(key=key, display_name=entry["display_name"], nuclide=entry["nuclide"],
                   methods=tuple(entry["methods"]), limits=limits,
                   tumour_target_gy=entry["tumour_target_gy"], bsa_lsf_bands=bands,
                   bsa_lsf_source=bands_entry.get("source", ""),
                   sphere_activity_bq=entry["sphere_activity_bq"], supply=entry["supply"])


@lru_cache(maxsize=None)
def _lsf_bands(key: str) -> tuple[LsfBand, ...]:
    """The BSA lung-shunt bands of a product, checked to tile [0, lsf_cutoff] without a
    gap, an overlap or an edge that belongs to no band."""
    entry = _load("products.json")["products"][key]
    bands_entry = entry.get("bsa_lsf_reductions") or {}
    bands = []
    for i, b in enumerate(bands_entry.get("bands", ())):
        if ("lsf_below" in b) == ("lsf_up_to" in b):
            raise SchemaError(f"products.json {key}.bsa_lsf_reductions.bands[{i}]", b,
                              "exactly one of lsf_below (upper edge excluded) or lsf_up_to "
                              "(upper edge included)")
        bands.append(LsfBand(b["lsf_from"], b.get("lsf_below", b.get("lsf_up_to")),
                             b["activity_factor"], to_inclusive="lsf_up_to" in b))
    if bands:
        try:
            check_lsf_bands(bands)
        except ValueError as exc:
            raise SchemaError(f"products.json {key}.bsa_lsf_reductions.bands", len(bands),
                              "bands that tile 0 to the cut-off", str(exc)) from None
        cutoff = entry["limits"]["lsf_cutoff"]["value"]
        if cutoff is not None and bands[-1].lsf_to != cutoff:
            raise SchemaError(f"products.json {key}.bsa_lsf_reductions.bands", bands[-1].lsf_to,
                              f"a last band that ends at the lsf_cutoff ({cutoff:g})")
    return tuple(bands)


def radiobiology() -> dict:
    """LQ (BED) parameters and the kernels' soft-tissue density, each with its source."""
    return _load("radiobiology.json")


def lung_mass_convention() -> LimitValue:
    """The conventional lung mass (kg) of the package inserts, with its source."""
    entry = _load("products.json")["conventions"]["lung_mass_kg"]
    return LimitValue(entry["value"], entry["source"])


def validate_site_limits(document: Any, label: str = "site limits") -> dict:
    """Check a site-limits document; raise a named error on anything wrong."""
    if not isinstance(document, dict):
        raise SchemaError(label, type(document).__name__, "a JSON object")
    if document.get("schema") != SITE_LIMITS_SCHEMA:
        raise SchemaError(f"{label}.schema", document.get("schema"), SITE_LIMITS_SCHEMA)
    from .records.fields import check_keys  # unknown fields with a "did you mean"
    check_keys(document, label, ("schema", "site", "products", "lung_mass", "guidelines",
                                 "ordering"))
    if "guidelines" in document:
        validate_site_guidelines(document["guidelines"], label)
    if "ordering" in document:
        _validate_site_ordering(document["ordering"], f"{label}.ordering")
    site = document.get("site")
    if site is not None and not (isinstance(site, str) and site.strip() and len(site) <= 200
                                 and site.isprintable()):
        raise FieldValueError(f"{label}.site", site, "a printable name of at most 200 "
                                                     "characters")
    if "lung_mass" in document and document["lung_mass"] not in LUNG_MASS_POLICIES:
        raise FieldValueError(f"{label}.lung_mass", document["lung_mass"],
                              "one of " + ", ".join(LUNG_MASS_POLICIES))
    products = document.get("products")
    if not isinstance(products, dict):
        raise SchemaError(f"{label}.products", products, "an object keyed by product")
    known = product_keys()
    for key, overrides in products.items():
        if key not in known:
            raise UnknownNameError(f"{label}.products", key, ", ".join(known),
                                   _suggestion(key, known))
        if not isinstance(overrides, dict):
            raise FieldValueError(f"{label}.products.{key}", overrides, "an object of limits")
        check_keys(overrides, f"{label}.products.{key}", LIMIT_NAMES)
        for name, value in overrides.items():
            where = f"{label}.products.{key}.{name}"
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise FieldValueError(where, value, "a number > 0, or null to switch it off")
            if name == "lsf_cutoff" and value > 1:
                raise FieldValueError(where, value, "a fraction in (0, 1]")
    return document


#: The ordering tolerance must stay below the 20 % deviation of a medical event (10 CFR 35.3045).
MAX_ORDER_TOLERANCE = 0.20


def _hhmm(value: Any, where: str) -> int:
    """Minutes after midnight of an ``HH:MM`` text."""
    ok = isinstance(value, str) and len(value) == 5 and value[2] == ":" \
        and value[:2].isdigit() and value[3:].isdigit()
    if not ok or int(value[:2]) > 23 or int(value[3:]) > 59:
        raise FieldValueError(where, value, "a time HH:MM (00:00 to 23:59)")
    return int(value[:2]) * 60 + int(value[3:])


def _validate_site_ordering(section: Any, where: str) -> None:
    if not isinstance(section, dict):
        raise SchemaError(where, type(section).__name__, "a JSON object")
    from .records.fields import check_keys
    check_keys(section, where, ("activity_tolerance_fraction", "working_hours"))
    tol = section.get("activity_tolerance_fraction")
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float))
                            or not 0 < tol < MAX_ORDER_TOLERANCE):
        raise FieldValueError(f"{where}.activity_tolerance_fraction", tol,
                              f"a fraction > 0 and < {MAX_ORDER_TOLERANCE:g} (20 % is a "
                              "medical event, 10 CFR 35.3045)")
    hours = section.get("working_hours")
    if hours is not None:
        if not isinstance(hours, dict):
            raise SchemaError(f"{where}.working_hours", type(hours).__name__,
                              'an object {"start": "HH:MM", "end": "HH:MM"}')
        check_keys(hours, f"{where}.working_hours", ("start", "end"))
        start = _hhmm(hours.get("start"), f"{where}.working_hours.start")
        end = _hhmm(hours.get("end"), f"{where}.working_hours.end")
        if end <= start:
            raise FieldValueError(f"{where}.working_hours.end", hours.get("end"),
                                  f"a time after the start ({hours.get('start')})")


def ordering_rules(product_entry: Product, site_limits: Mapping[str, Any] | None = None,
                   site_limits_label: str = "") -> dict:
    """Activity tolerance and working hours for ordering: the product's defaults, or the
    site's; with where each came from."""
    defaults = dict(product_entry.supply.get("order_defaults") or {
        "activity_tolerance_fraction": 0.10, "working_hours": {"start": "07:00", "end": "19:00"},
        "source": "TAREPlanner defaults"})
    site = (site_limits or {}).get("ordering") or {}
    tol = site.get("activity_tolerance_fraction", defaults["activity_tolerance_fraction"])
    hours = site.get("working_hours", defaults["working_hours"])
    return {"activity_tolerance_fraction": float(tol), "working_hours": dict(hours),
            "source": (f"site limits: {site_limits_label}" if site else defaults["source"])}


def read_site_limits(path: str | Path) -> tuple[dict, str]:
    """Read and validate a site-limits file; return it and a label (name + SHA-256)."""
    from .records.fields import loads_strict
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError("site limits file", str(path), "a readable UTF-8 JSON file",
                          getattr(exc, "strerror", None) or str(exc)) from None
    document = loads_strict(text, "site limits file", str(path))
    validate_site_limits(document, "site limits")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    label = f"{document.get('site', path.name)} ({path.name}, sha256 {digest})"
    return document, label
