"""The dose–response record (``tareplanner.response/1``) and the probabilities it gives a plan.

A fit record holds the site's own curves (tumour response per lesion, liver toxicity per
patient) with their inputs by SHA-256, the software that fitted them and the method. A plan
names a fit (the site's record or a published one of ``data/dose_response_published.json``)
by hash and keeps the curve it used, so that it replays; the probabilities at the planned
doses are information, never limits: they bind nothing and change no activity.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from ..errors import FieldValueError, MissingFieldError, SchemaError, UnknownNameError
from ..physics.dose_response import COVERAGE, Curve, DoseResponseFit, lyman_parameters
from ..physics.dvh import bed_gy
from .case import canonical_sha256
from .fields import suggestion

RESPONSE_SCHEMA = "tareplanner.response/1"
PUBLISHED_SCHEMA = "tareplanner.dose-response-published/1"
PUBLISHED_PREFIX = "published:"
INFORMATION_ONLY = ("probabilities at the planned doses are information, never limits: they "
                    "bind nothing and change no activity")
#: metrics a plan has (its partition-model mean doses, and their BED)
PLAN_METRICS = ("mean", "bed_mean")


def software_with_statsmodels() -> dict:
    from importlib import metadata

    from .provenance import software_versions
    versions = software_versions()
    try:
        versions["statsmodels"] = metadata.version("statsmodels")
    except metadata.PackageNotFoundError:
        versions["statsmodels"] = None
    return versions


def _interval(d) -> dict:
    return d.as_dict()


def fit_part(fit: DoseResponseFit, *, metric: str, column: str, endpoint: str,
             observations, unit: str) -> dict:
    """One fitted curve as a part of the record (tumour or liver)."""
    c = fit.curve
    part = {
        "fitted": True, "endpoint": endpoint, "metric": metric, "metric_column": column,
        "model": c.link, "params": list(c.params),
        "covariance": [list(row) for row in c.covariance], "df": c.df,
        "covariance_kind": fit.covariance_kind,
        "naive_covariance": [list(row) for row in fit.naive_covariance],
        "n": fit.n, "events": fit.events, "patients": fit.clusters, "unit": unit,
        "counts_by_scale": dict(observations.counts), "excluded": dict(observations.excluded),
        "doses": [_interval(d) for d in fit.doses],
        "d50_gy": fit.dose(0.5).dose_gy,
        "naive_d50": _interval(fit.naive_d50),
        "slope_p_value": fit.slope_p_value,
        "goodness_of_fit": fit.goodness.as_dict(),
        "band": {"coverage": COVERAGE, "dose_gy": list(fit.band_dose_gy),
                 "p": list(fit.band_p), "low": list(fit.band_low),
                 "high": list(fit.band_high)},
        "observed": [dict(b.__dict__) for b in fit.observed],
        "threshold": {"definition": "dose of 10 % fitted probability (D10)",
                      **_interval(fit.dose(0.1))},
        "plateau": {"definition": "plateau model P = p_max F(b0 + b1 D), likelihood ratio "
                                  "against p_max = 1; onset: dose of 90 % fitted "
                                  "probability (D90)",
                    **fit.plateau.as_dict(), "onset": _interval(fit.dose(0.9))},
        "warnings": list(fit.warnings)}
    if c.link == "probit":
        td50, m = lyman_parameters(c.params)
        part["lyman"] = {"td50_gy": td50, "m": m,
                         "note": "probit in dose = Lyman NTCP with n = 1 (mean dose)"}
    return part


def not_fitted(reason: str) -> dict:
    return {"fitted": False, "reason": reason}


def response_record(*, inputs: dict, method: dict, tumour: dict, liver: dict,
                    warnings: list[dict]) -> dict:
    """A ``tareplanner.response/1`` record; ``inputs`` maps each input to {path, sha256}."""
    identity = canonical_sha256({k: (v or {}).get("sha256") for k, v in inputs.items()}
                                | {"method": method})
    return {"schema": RESPONSE_SCHEMA,
            "created": datetime.now().astimezone().isoformat(timespec="seconds"),
            "software": software_with_statsmodels(), "input_sha256": identity,
            "inputs": inputs, "method": method, "tumour": tumour, "liver": liver,
            "warnings": warnings}


def _curve_part(part: Any, where: str) -> dict | None:
    """A fitted part of a record read from disk, checked (params, covariance finite)."""
    if not isinstance(part, dict):
        raise SchemaError(where, part, "an object")
    if not part.get("fitted"):
        return None
    for key in ("metric", "model", "params", "covariance"):
        if key not in part:
            raise MissingFieldError(f"{where}.{key}", "see docs/schemas/response-1.schema.json")
    if part["model"] not in ("logit", "probit"):
        raise FieldValueError(f"{where}.model", part["model"], "logit or probit")
    numbers = [part["params"]] + list(part["covariance"]) if isinstance(
        part["covariance"], list) else [None]
    shapes = isinstance(part["params"], list) and len(part["params"]) == 2 and \
        isinstance(part["covariance"], list) and len(part["covariance"]) == 2
    if not shapes or not all(isinstance(r, list) and len(r) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in r) for r in numbers):
        raise FieldValueError(f"{where}.params", part.get("params"),
                              "two finite coefficients and a 2x2 finite covariance")
    return part


def validate_response_record(record: Any, where: str = "response record") -> dict:
    if not isinstance(record, dict) or record.get("schema") != RESPONSE_SCHEMA:
        raise SchemaError(f"{where}.schema", record.get("schema") if isinstance(record, dict)
                          else None, RESPONSE_SCHEMA)
    for key in ("input_sha256", "tumour", "liver", "software", "method"):
        if key not in record:
            raise MissingFieldError(f"{where}.{key}", "see docs/schemas/response-1.schema.json")
    tumour = _curve_part(record["tumour"], f"{where}.tumour")
    liver = _curve_part(record["liver"], f"{where}.liver")
    if tumour is None and liver is None:
        raise FieldValueError(f"{where}", "no fitted curve", "a record with a fitted tumour "
                              "or liver curve")
    return record


@lru_cache(maxsize=None)
def published_fits() -> dict:
    """The published dose–response relations shipped with their sources."""
    text = resources.files("tareplanner.data").joinpath(
        "dose_response_published.json").read_text("utf-8")
    document = json.loads(text)
    if document.get("schema") != PUBLISHED_SCHEMA:
        raise SchemaError("dose_response_published.json schema", document.get("schema"),
                          PUBLISHED_SCHEMA)
    return document["fits"]


def _curve_entry(part: dict | None, scope: dict | None = None) -> dict | None:
    if part is None:
        return None
    keep = ("endpoint", "metric", "model", "params", "covariance", "df", "d50_gy", "unit",
            "n", "events", "patients", "note", "lyman")
    entry = {k: part.get(k) for k in keep if k in part}
    if scope:
        entry["scope"] = scope
    return entry


def fit_for_plan(spec: str, read_json) -> dict:
    """The curves a plan uses, from ``published:KEY`` or a ``tareplanner.response/1`` file
    (``read_json(path, option)`` reads it), with what identifies them (hash, key, source)."""
    if spec.startswith(PUBLISHED_PREFIX):
        key = spec[len(PUBLISHED_PREFIX):]
        fits = published_fits()
        if key not in fits:
            raise UnknownNameError("--response", spec, "published:" + ", published:".join(fits),
                                   suggestion(key, list(fits)))
        entry = fits[key]
        scope = {k: entry[k] for k in ("source", "population", "nuclide", "product",
                                        "dosimetry") if k in entry}
        return {"kind": "published", "key": key, "sha256": canonical_sha256(entry),
                "label": f"published fit {key} ({entry['source']})",
                "tumour": _curve_entry(entry.get("tumour"), scope),
                "liver": _curve_entry(entry.get("liver"), scope)}
    record = validate_response_record(read_json(spec, "--response"), spec)
    return {"kind": "site", "sha256": canonical_sha256(record),
            "input_sha256": record["input_sha256"],
            "label": f"site fit {spec} (created {record.get('created', '-')})",
            "tumour": _curve_entry(_curve_part(record["tumour"], "tumour")),
            "liver": _curve_entry(_curve_part(record["liver"], "liver"))}


def _curve(entry: dict) -> Curve | None:
    if entry.get("params") is None or entry.get("covariance") is None:
        return None
    cov = entry["covariance"]
    return Curve(entry["model"], tuple(entry["params"]), (tuple(cov[0]), tuple(cov[1])),
                 entry.get("df"))


def _plan_dose(entry: dict, dose_gy: float, low: float | None, high: float | None,
               tissue: str, half_life_h: float, radiobiology: dict) -> tuple:
    """The plan's value of the fit's metric: the mean dose, or the BED of that mean dose
    (a uniform dose assumed: the mean of a voxel BED is higher, BED being convex)."""
    metric = entry["metric"]
    if metric == "mean":
        return dose_gy, low, high, "partition-model mean absorbed dose"
    if metric == "bed_mean":
        lq = radiobiology["bed_parameters"][tissue]

        def bed(d):
            return None if d is None else float(bed_gy(d, half_life_h, lq["repair_half_time_h"],
                                                       lq["alpha_beta_gy"]))
        return bed(dose_gy), bed(low), bed(high), (
            f"BED of the partition-model mean dose, a uniform dose assumed (alpha/beta "
            f"{lq['alpha_beta_gy']:g} Gy, repair half-time {lq['repair_half_time_h']:g} h; "
            "the mean voxel BED of a non-uniform dose is higher)")
    return None, None, None, (f"the fit's metric is {metric}; a plan holds mean doses only "
                              "(a voxel dose gives it after treatment)")


def _probability(entry: dict, dose, low, high, basis: str) -> dict:
    out = {"metric": entry["metric"], "planned_value_gy": dose, "dose_basis": basis}
    if dose is None:
        out.update(available=False, reason=basis)
        return out
    curve = _curve(entry)
    if curve is None:
        d50 = entry.get("d50_gy")
        out.update(available=False, reason=(
            "the source gives the dose of 50 % probability only, not the slope") if d50 else
            "the fit holds no curve")
        if d50:
            out["relative_to_d50"] = "above" if dose >= d50 else "below"
            out["d50_gy"] = d50
        return out
    p, p_low, p_high = (float(v) for v in curve.probability(dose))
    out.update(available=True, probability=p, low=p_low, high=p_high,
               interval="95 % interval of the fit at the planned value")
    if low is not None and high is not None:
        mc_low, mc_high = (float(curve.probability(v)[0]) for v in (low, high))
        out["monte_carlo"] = {
            "value_low_gy": low, "value_high_gy": high,
            "probability_low": min(mc_low, mc_high), "probability_high": max(mc_low, mc_high),
            "note": "the probability at the ends of the planned value's Monte Carlo 95 % "
                    "interval (the probability is monotone in dose, so these are its own "
                    "2.5 and 97.5 percentiles across the samples)"}
    return out


def plan_response(plan: dict, fit: dict) -> dict:
    """The ``dose_response`` part of a plan record: for each tumour the probability of
    response, for the liver the probability of toxicity, at the planned doses, with the
    fit's interval and their spread across the plan's uncertainty Monte Carlo."""
    from .. import catalogue
    radiobiology = catalogue.radiobiology()
    half_life = plan["nuclide"]["half_life_h"]
    figures = (plan.get("uncertainty") or {}).get("figures") or {}
    warnings = []
    tumours = []
    entry = fit.get("tumour")
    for pos in plan["positions"]:
        for t in pos["tumours"]:
            figure = figures.get(f"{pos['name']}/{t['name']}") or {}
            row = {"position": pos["name"], "tumour": t["name"]}
            if entry is None:
                row.update(available=False, reason="the fit has no tumour curve")
            else:
                row.update(_probability(entry, *_plan_dose(
                    entry, t["dose_gy"], figure.get("low"), figure.get("high"), "tumour",
                    half_life, radiobiology)))
            tumours.append(row)
    entry = fit.get("liver")
    whole = plan.get("whole_liver") or {}
    if entry is None:
        liver = {"available": False, "reason": "the fit has no liver toxicity curve"}
    elif not whole.get("checked"):
        liver = {"available": False, "reason": "the plan has no whole-normal-liver dose "
                 f"({whole.get('reason', 'not checked')})"}
    else:
        figure = figures.get("whole normal liver") or {}
        liver = {"structure": "whole normal liver (tumours excluded)", **_probability(
            entry, *_plan_dose(entry, whole["whole_normal_liver_dose_gy"], figure.get("low"),
                               figure.get("high"), "normal", half_life, radiobiology))}
    for part in (fit.get("tumour"), fit.get("liver")):
        scope = (part or {}).get("scope") or {}
        product = scope.get("product")
        if product and product != plan["product"]["key"]:
            warnings.append({"code": "response-fit-other-product",
                             "message": f"the dose–response fit is of {product}, the plan of "
                                        f"{plan['product']['key']}: {fit['label']}"})
    return {"information_only": INFORMATION_ONLY, "fit": fit, "tumours": tumours,
            "liver": liver, "warnings": warnings}


def with_response(plan: dict, spec: str) -> dict:
    """The plan record with the probabilities of the fit ``spec`` (a file or published:KEY),
    as ``plan_case(..., response=fit_for_plan(spec))`` adds them (the Slicer module and the
    web page, whose plans come from the shared workflow)."""
    from .fields import read_json_file
    part = plan_response(plan, fit_for_plan(spec, read_json_file))
    return {**plan, "dose_response": part, "warnings": plan["warnings"] + part["warnings"]}


def _p(row: dict) -> str:
    if not row.get("available"):
        if row.get("d50_gy"):
            return (f"{row['relative_to_d50']} the source's 50 % dose ({row['d50_gy']:g} Gy); "
                    f"no probability: {row.get('reason', '-')}")
        return f"not computed ({row.get('reason', '-')})"
    text = f"{row['probability']:.0%} (95 % CI {row['low']:.0%}-{row['high']:.0%})"
    mc = row.get("monte_carlo")
    if mc:
        text += (f"; across the dose uncertainty {mc['probability_low']:.0%}-"
                 f"{mc['probability_high']:.0%}")
    return text


def _value(row: dict) -> str:
    value = row.get("planned_value_gy")
    name = {"mean": "mean dose", "bed_mean": "BED"}.get(row.get("metric"), row.get("metric"))
    if value is None:
        return f"{name} -"
    text = f"{name} {value:.0f} Gy"
    if row.get("metric") == "bed_mean":
        text += " (of the mean dose, assumed uniform)"
    return text


def response_lines(record: dict) -> list[str]:
    """The plan's dose–response part as text lines ([] when the plan names no fit)."""
    part = record.get("dose_response")
    if not part:
        return []
    lines = [f"dose-response ({part['fit']['label']}; {part['information_only']}):"]
    for row in part["tumours"]:
        lines.append(f"    P(response) {row['position']}/{row['tumour']}: {_value(row)}: "
                     f"{_p(row)}")
    liver = part["liver"]
    lines.append(f"    P(liver toxicity): " + (f"{_value(liver)}: " if liver.get("metric")
                                                else "") + _p(liver))
    return lines  # its warnings are the plan's (record["warnings"])
