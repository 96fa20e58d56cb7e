"""The planning case file ``tareplanner.case/1``: parsing and validation.

A case holds what users measure on images (volumes in mL, TNR, LSF) and the treatment
choices (product, method, goal per injection position). See ``docs/case-format.md``
and ``docs/schemas/case-1.schema.json``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

from .. import catalogue
from ..guidelines import Scenario, parse_scenario
from ..errors import (FieldValueError, MissingFieldError, SchemaError, UnknownNameError,
                      UnsupportedMethodError)
from ..physics.lung_shunt import lsf_planar_geometric_mean
from ..physics.solver import GOAL_KINDS
from ..physics.uncertainty import RESOLUTION_SD_BASES as SD_BASES
from .fields import (boolean, check_keys, name as name_value, number, read_json_file,
                     require_object, string, suggestion, timestamp)
from .identity import PATIENT_KEYS, STUDY_KEYS, check_case_identity

CASE_SCHEMA = "tareplanner.case/1"
METHODS = ("single-compartment", "partition", "bsa")
LSF_METHODS = ("planar-geometric-mean", "spect-whole-lung", "spect-lung-base-excluded",
               "scout-spect", "manual", "unspecified")
CASE_FIELDS = ("schema", "case_id", "product", "method", "tissue_density_g_per_ml",
               "lung_shunt_fraction", "lsf_method", "planar_counts", "lung_mass_kg",
               "lung_mass_source", "lung_mass_ct_kg", "prior_lung_dose_gy", "residual_fraction", "liver_compromised", "patient",
               "whole_liver_volume_ml", "whole_liver_tumour_volume_ml", "treatment_time",
               "ordering", "positions", "notes", "measurement", "uncertainty", "study",
               "scenario")
#: Where the lung mass comes from: a CT densitovolumetric measurement, a value entered by
#: hand, or the 1 kg convention of the package inserts (chosen explicitly, or by default
#: when the case holds no lung mass).
LUNG_MASS_SOURCES = ("ct-densitovolumetry", "entered", "convention")
PLANAR_FIELDS = ("lung_anterior_counts", "lung_posterior_counts", "liver_anterior_counts",
                 "liver_posterior_counts")


@dataclass(frozen=True)
class Tumour:
    name: str
    volume_ml: float
    tnr: float | None


@dataclass(frozen=True)
class Goal:
    kind: str
    value: float | None

    def as_dict(self) -> dict:
        return {self.kind: True if self.kind == "maximum" else self.value}


@dataclass(frozen=True)
class Position:
    name: str
    normal_volume_ml: float
    tumours: tuple[Tumour, ...]
    goal: Goal | None

    @property
    def perfused_volume_ml(self) -> float:
        return self.normal_volume_ml + sum(t.volume_ml for t in self.tumours)


@dataclass(frozen=True)
class Patient:
    patient_id: str | None
    height_cm: float | None
    weight_kg: float | None


@dataclass(frozen=True)
class Ordering:
    therasphere_vials: str
    vial_calibration_time: datetime | None


@dataclass(frozen=True)
class Case:
    case_id: str | None
    product: str
    method: str
    tissue_density_g_per_ml: float
    lung_shunt_fraction: float
    lsf_method: str
    lung_mass_kg: float | None
    lung_mass_source: str | None
    lung_mass_ct_kg: float | None
    prior_lung_dose_gy: float
    residual_fraction: float
    liver_compromised: bool
    patient: Patient
    whole_liver_volume_ml: float | None
    whole_liver_tumour_volume_ml: float | None
    treatment_time: datetime | None
    ordering: Ordering
    positions: tuple[Position, ...]
    document: Mapping[str, Any]
    measurement_warnings: tuple[dict, ...] = ()
    #: the emission image's resolution the measured values were corrected with
    #: (fwhm_mm, assumed, source, chosen_by); None for a case not measured from images
    resolution: Mapping[str, Any] | None = None
    uncertainty: Mapping[str, Any] | None = None
    #: Treatment intent, histology and liver function (None: no scenario given).
    scenario: Scenario | None = None

    @property
    def input_sha256(self) -> str:
        return canonical_sha256(self.document)


def canonical_sha256(document: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON form (sorted keys, no whitespace) of a document."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@lru_cache(maxsize=None)
def plausible_max(kind: str) -> float:
    """The largest physiologically possible value of ``kind`` ('volume_ml', 'activity_gbq',
    'lung_mass_kg'), from data/plausible_ranges.json (with its reason there): a value above
    it is refused as a typing or unit error."""
    text = resources.files("tareplanner.data").joinpath("plausible_ranges.json") \
        .read_text("utf-8")
    return float(json.loads(text)[kind]["max"])


def _goal(raw: Any, field: str) -> Goal:
    obj = require_object(raw, field)
    if len(obj) != 1:
        raise FieldValueError(field, raw, "an object with exactly one of " + ", ".join(GOAL_KINDS))
    (kind, value), = obj.items()
    check_keys(obj, field, GOAL_KINDS)
    if kind == "maximum":
        if value is not True:
            raise FieldValueError(f"{field}.maximum", value, "true")
        return Goal(kind, None)
    return Goal(kind, number(obj, kind, field, exclusive_minimum=0,
                             maximum=plausible_max("activity_gbq") if kind == "activity_gbq"
                             else None))


def _tumour(raw: Any, field: str, method: str) -> Tumour:
    obj = require_object(raw, field)
    check_keys(obj, field, ("name", "volume_ml", "tnr"))
    tnr_needed = method == "partition"
    tnr = number(obj, "tnr", field, exclusive_minimum=0,
                 default=MissingFieldError if tnr_needed else None)
    return Tumour(name=name_value(obj, "name", field),
                  volume_ml=number(obj, "volume_ml", field, exclusive_minimum=0,
                                   maximum=plausible_max("volume_ml")), tnr=tnr)


def _position(raw: Any, field: str, method: str) -> Position:
    obj = require_object(raw, field)
    check_keys(obj, field, ("name", "normal_volume_ml", "tumours", "goal"))
    tumours_raw = obj.get("tumours", [])
    if not isinstance(tumours_raw, list):
        raise FieldValueError(f"{field}.tumours", tumours_raw, "a list of tumours")
    tumours = tuple(_tumour(t, f"{field}.tumours[{i}]", method) for i, t in enumerate(tumours_raw))
    names = [t.name for t in tumours]
    if len(set(names)) != len(names):
        raise FieldValueError(f"{field}.tumours", names, "unique tumour names within a position")
    if method == "bsa":
        if obj.get("goal") is not None:
            raise FieldValueError(f"{field}.goal", obj["goal"],
                                  "no goal: the bsa method sets the activity itself")
        goal = None
    else:
        if obj.get("goal") is None:
            raise MissingFieldError(f"{field}.goal", "an object with one of " + ", ".join(GOAL_KINDS))
        goal = _goal(obj["goal"], f"{field}.goal")
        if goal.kind == "tumour_dose_gy" and not tumours:
            raise FieldValueError(f"{field}.goal", goal.as_dict(),
                                  "a tumour_dose_gy goal only where the position has tumours")
    return Position(name=name_value(obj, "name", field),
                    normal_volume_ml=number(obj, "normal_volume_ml", field, exclusive_minimum=0,
                                            maximum=plausible_max("volume_ml")),
                    tumours=tumours, goal=goal)


def _lung_mass(doc: Mapping[str, Any]) -> dict:
    """``lung_mass_kg``, ``lung_mass_source`` and ``lung_mass_ct_kg`` of a case: the mass
    itself is resolved at planning time (site policy, convention), see planning.lung_mass."""
    mass = number(doc, "lung_mass_kg", "", default=None, exclusive_minimum=0,
                  maximum=plausible_max("lung_mass_kg"))
    ct_mass = number(doc, "lung_mass_ct_kg", "", default=None, exclusive_minimum=0,
                     maximum=plausible_max("lung_mass_kg"))
    source = string(doc, "lung_mass_source", "", default=None, choices=LUNG_MASS_SOURCES)
    if source is None and mass is not None:
        source = "entered"
    if source == "convention" and mass is not None:
        raise FieldValueError("lung_mass_kg", mass, "no lung_mass_kg with lung_mass_source "
                              "'convention' (the convention's mass comes from the catalogue)")
    if source in ("ct-densitovolumetry", "entered") and mass is None:
        raise MissingFieldError("lung_mass_kg", f"a mass in kg with lung_mass_source {source!r}")
    if source == "ct-densitovolumetry":
        if ct_mass is not None and ct_mass != mass:
            raise FieldValueError("lung_mass_ct_kg", ct_mass,
                                  f"equal to lung_mass_kg ({mass:g}) when the source is the CT")
        ct_mass = mass
    return {"lung_mass_kg": mass, "lung_mass_source": source, "lung_mass_ct_kg": ct_mass}


UNCERTAINTY_FIELDS = ("calibrator_relative_sd", "residual_sd", "lsf_relative_sd",
                      "tnr_relative_sd", "boundary_mm", "lung_mass_relative_sd", "samples",
                      "seed", "exceedance_probability", "resolution", "counting_basis")


def _uncertainty(doc: Mapping[str, Any], positions: tuple[Position, ...]) -> dict | None:
    """The case's own input uncertainties (all optional; defaults in data/uncertainty.json)."""
    if doc.get("uncertainty") is None:
        return None
    obj = require_object(doc["uncertainty"], "uncertainty")
    check_keys(obj, "uncertainty", UNCERTAINTY_FIELDS)
    out: dict[str, Any] = {}
    for key in ("calibrator_relative_sd", "residual_sd", "lsf_relative_sd",
                "lung_mass_relative_sd"):
        value = number(obj, key, "uncertainty", default=None, minimum=0, maximum=1)
        if value is not None:
            out[key] = value
    boundary = number(obj, "boundary_mm", "uncertainty", default=None, minimum=0, maximum=20)
    if boundary is not None:
        out["boundary_mm"] = boundary
    tnr = obj.get("tnr_relative_sd")
    if isinstance(tnr, dict):
        known = [t.name for p in positions for t in p.tumours]
        check_keys(tnr, "uncertainty.tnr_relative_sd", known)
        out["tnr_relative_sd"] = {k: number(tnr, k, "uncertainty.tnr_relative_sd", minimum=0,
                                            maximum=1) for k in tnr}
    elif tnr is not None:
        out["tnr_relative_sd"] = number(obj, "tnr_relative_sd", "uncertainty", minimum=0,
                                        maximum=1)
    samples = number(obj, "samples", "uncertainty", default=None, minimum=100, maximum=100000)
    if samples is not None:
        if samples != int(samples):
            raise FieldValueError("uncertainty.samples", obj["samples"], "a whole number")
        out["samples"] = int(samples)
    seed = number(obj, "seed", "uncertainty", default=None, minimum=0, maximum=2 ** 63 - 1)
    if seed is not None:
        if seed != int(seed):
            raise FieldValueError("uncertainty.seed", obj["seed"], "a whole number")
        out["seed"] = int(seed)
    p = number(obj, "exceedance_probability", "uncertainty", default=None, exclusive_minimum=0,
               exclusive_maximum=1)
    if p is not None:
        out["exceedance_probability"] = p
    if obj.get("resolution") is not None:
        out["resolution"] = _resolution_sensitivity(obj["resolution"], positions)
    basis = obj.get("counting_basis")
    if basis is not None:
        if not isinstance(basis, str) or not basis.strip() or len(basis) > 1000:
            raise FieldValueError("uncertainty.counting_basis", basis,
                                  "a text of 1 to 1000 characters (what the TNRs' and LSF's "
                                  "counting uncertainty stands for)")
        out["counting_basis"] = basis
    return out


