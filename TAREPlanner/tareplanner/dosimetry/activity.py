"""Activity maps: predictive (the planned activities spread by the scout/MAA counts) and
post-treatment (Y-90 PET in Bq/mL, SPECT counts scaled to the administered activity), and the
check of a post-treatment image's activity against the activity administered."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import SimpleITK as sitk

from ..physics.decay import decay_factor, hours_between
from .structures import Structures, occupancies_on, occupancy_on


def predictive_activity(counts: sitk.Image, structures: Structures, activities_gbq: dict,
                        lung_shunt_fraction: float, residual_fraction: float) -> tuple:
    """Activity per voxel (GBq) of the planned treatment, from the scout/MAA distribution.

    Position i's liver activity A_i (1 − R)(1 − LSF) is spread over its territory in
    proportion to the counts; the lung activity Σ A_i (1 − R) LSF over the lungs in proportion
    to the counts. Counts outside every territory and the lungs get no activity; their fraction
    is reported. Overlapping territories share a voxel's counts by their occupancy.
    """
    c = np.clip(sitk.GetArrayFromImage(counts).astype(np.float64), 0, None)
    # every structure's occupancy of this grid in one pass (the dose, its report and the
    # activity checks ask for them again)
    occupancies_on(counts, [*structures.territories.values(), *structures.masks.values()],
                   structures.reference)
    occ = {name: occupancy_on(counts, m, structures.reference)
           for name, m in structures.territories.items()}
    total_occ = np.maximum(sum(occ.values()), 1.0)
    activity = np.zeros(c.shape, np.float64)
    for name, a_gbq in activities_gbq.items():
        share = c * occ[name] / total_occ
        if share.sum() <= 0:
            raise ValueError(f"the territory of {name!r} holds no counts")
        activity += share / share.sum() * a_gbq * (1 - residual_fraction) * (1 - lung_shunt_fraction)
    lungs = occupancy_on(counts, structures.masks["lungs"], structures.reference)
    lung_share = c * lungs
    total_gbq = sum(activities_gbq.values())
    if lung_share.sum() > 0:
        activity += lung_share / lung_share.sum() * total_gbq * (1 - residual_fraction) * \
            lung_shunt_fraction
    covered = np.clip(sum(occ.values()) + lungs, 0, 1)
    outside = float((c * (1 - covered)).sum() / c.sum()) if c.sum() > 0 else 0.0
    image = sitk.GetImageFromArray(activity.astype(np.float32))
    image.CopyInformation(counts)
    return image, {"counts_outside_territories_and_lungs_fraction": outside}


def pet_activity_at_administration(pet: sitk.Image, acquisition: datetime,
                                   administration: datetime, half_life_h: float) -> sitk.Image:
    """GBq per voxel at administration from a PET in Bq/mL decay-corrected to acquisition
    start: A = C · V · exp(λ Δt) (microspheres are permanent: physical decay only)."""
    voxel_ml = float(np.prod(pet.GetSpacing())) / 1000.0
    elapsed = hours_between(administration, acquisition)
    remaining = float(decay_factor(elapsed, half_life_h))
    if not (math.isfinite(remaining) and remaining > 0):
        raise ValueError(f"acquisition {elapsed:.4g} h after the administration: the decay "
                         "correction is out of range (check both times)")
    factor = 1.0 / remaining
    values = sitk.GetArrayFromImage(pet).astype(np.float64) * voxel_ml * factor / 1e9
    image = sitk.GetImageFromArray(values.astype(np.float32))
    image.CopyInformation(pet)
    return image


def counts_to_activity(counts: sitk.Image, structures: Structures, administered_gbq: float,
                       residual_fraction: float) -> sitk.Image:
    """Scale a post-treatment SPECT (bremsstrahlung or Ho-166) to the implanted activity:
    A(1 − R) shared by the counts in liver and lungs."""
    c = np.clip(sitk.GetArrayFromImage(counts).astype(np.float64), 0, None)
    liver, lungs = occupancies_on(counts, [structures.masks["liver"], structures.masks["lungs"]],
                                  structures.reference)
    inside = np.clip(liver + lungs, 0, 1)
    total = (c * inside).sum()
    if total <= 0:
        raise ValueError("no counts in liver and lungs")
    values = c * inside / total * administered_gbq * (1 - residual_fraction)
    image = sitk.GetImageFromArray(values.astype(np.float32))
    image.CopyInformation(counts)
    return image


def verification_settings() -> dict:
    """The packaged ``data/verification.json``: the tolerance of the post-treatment activity
    check with its source, and the likely causes of a difference."""
    import json
    from importlib import resources
    text = resources.files("tareplanner.data").joinpath("verification.json").read_text("utf-8")
    return json.loads(text)


def activity_check(image_total_gbq: float, inside_gbq: float, administered_gbq: float,
                   residual_fraction: float, administered_source: str,
                   tolerance: float | None = None,
                   outside_fraction_corrected: float | None = None) -> tuple[dict, list[dict]]:
    """Activity found in a post-treatment image against the activity administered.

    Expected in the patient: A_expected = A_administered (1 − R). Relative difference
    δ = (A_image − A_expected) / A_expected over the whole image (decay-corrected to the
    administration). |δ| ≤ tolerance passes (to 1·10⁻⁹ relative, for rounding); beyond it a
    ``post-treatment-activity`` warning names the likely causes. The tolerance defaults to
    ``data/verification.json``. Returns (the check, its warnings).
    """
    from ..errors import FieldValueError
    settings = verification_settings()
    entry = settings["post_treatment_activity_tolerance"]
    tol = float(entry["value"]) if tolerance is None else float(tolerance)
    if not (np.isfinite(administered_gbq) and administered_gbq > 0):
        raise FieldValueError("administered activity (GBq)", administered_gbq,
                              "a finite activity > 0 GBq")
    if not 0 <= residual_fraction < 1:
        raise FieldValueError("residual fraction", residual_fraction, "0 <= R < 1")
    if not np.isfinite(image_total_gbq):
        raise FieldValueError("activity in the post-treatment image (GBq)", image_total_gbq,
                              "a finite number (the image holds NaN or infinite voxels)")
    expected = administered_gbq * (1.0 - residual_fraction)
    relative = (image_total_gbq - expected) / expected
    within = abs(relative) <= tol * (1 + 1e-9)
    check = {"applicable": True,
             "administered_activity_gbq": administered_gbq,
             "administered_source": administered_source,
             "residual_fraction": residual_fraction,
             "expected_in_patient_gbq": expected,
             "image_total_gbq": image_total_gbq,
             "inside_liver_and_lungs_gbq": inside_gbq,
             "inside_liver_and_lungs_fraction": (inside_gbq / image_total_gbq
                                                 if image_total_gbq > 0 else None),
             "outside_liver_and_lungs_gbq": image_total_gbq - inside_gbq,
             "outside_liver_and_lungs_fraction": ((image_total_gbq - inside_gbq)
                                                  / image_total_gbq
                                                  if image_total_gbq > 0 else None),
             "inside_liver_and_lungs_relative_to_expected": (inside_gbq - expected) / expected,
             "outside_liver_and_lungs_fraction_corrected": outside_fraction_corrected,
             "relative_difference": relative,
             "tolerance": tol,
             "tolerance_source": entry["source"] if tolerance is None else "given by the caller",
             "within_tolerance": bool(within)}
    warnings = []
    limit = settings["outside_structures_warning_fraction"]
    check["outside_warning_fraction"] = limit["value"]
    check["outside_warning_source"] = limit["source"]
    # as imaged, blur alone puts several per cent outside: only the corrected fraction is
    # compared with the threshold
    outside = outside_fraction_corrected
    check["outside_warning_evaluated"] = outside is not None
    if outside is not None and outside > limit["value"]:
        which = "after the partial-volume correction"
        warnings.append({
            "code": "activity-outside-structures",
            "message": f"{outside:.1%} of the activity in the post-treatment image lies "
                       f"outside liver and lungs {which}, more than "
                       f"{limit['value']:.0%}: look for extrahepatic deposition (stomach, "
                       "duodenum, gallbladder) or a misregistered image"})
    if not within:
        causes = "; ".join(settings["likely_causes"]["value"])
        warnings.append({
            "code": "post-treatment-activity",
            "message": f"the post-treatment image holds {image_total_gbq:.3f} GBq at "
                       f"administration ({inside_gbq:.3f} GBq in liver and lungs) against "
                       f"{expected:.3f} GBq expected ({administered_source} "
                       f"{administered_gbq:.3f} GBq, residual {residual_fraction:.1%}): "
                       f"{relative:+.1%}, beyond the ±{tol:.0%} tolerance; delivered doses "
                       f"scale with it. Check: {causes}."})
    return check, warnings


def activity_inside(activity: sitk.Image, structures: Structures,
                    names=("liver", "lungs")) -> float:
    """GBq of an activity image inside the union of CT-grid structures (voxel occupancy by
    supersampling, as for the dose)."""
    occupied = sum(occupancies_on(activity, [structures.masks[n] for n in names],
                                  structures.reference))
    values = sitk.GetArrayFromImage(activity).astype(np.float64)
    return float((values * np.clip(occupied, 0, 1)).sum())


def post_treatment_activity_check(activity: sitk.Image, structures: Structures, plan: dict, *,
                                  administered_gbq: float | None = None,
                                  residual_fraction: float | None = None,
                                  tolerance: float | None = None,
                                  outside_fraction_corrected: float | None = None
                                  ) -> tuple[dict, list[dict]]:
    """:func:`activity_check` of a post-treatment activity image (GBq per voxel at
    administration, e.g. from :func:`pet_activity_at_administration`) against the plan's total
    activity less its residual, or ``administered_gbq`` and ``residual_fraction`` when the
    caller gives them."""
    total = float(sitk.GetArrayFromImage(activity).astype(np.float64).sum())
    if administered_gbq is None:
        administered, source = float(plan["total_activity_gbq"]), "planned total activity"
    else:
        administered, source = float(administered_gbq), "administered activity (given)"
    residual = float(plan["residual_fraction"] if residual_fraction is None
                     else residual_fraction)
    return activity_check(total, activity_inside(activity, structures), administered, residual,
                          source, tolerance, outside_fraction_corrected)


def not_applicable_check(reason: str) -> dict:
    """The activity check of an image that was scaled to the administered activity."""
    return {"applicable": False, "reason": reason}
