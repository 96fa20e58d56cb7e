"""The camera file (``tareplanner.camera/1``, written by ``tareplanner calibrate``): reading
and checking it, and the PSF it stands for. A plain FWHM file (``fwhm_mm``, ``source``) is
read by :func:`tareplanner.imaging.partial_volume.resolution_from_camera_file`;
:func:`read_resolution_file` takes either."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from ..errors import FieldValueError, SchemaError
from ..physics.partial_volume import PointSpread
from ..physics.uncertainty import RESOLUTION_SD_BASES
from .partial_volume import FWHM_RANGE_MM, check_fwhm, resolution_from_camera_file

CAMERA_SCHEMA = "tareplanner.camera/1"
#: what the resolution's standard uncertainty carried into the Monte Carlo is
FIT_BASIS, SPREAD_BASIS, CONVERGENCE_BASIS = RESOLUTION_SD_BASES
MISFIT_CODE = "camera-recovery-misfit"
#: the calibration's warning that the phantom's fitted resolution still changed with more
#: iterations (calibrate --more-iterations-image)
NOT_CONVERGED_CODE = "camera-not-converged"
MODALITIES = ("SPECT", "PET")
#: the widest PSF component a camera file may hold (mm; a tail of scatter or penetration)
TAIL_FWHM_MAX_MM = 400.0


def _number(doc, key, field, low=None, allow_zero=False, high=None, unit=""):
    value = doc.get(key) if isinstance(doc, dict) else None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value >= low if allow_zero else value > low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        allowed = ("a finite number"
                   + ("" if low is None else (f" >= {low:g}" if allow_zero else f" > {low:g}"))
                   + ("" if high is None else f" and <= {high:g}") + unit)
        raise FieldValueError(f"{field}:{key}", value, allowed)
    return float(value)


def camera_resolution(doc: dict, path: str, field: str = "--camera", *,
                      nuclide: str | None = None, modality: str | None = None,
                      sha256: str | None = None) -> dict:
    """The resolution a ``tareplanner.camera/1`` document gives, checked; refused by name
    when it is for another nuclide or modality than the image it is to correct."""
    where = f"{field} {path}"
    if doc.get("schema") != CAMERA_SCHEMA:
        raise SchemaError(f"{where}:schema", doc.get("schema"), CAMERA_SCHEMA)
    if doc.get("modality") not in MODALITIES:
        raise FieldValueError(f"{where}:modality", doc.get("modality"), " or ".join(MODALITIES))
    if not isinstance(doc.get("nuclide"), str):
        raise FieldValueError(f"{where}:nuclide", doc.get("nuclide"), "the nuclide's name")
    if modality is not None and doc["modality"] != modality:
        raise FieldValueError(f"{where}:modality", doc["modality"],
                              f"{modality} (the camera file of the image it corrects)")
    if nuclide is not None and doc["nuclide"] != nuclide:
        raise FieldValueError(f"{where}:nuclide", doc["nuclide"],
                              f"{nuclide} (the image's radionuclide)")
    psf = doc.get("psf")
    if not isinstance(psf, dict):
        raise FieldValueError(f"{where}:psf", psf, "an object with components, fwhm_mm and "
                              "fwhm_sd_mm")
    fwhm = check_fwhm(psf.get("fwhm_mm"), f"{where}:psf.fwhm_mm")
    sd = _number(psf, "fwhm_sd_mm", f"{where}:psf", low=0.0, allow_zero=True,
                 high=FWHM_RANGE_MM[1], unit=" mm (at most the widest FWHM a camera gives)")
    components = psf.get("components")
    if not isinstance(components, list) or not components:
        raise FieldValueError(f"{where}:psf.components", components,
                              "a list of {weight, fwhm_mm}")
    pairs = []
    for i, c in enumerate(components):
        w = _number(c, "weight", f"{where}:psf.components[{i}]", low=0.0)
        f = _number(c, "fwhm_mm", f"{where}:psf.components[{i}]", low=0.0)
        if f > TAIL_FWHM_MAX_MM:
            raise FieldValueError(f"{where}:psf.components[{i}]:fwhm_mm", f,
                                  f"a FWHM > 0 and <= {TAIL_FWHM_MAX_MM:g} mm")
        pairs.append((w, f))
    if abs(sum(w for w, _ in pairs) - 1.0) > 1e-6:
        raise FieldValueError(f"{where}:psf.components", [w for w, _ in pairs],
                              "weights summing to 1")
    name = doc.get("name") or doc.get("reconstruction") or path
    warnings = doc.get("warnings") or []
    if not isinstance(warnings, list) or not all(
            isinstance(w, dict) and isinstance(w.get("code"), str)
            and isinstance(w.get("message"), str) for w in warnings):
        raise FieldValueError(f"{where}:warnings", warnings,
                              "a list of {code, message} (the calibration's warnings)")
    spread = (None if psf.get("fwhm_spread_mm") is None else
              _number(psf, "fwhm_spread_mm", f"{where}:psf", low=0.0, allow_zero=True,
                      high=FWHM_RANGE_MM[1],
                      unit=" mm (at most the widest FWHM a camera gives)"))
    change = (None if psf.get("fwhm_convergence_mm") is None else
              _number(psf, "fwhm_convergence_mm", f"{where}:psf", low=0.0, allow_zero=True,
                      high=FWHM_RANGE_MM[1],
                      unit=" mm (at most the widest FWHM a camera gives)"))
    codes = {w["code"] for w in warnings}
    carried = fwhm_uncertainty(sd, spread, MISFIT_CODE in codes, fwhm, pairs,
                               convergence_mm=change if NOT_CONVERGED_CODE in codes else None)
    noise = roi_noise_of(doc, where)
    return {"fwhm_mm": fwhm, **carried, **({"roi_noise": noise} if noise else {}),
            "psf_components": [[w, f] for w, f in pairs],
            "psf_model": psf.get("model", "gaussian"),
            "source": f"camera file {name} ({doc['modality']} {doc['nuclide']}, "
                      f"IEC phantom calibration of {doc.get('date')})",
            "chosen_by": f"camera file {path}", "assumed": False,
            "camera": {"file": str(path), "sha256": sha256, "name": doc.get("name"),
                       "reconstruction": doc.get("reconstruction"),
                       "modality": doc["modality"], "nuclide": doc["nuclide"],
                       "date": doc.get("date"),
                       "warnings": [{"code": w["code"], "message": w["message"]}
                                    for w in warnings]}}


#: the units of a camera file's ``roi_noise.reference_total``: an image in counts, or in Bq/mL
#: (its total activity in Bq)
ROI_NOISE_TOTAL_UNITS = ("counts", "Bq")
#: the fitted law's exponent: 0 (noise not falling with volume) to 1 (twice the volume's
#: variance of independent voxels, beyond any measured reconstruction)
ROI_NOISE_EXPONENT_RANGE = (0.0, 1.0)


def roi_noise_of(doc: dict, where: str) -> dict | None:
    """The camera file's measured background variability (``roi_noise``), checked; None for
    a camera file written before it was measured."""
    noise = doc.get("roi_noise")
    if noise is None:
        return None
    field = f"{where}:roi_noise"
    if not isinstance(noise, dict) or not isinstance(noise.get("model"), dict):
        raise FieldValueError(field, noise, "an object with model and reference_total")
    model = noise["model"]
    a = _number(model, "coefficient", f"{field}.model", low=0.0, high=10.0,
                unit=" (a relative SD)")
    b = _number(model, "exponent", f"{field}.model", low=ROI_NOISE_EXPONENT_RANGE[0],
                allow_zero=True, high=ROI_NOISE_EXPONENT_RANGE[1])
    total = _number(noise, "reference_total", field, low=0.0)
    if noise.get("total_units") not in ROI_NOISE_TOTAL_UNITS:
        raise FieldValueError(f"{field}:total_units", noise.get("total_units"),
                              " or ".join(ROI_NOISE_TOTAL_UNITS))
    span = model.get("volume_range_ml")
    if (not isinstance(span, list) or len(span) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                       and math.isfinite(v) and v > 0 for v in span) or span[0] > span[1]):
        raise FieldValueError(f"{field}.model:volume_range_ml", span,
                              "[smallest, largest] sphere volume in mL, both > 0")
    seconds = (None if noise.get("acquisition_s") is None else
               _number(noise, "acquisition_s", field, low=0.0, high=86400.0, unit=" s"))
    return {"coefficient": a, "exponent": b, "reference_total": total,
            "total_units": noise["total_units"], "acquisition_s": seconds,
            "volume_range_ml": [float(span[0]), float(span[1])]}


def fwhm_uncertainty(fit_sd_mm: float, spread_mm: float | None, misfit: bool,
                     core_fwhm_mm: float, components, *,
                     convergence_mm: float | None = None) -> dict:
    """The FWHM's standard uncertainty a camera file carries into the Monte Carlo: the fit's
    (``fwhm_sd_mm`` of the file), or, for a camera whose spheres do not follow one PSF (its
    ``camera-recovery-misfit`` warning), the spread of the spheres' equivalent FWHMs where
    that is larger (a tie keeps the fit's). The spread is of Gaussian FWHMs; for a
    core-plus-tail PSF, whose every component the Monte Carlo scales with the core, it is
    scaled by core FWHM / effective FWHM (the same relative change). ``convergence_mm``
    (given only with the ``camera-not-converged`` warning): the effective FWHM's change
    between the protocol's reconstruction and one with more iterations, scaled the same
    way; carried where it is larger than the one chosen before (a tie keeps that). Says
    which and why."""
    out = _fit_or_spread(fit_sd_mm, spread_mm, misfit, core_fwhm_mm, components)
    if convergence_mm is None:
        return out
    effective = math.sqrt(sum(w * f ** 2 for w, f in components))
    scaled = convergence_mm if len(components) == 1 else convergence_mm * core_fwhm_mm / effective
    core = "" if scaled == convergence_mm else f", {scaled:.2f} mm of the core FWHM"
    out["fwhm_convergence_mm"] = convergence_mm
    if scaled > out["fwhm_sd_mm"]:
        out["fwhm_sd_reason"] = (
            f"camera-not-converged warning: the phantom's effective FWHM changed by "
            f"{convergence_mm:.2f} mm with more iterations{core}, more than the "
            f"{out['fwhm_sd_mm']:.2f} mm otherwise carried ({out['fwhm_sd_basis']}); the "
            "change is carried")
        out.update(fwhm_sd_mm=scaled, fwhm_sd_basis=CONVERGENCE_BASIS)
    else:
        out["fwhm_sd_reason"] += (
            f"; camera-not-converged warning, but the FWHM's change with more iterations "
            f"({convergence_mm:.2f} mm{core}) is not larger")
    return out


def _fit_or_spread(fit_sd_mm: float, spread_mm: float | None, misfit: bool,
                   core_fwhm_mm: float, components) -> dict:
    """:func:`fwhm_uncertainty` before the convergence: the fit's or the spread."""
    effective = math.sqrt(sum(w * f ** 2 for w, f in components))
    scaled = (None if spread_mm is None else
              spread_mm if len(components) == 1 else spread_mm * core_fwhm_mm / effective)
    core = ("" if scaled is None or scaled == spread_mm else
            f", {scaled:.2f} mm of the core FWHM")
    out = {"fwhm_sd_mm": fit_sd_mm, "fwhm_fit_sd_mm": fit_sd_mm, "fwhm_spread_mm": spread_mm,
           "fwhm_sd_basis": FIT_BASIS}
    if not misfit:
        out["fwhm_sd_reason"] = ("no recovery-misfit warning: the spheres follow the fitted PSF "
                                 "(data/camera_calibration.json recovery_misfit_max), so its "
                                 "fit uncertainty is carried")
    elif scaled is None:
        out["fwhm_sd_reason"] = ("recovery-misfit warning, but the camera file holds no spread "
                                 "of the spheres' equivalent FWHMs (written before it was "
                                 "computed, or fewer than two spheres have one): the fit "
                                 "uncertainty is carried, and may understate the resolution's")
    elif scaled > fit_sd_mm:
        out.update(fwhm_sd_mm=scaled, fwhm_sd_basis=SPREAD_BASIS)
        out["fwhm_sd_reason"] = (
            f"recovery-misfit warning: the spheres' equivalent FWHMs spread by {spread_mm:.2f}"
            f" mm (sd{core}),"
            f" more than the fit uncertainty {fit_sd_mm:.2f} mm; the spread is carried")
    else:
        out["fwhm_sd_reason"] = (
            f"recovery-misfit warning, but the spheres' equivalent FWHMs spread by only "
            f"{spread_mm:.2f} mm (sd{core}), "
            f"not more than the fit uncertainty {fit_sd_mm:.2f} mm; the fit uncertainty is "
            "carried")
    return out


def read_camera_file(path: str, field: str = "--camera", *, nuclide=None, modality=None
                     ) -> dict:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise FieldValueError(field, path, "a readable camera file", exc.strerror or "") from None
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=lambda c: float("nan"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SchemaError(field, path, "a JSON camera file", str(exc)) from None
    if not isinstance(doc, dict):
        raise SchemaError(field, type(doc).__name__, "a JSON object")
    return camera_resolution(doc, path, field, nuclide=nuclide, modality=modality,
                             sha256=hashlib.sha256(raw).hexdigest())


def camera_warnings(resolution: dict | None) -> list[dict]:
    """The calibration's warnings a camera file carries (e.g. ``camera-recovery-misfit``),
    each naming the file, to be repeated in every record corrected with it."""
    camera = (resolution or {}).get("camera") or {}
    return [{"code": w["code"], "message": f"camera file {camera.get('file')}: {w['message']}"}
            for w in camera.get("warnings", [])]


def psf_of(resolution: dict) -> PointSpread:
    """The PSF a resolution dict stands for (its components, or a Gaussian of fwhm_mm)."""
    comps = resolution.get("psf_components")
    if comps:
        return PointSpread(tuple((float(w), float(f)) for w, f in comps))
    return PointSpread.gaussian(float(resolution["fwhm_mm"]))


def scaled_psf(resolution: dict, fwhm_mm: float) -> PointSpread:
    """The PSF with every component's FWHM scaled so that the core (first) FWHM is
    ``fwhm_mm``: how the Monte Carlo varies a resolution."""
    psf = psf_of(resolution)
    factor = fwhm_mm / float(resolution["fwhm_mm"])
    return PointSpread(tuple((w, f * factor) for w, f in psf.components))


def read_resolution_file(path: str, field: str = "--camera", *, nuclide=None, modality=None
                         ) -> dict:
    """A camera file of either kind: ``tareplanner.camera/1`` (checked against ``nuclide``
    and ``modality`` when given) or a plain ``{"fwhm_mm", "source"}`` file."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        doc = None
    if isinstance(doc, dict) and "schema" in doc:
        return read_camera_file(path, field, nuclide=nuclide, modality=modality)
    return resolution_from_camera_file(path, field)