def _resolution_sensitivity(raw, positions) -> dict:
    """uncertainty.resolution: the corrected TNRs and LSF at a few FWHMs of the emission
    image's resolution, and the distribution of that FWHM (uniform half range or normal sd)."""
    where = "uncertainty.resolution"
    obj = require_object(raw, where)
    check_keys(obj, where, ("fwhm_mm", "grid_fwhm_mm", "tnr", "lsf", "distribution",
                            "half_range_mm", "sd_mm", "sd_basis", "source", "assumed"))
    grid = obj.get("grid_fwhm_mm")
    if (not isinstance(grid, list) or len(grid) < 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                       and math.isfinite(v) and v > 0 for v in grid)
            or any(b < a for a, b in zip(grid, grid[1:]))):
        raise FieldValueError(f"{where}.grid_fwhm_mm", grid,
                              "a list of two or more FWHMs > 0 mm in increasing order")

    def values(v, field, upper):
        if (not isinstance(v, list) or len(v) != len(grid)
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                           and math.isfinite(x) and 0 < x < upper for x in v)):
            raise FieldValueError(field, v, f"{len(grid)} finite values > 0 and < {upper:g}, "
                                  "one per FWHM of grid_fwhm_mm")
        return [float(x) for x in v]
    out = {"fwhm_mm": number(obj, "fwhm_mm", where, exclusive_minimum=0, maximum=400),
           "grid_fwhm_mm": [float(v) for v in grid]}
    distribution = obj.get("distribution")
    if distribution == "uniform":
        out["half_range_mm"] = number(obj, "half_range_mm", where, minimum=0, maximum=100)
    elif distribution == "normal":
        out["sd_mm"] = number(obj, "sd_mm", where, minimum=0, maximum=100)
        if "sd_basis" in obj:
            if obj["sd_basis"] not in SD_BASES:
                raise FieldValueError(f"{where}.sd_basis", obj["sd_basis"],
                                      " or ".join(SD_BASES))
            out["sd_basis"] = obj["sd_basis"]
    else:
        raise FieldValueError(f"{where}.distribution", distribution, "uniform or normal")
    out["distribution"] = distribution
    tnr = require_object(obj.get("tnr") or {}, f"{where}.tnr")
    check_keys(tnr, f"{where}.tnr", [t.name for p in positions for t in p.tumours])
    out["tnr"] = {k: values(v, f"{where}.tnr.{k}", 1e6) for k, v in tnr.items()}
    if obj.get("lsf") is not None:
        out["lsf"] = values(obj["lsf"], f"{where}.lsf", 1.0)
    out["source"] = str(obj.get("source", ""))
    out["assumed"] = bool(obj.get("assumed", False))
    return out


def product_key_of(text: str, field: str = "product") -> str:
    """The catalogue key of a product name given in any case and with surrounding spaces
    (``TheraSphere``, ``THERASPHERE`` -> ``therasphere``); an unknown name is refused with
    the keys allowed."""
    keys = catalogue.product_keys()
    wanted = text.strip().casefold() if isinstance(text, str) else text
    for key in keys:
        if key.casefold() == wanted:
            return key
    raise UnknownNameError(field, text, "one of " + ", ".join(keys) + " (any case)",
                           suggestion(text, keys, any_case=True))


def parse_case(document: Any) -> Case:
    """Validate a case document (parsed JSON) and return a :class:`Case`.

    Raises a :class:`~tareplanner.errors.TarePlannerInputError` subclass that names the
    field, the value and what is allowed.
    """
    doc = require_object(document, "case")
    if doc.get("schema") != CASE_SCHEMA:
        raise SchemaError("schema", doc.get("schema"), CASE_SCHEMA)
    check_keys(doc, "", CASE_FIELDS)
    product_key = product_key_of(string(doc, "product", ""), "product")
    product = catalogue.product(product_key)
    method = string(doc, "method", "", choices=METHODS)
    if method not in product.methods:
        raise UnsupportedMethodError("method", method,
                                     f"for {product_key}: " + ", ".join(product.methods))

    if "planar_counts" in doc and doc["planar_counts"] is not None:
        if "lung_shunt_fraction" in doc:
            raise FieldValueError("planar_counts", doc["planar_counts"],
                                  "either lung_shunt_fraction or planar_counts, not both")
        counts = require_object(doc["planar_counts"], "planar_counts")
        check_keys(counts, "planar_counts", PLANAR_FIELDS)
        values = [number(counts, k, "planar_counts", minimum=0) for k in PLANAR_FIELDS]
        try:
            lsf = lsf_planar_geometric_mean(*values).lung_shunt_fraction
        except ValueError as exc:
            raise FieldValueError("planar_counts", counts, "counts with lung + liver > 0",
                                  str(exc)) from None
        lsf_method = "planar-geometric-mean"
        if lsf >= 1:
            raise FieldValueError("planar_counts", counts, "liver counts > 0 (LSF < 1)")
    else:
        lsf = number(doc, "lung_shunt_fraction", "", minimum=0, exclusive_maximum=1)
        lsf_method = string(doc, "lsf_method", "", default="unspecified", choices=LSF_METHODS)

    patient_raw = require_object(doc.get("patient", {}), "patient")
    check_keys(patient_raw, "patient", ("id", "height_cm", "weight_kg", *PATIENT_KEYS))
    study_raw = require_object(doc.get("study", {}), "study")
    check_keys(study_raw, "study", STUDY_KEYS)
    check_case_identity(patient_raw, study_raw)  # name, birth date, sex; study: for reports
    needs_size = method == "bsa"
    size_default = MissingFieldError if needs_size else None
    patient = Patient(
        patient_id=name_value(patient_raw, "id", "patient", default=None),
        height_cm=number(patient_raw, "height_cm", "patient", default=size_default,
                         minimum=50, maximum=250),
        weight_kg=number(patient_raw, "weight_kg", "patient", default=size_default,
                         minimum=20, maximum=300))

    liver_default = MissingFieldError if method == "bsa" else None
    whole_liver = number(doc, "whole_liver_volume_ml", "", default=liver_default,
                         exclusive_minimum=0, maximum=plausible_max("volume_ml"))
    whole_tumour = number(doc, "whole_liver_tumour_volume_ml", "", default=liver_default,
                          minimum=0, maximum=plausible_max("volume_ml"))
    if whole_liver is not None and whole_tumour is not None and whole_tumour >= whole_liver:
        raise FieldValueError("whole_liver_tumour_volume_ml", whole_tumour,
                              f"less than whole_liver_volume_ml ({whole_liver:g})")

    ordering_raw = require_object(doc.get("ordering", {}), "ordering")
    check_keys(ordering_raw, "ordering", ("therasphere_vials", "vial_calibration_time"))
    ordering = Ordering(
        therasphere_vials=string(ordering_raw, "therasphere_vials", "ordering",
                                 default="custom", choices=("standard", "custom")),
        vial_calibration_time=timestamp(ordering_raw, "vial_calibration_time", "ordering",
                                        required=False))

    positions_raw = doc.get("positions")
    if not isinstance(positions_raw, list) or not positions_raw:
        raise MissingFieldError("positions", "a non-empty list of injection positions") \
            if positions_raw is None else FieldValueError(
                "positions", positions_raw, "a non-empty list of injection positions")
    positions = tuple(_position(p, f"positions[{i}]", method) for i, p in enumerate(positions_raw))
    names = [p.name for p in positions]
    if len(set(names)) != len(names):
        raise FieldValueError("positions", names, "unique position names")

    measurement = require_object(doc.get("measurement") or {}, "measurement")
    check_keys(measurement, "measurement", ("file", "sha256", "warnings", "manual_entries",
                                            "resolution"))
    resolution = measurement.get("resolution")
    if resolution is not None:
        resolution = require_object(resolution, "measurement.resolution")
        number(resolution, "fwhm_mm", "measurement.resolution", exclusive_minimum=0,
               maximum=400)
        camera_sha = resolution.get("camera_sha256")
        if camera_sha is not None and not (isinstance(camera_sha, str) and len(camera_sha) == 64
                                           and all(c in "0123456789abcdef" for c in camera_sha)):
            raise FieldValueError("measurement.resolution.camera_sha256", camera_sha,
                                  "the SHA-256 of the camera file (64 lower-case hex digits)")
    manual = measurement.get("manual_entries", [])
    if not isinstance(manual, list) or not all(
            isinstance(e, dict) and isinstance(e.get("quantity"), str)
            and isinstance(e.get("entered"), (int, float))
            and not isinstance(e.get("entered"), bool) for e in manual):
        raise FieldValueError("measurement.manual_entries", manual,
                              "a list of {quantity, entered, measured} objects")
    measurement_warnings = measurement.get("warnings", [])
    if not isinstance(measurement_warnings, list) or not all(
            isinstance(w, dict) and isinstance(w.get("code"), str)
            and isinstance(w.get("message"), str) for w in measurement_warnings):
        raise FieldValueError("measurement.warnings", measurement_warnings,
                              "a list of {code, message} objects")

    liver_compromised = boolean(doc, "liver_compromised", "", default=False)
    return Case(
        scenario=parse_scenario(doc.get("scenario"), liver_compromised),
        uncertainty=_uncertainty(doc, positions),
        measurement_warnings=tuple(measurement_warnings),
        resolution=resolution,
        case_id=name_value(doc, "case_id", "", default=None),
        product=product_key, method=method,
        tissue_density_g_per_ml=number(doc, "tissue_density_g_per_ml", "", default=1.03,
                                       minimum=0.5, maximum=2.0),
        lung_shunt_fraction=lsf, lsf_method=lsf_method,
        **_lung_mass(doc),
        prior_lung_dose_gy=number(doc, "prior_lung_dose_gy", "", default=0.0, minimum=0),
        residual_fraction=number(doc, "residual_fraction", "", default=0.0, minimum=0,
                                 exclusive_maximum=1),
        liver_compromised=liver_compromised,
        patient=patient, whole_liver_volume_ml=whole_liver,
        whole_liver_tumour_volume_ml=whole_tumour,
        treatment_time=timestamp(doc, "treatment_time", "", required=False),
        ordering=ordering, positions=positions, document=doc)


def read_case(path: str | Path) -> Case:
    """Read and validate a case file."""
    return parse_case(read_json_file(path, "case file"))
