"""From images and label maps to the numbers of a planning case.

Steps: bring every label map onto the CT grid; lungs from the CT when not given; register
each CBCT to the CT and take its enhanced liver as the territory of that injection position
(or use given territory labels); count the SPECT in each structure; LSF (optionally with a
lung-base margin), TNR per position, volumes; geometry and field-of-view checks as warnings;
partial-volume correction of the region values (geometric transfer matrix) for the SPECT's
resolution, the corrected and the measured values side by side.
The result is a measurement record (``tareplanner.measurement/1``) and a
``tareplanner.case/1`` document for the planning engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import SimpleITK as sitk

from .. import __version__
from ..errors import FieldValueError, ImageDataError
from ..physics.uncertainty import RESOLUTION_SD_BASES
from .grid import same_geometry
from .camera_file import camera_warnings, scaled_psf
from .region_noise import (NOISE_BASIS, corrected_noise, count_limited_warnings, lung_shunt_sd,
                           noise_warnings, ratio_sd)
from .partial_volume import (build_regions, check_fwhm, correct_regions_with_psfs,
                             default_resolution, resolution_data)
from .quantities import (LungShunt, counts_on_grid, lung_shunt_from_spect,
                         tumour_to_normal_ratios)
from .loaded import LoadedImage
from .registration import register_rigid_all
from .voxel_checks import check_emission_voxels, check_finite_voxels
from .segmentation import (assign_tumours, body_mask, exclude_lung_base, geometry_checks,
                           lung_mass_kg, lungs_from_ct, territory_from_cbct)

MEASUREMENT_SCHEMA = "tareplanner.measurement/1"
LUNG_FOV_MIN = 0.99
OUTSIDE_COUNTS_WARNING = 0.15
TUMOUR_SPLIT_TOLERANCE = 0.05


@dataclass
class PositionImages:
    """One injection position: a name and either its CBCT or its territory label map."""

    name: str
    cbct: LoadedImage | None = None
    territory: sitk.Image | None = None
    goal: dict | None = None


@dataclass
class LabelInputs:
    liver: sitk.Image
    tumours: sitk.Image | None = None
    tumour_names: dict[int, str] = field(default_factory=dict)
    lungs: sitk.Image | None = None
    sources: dict[str, dict] = field(default_factory=dict)


def _on_ct(label: sitk.Image, ct: sitk.Image, name: str, warnings: list) -> np.ndarray:
    if not same_geometry(label, ct):
        warnings.append({"code": "label-resampled",
                         "message": f"{name} label map was resampled (nearest neighbour) "
                                    "onto the CT grid"})
        label = sitk.Resample(label, ct, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return sitk.GetArrayFromImage(label)


def _input_record(loaded: LoadedImage) -> dict:
    from ..records.identity import identity_from_dicom
    record = {"source": loaded.source, "sha256": loaded.sha256, "modality": loaded.modality,
              "units": loaded.units,
              "series_instance_uid": loaded.meta.get("series_instance_uid"),
              "acquisition_datetime": loaded.meta.get("acquisition_datetime")}
    identity = identity_from_dicom(loaded.meta)  # patient and study, for the report
    if identity:
        record["identity"] = identity
    return record


PVC_METHOD = ("geometric transfer matrix (Rousset OG, Ma Y, Evans AC. J Nucl Med "
              "1998;39:904-911): regions tumours, normal liver per territory, liver outside "
              "the territories, lungs, rest of body, outside body; Gaussian system PSF on the "
              "SPECT grid, read onto the CT grid as the measurement reads the SPECT")


def measure(ct: LoadedImage, spect: LoadedImage, labels: LabelInputs,
            positions: list[PositionImages], *, lung_base_margin_mm: float = 0.0,
            registration_margin_mm: float = 20.0, save_labels_to=None,
            partial_volume_correction: bool = True, resolution: dict | None = None,
            camera_field: str = "--camera") -> dict:
    """Measure volumes, LSF and TNR per position; returns the measurement record.

    With ``partial_volume_correction`` (the default) the region values are corrected for the
    SPECT's resolution: ``resolution`` (``fwhm_mm``, ``source``, ``chosen_by``) or, when it
    is None, the default for the SPECT's radionuclide (``data/spect_resolution.json``). The
    corrected TNRs and LSF are the ones used; the measured ones stay beside them. A camera
    file of another modality or radionuclide than the SPECT's is refused, naming
    ``camera_field`` (the option or the panel field that gave it)."""
    if not positions:
        raise ValueError("at least one injection position is needed")
    if not (spect.is_counts or spect.is_activity):
        raise ValueError(f"the SPECT must hold counts or activity, not {spect.units!r}")
    from ..records.identity import check_same_patient
    check_same_patient(ct.meta, spect.meta, "SPECT")   # series of one patient only
    for pos in positions:
        if pos.cbct is not None:
            check_same_patient(ct.meta, pos.cbct.meta, f"CBCT of {pos.name}")
    warnings: list[dict] = []
    # NaN, infinite or strongly negative voxels would silently change every sum below
    check_finite_voxels(ct.image, ct.source or "CT")
    negative = check_emission_voxels(spect.image, spect.source or "SPECT")
    if negative is not None:
        warnings.append(negative)
    ref = ct.image
    voxel_ml = float(np.prod(ref.GetSpacing())) / 1000.0
    liver = _on_ct(labels.liver, ref, "liver", warnings) > 0
    tumour_map = (_on_ct(labels.tumours, ref, "tumours", warnings)
                  if labels.tumours is not None else np.zeros(liver.shape, np.uint8))
    tumour_ids = [int(v) for v in np.unique(tumour_map) if v > 0]
    tumours = {labels.tumour_names.get(v, f"T{v}"): tumour_map == v for v in tumour_ids}
    if labels.lungs is not None:
        lungs = _on_ct(labels.lungs, ref, "lungs", warnings) > 0
        lungs_source = "label map"
    else:
        lungs = sitk.GetArrayFromImage(lungs_from_ct(ref)) > 0
        lungs_source = "CT threshold (-400 HU), two largest components"
    lungs &= ~liver

    liver_img = sitk.GetImageFromArray(liver.astype(np.uint8))
    liver_img.CopyInformation(ref)
    grown = sitk.BinaryDilate(liver_img, [max(1, int(round(registration_margin_mm / s)))
                                          for s in ref.GetSpacing()])
    territories: dict[str, np.ndarray] = {}
    position_records = []
    for pos in positions:
        if pos.territory is None and pos.cbct is None:
            raise ValueError(f"position {pos.name!r} needs a CBCT or a territory label map")
    # the CBCTs side by side (worker processes; each result as on its own, bit for bit)
    with_cbct = [pos for pos in positions if pos.territory is None]
    registrations = dict(zip((id(pos) for pos in with_cbct),
                             register_rigid_all(ref, [pos.cbct.image for pos in with_cbct],
                                                grown)))
    for pos in positions:
        record: dict = {"name": pos.name}
        if pos.territory is not None:
            territories[pos.name] = (_on_ct(pos.territory, ref, f"territory {pos.name}",
                                            warnings) > 0) & liver
            record["territory_source"] = "label map"
        elif pos.cbct is not None:
            reg = registrations[id(pos)]
            warnings += [{"code": w["code"], "message": f"{pos.name}: {w['message']}"}
                         for w in reg.warnings]
            terr = territory_from_cbct(ref, pos.cbct.image, reg.transform, liver_img)
            territories[pos.name] = sitk.GetArrayFromImage(terr.mask) > 0
            record.update(territory_source="CBCT enhancement", cbct=_input_record(pos.cbct),
                          registration=reg.as_dict(), enhancement_threshold_hu=terr.threshold_hu,
                          liver_outside_cbct_fov_fraction=terr.liver_outside_fov_fraction)
            if terr.liver_outside_fov_fraction > 0.01:
                warnings.append({"code": "liver-outside-cbct-fov",
                                 "message": f"{pos.name}: {terr.liver_outside_fov_fraction:.0%}"
                                            " of the liver lies outside the CBCT field of view"})
        else:
            raise ValueError(f"position {pos.name!r} needs a CBCT or a territory label map")
        position_records.append(record)

    # each tumour belongs to the territory that holds most of it
    tumour_territory, assignment_warnings = assign_tumours(tumours, territories)
    warnings += assignment_warnings
    warnings += geometry_checks(liver, tumours, territories, tumour_territory,
                                tolerance=TUMOUR_SPLIT_TOLERANCE)

    counts = counts_on_grid(spect.image, ref)
    _check_liver_in_fov(counts, liver, territories, tumours, warnings, spect.source or "SPECT")
    whole = lung_shunt_from_spect(counts, lungs, liver, voxel_ml)
    lsf = whole
    used = None
    if lung_base_margin_mm > 0:
        used = sitk.GetArrayFromImage(exclude_lung_base(
            _mask(lungs, ref), liver_img, lung_base_margin_mm)) > 0
        lsf = lung_shunt_from_spect(counts, lungs, liver, voxel_ml, lungs_used=used)
    body = body_mask(ref)
    pvc = None
    pvc_record: dict = {"applied": False, "reason": "turned off"}
    if partial_volume_correction:
        res = dict(resolution) if resolution else default_resolution(
            spect.meta.get("radionuclide"))
        res["fwhm_mm"] = check_fwhm(res.get("fwhm_mm"), "resolution fwhm_mm")
        _check_camera(res, spect, camera_field)
        warnings += camera_warnings(res)
        if res.get("assumed", False):
            warnings.append({"code": "spect-resolution-assumed",
                             "message": f"partial-volume correction with an assumed "
                                        f"{res['fwhm_mm']:g} mm FWHM ({res['chosen_by']}), "
                                        "not a measurement of this camera: calibrate it "
                                        "(tareplanner calibrate) and give --camera"})
        regions = build_regions(tumours=tumours, territories=territories, liver=liver,
                                lungs=lungs, body=body,
                                lung_base=(lungs & ~used) if used is not None else None)
        grid = resolution_grid(res)
        results = correct_regions_with_psfs(spect.image, ref, regions,
                                            [scaled_psf(res, f) for f in grid])
        pvc = results[len(grid) // 2]
        pvc_record = {"applied": True, "method": PVC_METHOD, "fwhm_mm": res["fwhm_mm"],
                      "assumed": bool(res.get("assumed", False)),
                      "resolution": res, **pvc.as_dict()}
        whole_c = _corrected_lung_shunt(pvc, regions, whole, liver, lungs, voxel_ml, None)
        lsf_c = whole_c if used is None else _corrected_lung_shunt(
            pvc, regions, lsf, liver, lungs, voxel_ml, used)
        pvc_record["sensitivity"] = _sensitivity(res, grid, results, regions, tumours,
                                                 tumour_territory, whole, lsf, liver, lungs,
                                                 voxel_ml, used)
        if res.get("roi_noise"):
            pvc_record["noise"] = _noise_record(pvc, regions, res["roi_noise"], spect,
                                                tumour_territory, liver, lungs, voxel_ml,
                                                used, camera_field)
            warnings += noise_warnings(pvc_record["noise"], "TNRs and LSF")
            warnings += count_limited_warnings(pvc_record["noise"])
        lsf_uncorrected, lsf, whole = lsf, lsf_c, whole_c
    else:
        lsf_uncorrected = lsf
    if whole.lungs_in_fov_fraction < LUNG_FOV_MIN:
        warnings.append({"code": "lungs-outside-spect-fov",
                         "message": f"only {whole.lungs_in_fov_fraction:.1%} of the lungs lie "
                                    "in the SPECT field of view: " + (
                                        "the corrected LSF assumes the lung outside it has the "
                                        "corrected mean density of the part inside"
                                        if pvc is not None else "LSF is underestimated")})
    total = float(np.nansum(counts[body]))
    outside = float(np.nansum(counts[body & ~liver & ~lungs])) / total if total > 0 else 0.0
    if outside > OUTSIDE_COUNTS_WARNING:
        warnings.append({"code": "counts-outside-liver-lungs",
                         "message": f"{outside:.1%} of the SPECT counts lie outside liver and "
                                    "lungs (free pertechnetate, extrahepatic deposition?)"})

    any_tumour = np.zeros(liver.shape, dtype=bool)
    for mask in tumours.values():
        any_tumour |= mask
    for record in position_records:
        name = record["name"]
        terr = territories[name]
        mine = {t: tumours[t] for t, p in tumour_territory.items() if p == name}
        ratios = tumour_to_normal_ratios(counts, terr, liver, mine, voxel_ml)
        _correct_ratios(ratios, pvc, name)
        record["perfused_volume_ml"] = float(np.count_nonzero(terr)) * voxel_ml
        record["normal_volume_ml"] = float(np.count_nonzero(terr & liver & ~any_tumour)) * voxel_ml
        record["normal_counts"] = ratios["normal"]
        record["tumours"] = [{"name": t, **ratios["tumours"][t]} for t in mine
                             if t in ratios["tumours"]]
        for t in record["tumours"]:
            if t["tnr"] < 1:
                warnings.append({"code": "tnr-below-1",
                                 "message": f"{name}/{t['name']}: TNR {t['tnr']:.2f} < 1"})

    lungs_img = _mask(lungs, ref)
    outputs = {}
    if save_labels_to is not None:
        from pathlib import Path
        folder = Path(save_labels_to)
        folder.mkdir(parents=True, exist_ok=True)
        terr_map = np.zeros(liver.shape, np.uint8)
        for k, record in enumerate(position_records, start=1):
            terr_map[territories[record["name"]] & (terr_map == 0)] = k
        for name, array in (("territories", terr_map), ("lungs", lungs.astype(np.uint8))):
            path = folder / f"{name}.nii.gz"
            sitk.WriteImage(_mask(array, ref), str(path), useCompression=True)
            outputs[name] = str(path)
        outputs["territory_labels"] = {r["name"]: k for k, r in enumerate(position_records, 1)}
    return {
        "schema": MEASUREMENT_SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "software": {"name": "tareplanner", "version": __version__},
        "inputs": {"ct": _input_record(ct), "spect": _input_record(spect),
                   "labels": labels.sources},
        "spect": {"units": spect.units, "radionuclide": spect.meta.get("radionuclide"),
                  "radiopharmaceutical": spect.meta.get("radiopharmaceutical")},
        "volumes_ml": {
            "liver": float(liver.sum()) * voxel_ml,
            "lungs": float(lungs.sum()) * voxel_ml,
            "tumours": {n: float(m.sum()) * voxel_ml for n, m in tumours.items()},
        },
        "tumour_territory": tumour_territory,
        "tumour_labels": {labels.tumour_names.get(v, f"T{v}"): v for v in tumour_ids},
        "label_outputs": outputs,
        "lungs_source": lungs_source,
        "lung_mass_kg_ct": lung_mass_kg(ref, lungs_img),
        "ct_spacing_mm": list(ref.GetSpacing()),
        "spect_spacing_mm": list(spect.image.GetSpacing()),
        "partial_volume_correction": pvc_record,
        "lung_shunt": lsf.as_dict(),
        "lung_shunt_uncorrected": lsf_uncorrected.as_dict(),
        "lung_shunt_whole_lung": whole.as_dict(),
        "lung_base_margin_mm": lung_base_margin_mm,
        "counts_outside_liver_lungs_fraction": outside,
        "positions": position_records,
        "warnings": warnings,
        **_camera_parents(pvc_record),
    }


def _camera_parents(pvc_record: dict) -> dict:
    """``{"parents": {"camera": ...}}`` when the correction used a camera file, else {}."""
    from ..records.chain import camera_parent
    ref = camera_parent(pvc_record.get("resolution")) if pvc_record else None
    return {"parents": {"camera": ref}} if ref else {}


def _check_liver_in_fov(counts: np.ndarray, liver: np.ndarray, territories: dict,
                        tumours: dict, warnings: list, where: str) -> None:
    """The SPECT must cover the liver: a territory whose normal liver has no counts in the
    SPECT's field of view has no TNR (it would divide by zero) and is refused, naming the
    position and how much of its normal liver lies in the field of view; a liver or a tumour
    partly outside gives a warning (the LSF's liver counts and that tumour's counts are then
    those of the part inside)."""
    inside = np.isfinite(counts)
    if liver.any():
        fraction = float(inside[liver].mean())
        if fraction < LUNG_FOV_MIN:
            warnings.append({"code": "liver-outside-spect-fov",
                             "message": f"only {fraction:.1%} of the liver lies in the SPECT "
                                        "field of view: the LSF is overestimated and the TNRs "
                                        "are those of the part inside"})
    any_tumour = np.zeros(liver.shape, dtype=bool)
    for name, mask in tumours.items():
        any_tumour |= mask
        if mask.any() and inside[mask].mean() < LUNG_FOV_MIN:
            warnings.append({"code": "tumour-outside-spect-fov",
                             "message": f"{name}: only {inside[mask].mean():.1%} of the tumour "
                                        "lies in the SPECT field of view"})
    for name, terr in territories.items():
        normal = terr & liver & ~any_tumour
        if not normal.any():
            continue
        values = counts[normal]
        finite = np.isfinite(values)
        if not finite.any() or float(values[finite].sum()) <= 0:
            raise ImageDataError(
                f"{where}:field of view", f"{finite.mean():.1%} of the normal liver of "
                f"position {name!r} in the SPECT field of view, "
                f"{float(values[finite].sum()) if finite.any() else 0:g} counts",
                "a SPECT covering the liver, with counts in each position's normal liver "
                "(same frame of reference as the CT)")


def _check_camera(res: dict, spect: LoadedImage, field: str = "--camera") -> None:
    """A camera file must be a SPECT's of the SPECT's radionuclide (refused by name)."""
    camera = res.get("camera")
    if not camera or not camera.get("modality"):
        return
    where = f"{field} {camera['file']}"
    if camera["modality"] != "SPECT":
        raise FieldValueError(f"{where}:modality", camera["modality"],
                              "SPECT (the camera file of the SPECT being measured)")
    nuclide = spect.meta.get("radionuclide")
    if nuclide and camera["nuclide"] != nuclide:
        raise FieldValueError(f"{where}:nuclide", camera["nuclide"],
                              f"{nuclide} (the SPECT's radionuclide)")


#: the resolutions the correction is repeated at, in units of the spread (half range or 2.5 sd);
#: the TNRs and LSF are smooth in the FWHM, and each extra correction costs a blur per region
GRID_STEPS = (-1.0, 0.0, 1.0)


def resolution_grid(res: dict) -> list[float]:
    """Core FWHMs at which the correction is computed for the uncertainty: the nominal one
    in the middle, then +/- the assumed half range (uniform) or +/- 2.5 standard
    uncertainties of a calibration (normal); never below 1 mm."""
    f0 = float(res["fwhm_mm"])
    if res.get("fwhm_sd_mm") is not None:
        reach = 2.5 * float(res["fwhm_sd_mm"])
    else:
        reach = float(res.get("fwhm_half_range_mm",
                              resolution_data()["assumed_fwhm_half_range_mm"]["value"]))
    return [max(1.0, f0 + step * reach) if step else f0 for step in GRID_STEPS]


def _sensitivity(res, grid, results, regions, tumours, tumour_territory, whole, lsf, liver,
                 lungs, voxel_ml, used) -> dict:
    """Corrected TNR per tumour and LSF at each FWHM of ``grid``: how the Monte Carlo
    carries the resolution's uncertainty through the correction itself."""
    tnr: dict[str, list] = {name: [] for name in tumours}
    lsf_values = []
    for pvc in results:
        for name in tumours:
            position = tumour_territory.get(name)
            normal = pvc.corrected(f"normal:{position}") if position else float("nan")
            value = pvc.corrected(f"tumour:{name}") / normal if normal else float("nan")
            tnr[name].append(value if math.isfinite(value) else None)
        shunt = (_corrected_lung_shunt(pvc, regions, whole, liver, lungs, voxel_ml, None)
                 if used is None else
                 _corrected_lung_shunt(pvc, regions, lsf, liver, lungs, voxel_ml, used))
        lsf_values.append(shunt.lung_shunt_fraction)
    out = {"fwhm_mm": float(res["fwhm_mm"]), "grid_fwhm_mm": [float(f) for f in grid],
           "tnr": {k: v for k, v in tnr.items() if None not in v}, "lsf": lsf_values}
    if res.get("fwhm_sd_mm") is not None:
        basis = res.get("fwhm_sd_basis", RESOLUTION_SD_BASES[0])
        out.update(distribution="normal", sd_mm=float(res["fwhm_sd_mm"]), sd_basis=basis,
                   source=f"the camera file's {basis}"
                          + (f": {res['fwhm_sd_reason']}" if res.get("fwhm_sd_reason") else ""))
    else:
        spread = resolution_data()["assumed_fwhm_half_range_mm"]
        out.update(distribution="uniform",
                   half_range_mm=float(res.get("fwhm_half_range_mm", spread["value"])),
                   source=res.get("fwhm_range_source", spread["source"]))
    out["assumed"] = bool(res.get("assumed", False))
    return out


def _corrected_lung_shunt(pvc, regions, measured: LungShunt, liver: np.ndarray,
                          lungs: np.ndarray, voxel_ml: float, used) -> LungShunt:
    """LSF from the corrected region means: counts = corrected mean × volume, summed over the
    regions in the lungs and in the liver. With ``used`` (lung-base margin) the lung counts
    are the corrected mean of the lung outside the base times the whole lung volume."""
    in_liver, in_lungs = regions.volumes_ml(voxel_ml, liver), regions.volumes_ml(voxel_ml, lungs)
    means = np.nan_to_num(pvc.corrected_per_ml, nan=0.0)
    liver_counts = float(np.sum(means * in_liver))
    if used is None:
        lung_counts = float(np.sum(means * in_lungs))
    else:
        lung_counts = pvc.corrected("lungs") * float(lungs.sum()) * voxel_ml
    total = lung_counts + liver_counts
    if total <= 0:
        raise ValueError("no counts in lungs and liver")
    return LungShunt(lung_counts / total, lung_counts, liver_counts, measured.lung_volume_ml,
                     measured.lung_volume_used_ml, measured.lungs_in_fov_fraction,
                     measured.method, partial_volume_corrected=True)


def _noise_record(pvc, regions, roi_noise: dict, spect: LoadedImage, tumour_territory: dict,
                  liver: np.ndarray, lungs: np.ndarray, voxel_ml: float, used,
                  field: str) -> dict:
    """The corrected TNRs' and LSF's reconstruction noise from the camera file's background
    variability (:mod:`tareplanner.imaging.region_noise`)."""
    covariance, record = corrected_noise(pvc, regions.volumes_ml(voxel_ml), spect.image,
                                         roi_noise, counts=spect.is_counts, field=field,
                                         acquisition_s=spect.meta.get("frame_duration_s"))
    record["tnr_relative_sd"] = {
        name: ratio_sd(pvc, covariance, f"tumour:{name}", f"normal:{position}")
        for name, position in tumour_territory.items()
        if position and f"tumour:{name}" in regions.names}
    in_liver = regions.volumes_ml(voxel_ml, liver)
    if used is None:
        in_lungs = regions.volumes_ml(voxel_ml, lungs)
    else:
        in_lungs = np.zeros(len(regions.names))
        in_lungs[regions.names.index("lungs")] = float(lungs.sum()) * voxel_ml
    record["lsf_relative_sd"] = lung_shunt_sd(pvc, covariance, in_lungs, in_liver)
    return record


def _correct_ratios(ratios: dict, pvc, position: str) -> None:
    """Put the corrected counts/mL and TNRs in place, the measured ones beside them
    (``*_uncorrected``); without a correction both are the measured ones."""
    normal = ratios["normal"]
    normal["counts_per_ml_uncorrected"] = normal["counts_per_ml"]
    if pvc is not None:
        normal["counts_per_ml"] = pvc.corrected(f"normal:{position}")
        if not (math.isfinite(normal["counts_per_ml"]) and normal["counts_per_ml"] > 0):
            raise ImageDataError(
                "partial-volume correction", f"corrected normal-liver density "
                f"{normal['counts_per_ml']:g} counts/mL in position {position!r}",
                "a density > 0 (is the normal liver inside the SPECT field of view?)")
    for name, t in ratios["tumours"].items():
        t["counts_per_ml_uncorrected"] = t["counts_per_ml"]
        t["tnr_uncorrected"] = t["tnr"]
        if pvc is not None:
            t["counts_per_ml"] = pvc.corrected(f"tumour:{name}")
            t["tnr"] = t["counts_per_ml"] / normal["counts_per_ml"]


def _mask(array: np.ndarray, reference: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.CopyInformation(reference)
    return image


def parse_manual_tnr(text: str, field: str = "manual_tnr") -> dict[str, float]:
    """``"T1=3.2, T2=2.5"`` -> {"T1": 3.2, "T2": 2.5}; empty text -> {}."""
    from ..errors import FieldValueError, ImageDataError
    values: dict[str, float] = {}
    for item in (s.strip() for s in text.replace(";", ",").split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or not name.strip() or number is None:
            raise FieldValueError(field, item, "tumour=TNR pairs separated by commas, "
                                               "e.g. 'T1=3.2, T2=2.5'")
        values[name.strip()] = number
    return values


def _apply_manual_values(case: dict, lung_shunt_fraction: float | None,
                         tnr: dict[str, float] | None) -> None:
    """Replace measured values by entered ones, recorded as such: lsf_method 'manual', the
    measured and entered values in measurement.manual_entries, a 'manual-entry' warning that
    travels into the plan record and report."""
    from ..errors import FieldValueError, UnknownNameError
    entries, notes = [], []
    if lung_shunt_fraction is not None:
        lsf = float(lung_shunt_fraction)
        if not 0.0 <= lsf < 1.0:
            raise FieldValueError("manual lung_shunt_fraction", lsf, "0 <= LSF < 1 (a fraction)")
        measured = case["lung_shunt_fraction"]
        entries.append({"quantity": "lung_shunt_fraction", "entered": lsf, "measured": measured,
                        "measured_method": case["lsf_method"]})
        notes.append(f"LSF {lsf:.2%} entered (measured {measured:.2%}, {case['lsf_method']})")
        case["lung_shunt_fraction"] = lsf
        case["lsf_method"] = "manual"
    tumours = {t["name"]: (p["name"], t) for p in case["positions"] for t in p["tumours"]}
    for name, value in (tnr or {}).items():
        if name not in tumours:
            raise UnknownNameError("manual tnr", name, ", ".join(tumours) or "no tumours")
        if not value > 0:
            raise FieldValueError(f"manual tnr {name}", value, "> 0")
        position, tumour = tumours[name]
        entries.append({"quantity": f"tnr {position}/{name}", "entered": float(value),
                        "measured": tumour["tnr"]})
        notes.append(f"TNR {position}/{name} {value:g} entered (measured {tumour['tnr']:g})")
        tumour["tnr"] = float(value)
    if entries:
        case["measurement"]["manual_entries"] = entries
        case["measurement"]["warnings"] = list(case["measurement"]["warnings"]) + [
            {"code": "manual-entry", "message": "; ".join(notes)}]


def case_from_measurement(measurement: dict, *, product: str, method: str,
                          goals: dict[str, dict], treatment_time: str | None = None,
                          lung_mass: str = "ct", case_id: str | None = None,
                          measurement_file: str | None = None,
                          measurement_sha256: str | None = None,
                          manual_lung_shunt_fraction: float | None = None,
                          manual_tnr: dict[str, float] | None = None) -> dict:
    """A ``tareplanner.case/1`` document from a measurement record; values entered by hand
    (LSF, TNR per tumour) replace the measured ones and are recorded as manual entries.

    ``lung_mass``: ``"ct"`` puts the CT densitovolumetric lung mass in the case as the mass
    to plan with (EANM 2022); ``"convention"`` chooses the 1 kg convention explicitly and
    keeps the CT mass beside it for comparison."""
    if lung_mass not in ("ct", "convention"):
        raise FieldValueError("lung mass", lung_mass, "ct or convention")
    positions = []
    for record in measurement["positions"]:
        entry = {"name": record["name"], "normal_volume_ml": round(record["normal_volume_ml"], 3),
                 "tumours": [{"name": t["name"], "volume_ml": round(t["volume_ml"], 3),
                              "tnr": round(t["tnr"], 4)} for t in record["tumours"]]}
        if method != "bsa":
            entry["goal"] = goals[record["name"]]
        positions.append(entry)
    lsf = measurement["lung_shunt"]
    case = {"schema": "tareplanner.case/1", "product": product, "method": method,
            "lung_shunt_fraction": round(lsf["lung_shunt_fraction"], 6),
            "lsf_method": lsf["method"],
            "whole_liver_volume_ml": round(measurement["volumes_ml"]["liver"], 3),
            "whole_liver_tumour_volume_ml": round(sum(measurement["volumes_ml"]["tumours"].values()), 3),
            "positions": positions,
            "measurement": {"file": measurement_file, "sha256": measurement_sha256,
                            "warnings": measurement["warnings"]}}
    if case_id:
        case["case_id"] = case_id
    _put_identity(case, measurement["inputs"]["ct"].get("identity"))
    ct_kg = round(measurement["lung_mass_kg_ct"], 4)
    if lung_mass == "ct":
        case.update(lung_mass_kg=ct_kg, lung_mass_source="ct-densitovolumetry")
    else:
        case.update(lung_mass_source="convention", lung_mass_ct_kg=ct_kg)
    if treatment_time:
        case["treatment_time"] = treatment_time
    if str(measurement["spect"].get("radionuclide")) == "Ho-166":
        case["lsf_method"] = "scout-spect"
    _apply_manual_values(case, manual_lung_shunt_fraction, manual_tnr)
    pvc = measurement.get("partial_volume_correction", {})
    if pvc.get("applied"):
        res = pvc["resolution"]
        case["measurement"]["resolution"] = {
            "fwhm_mm": pvc["fwhm_mm"], "assumed": bool(pvc.get("assumed", False)),
            "chosen_by": res.get("chosen_by"), "source": res.get("source"),
            **({"camera_sha256": res["camera"].get("sha256")} if res.get("camera") else {})}
    uncertainty = measurement_uncertainty(measurement, lsf_entered=manual_lung_shunt_fraction
                                          is not None, tnr_entered=set(manual_tnr or {}))
    if uncertainty:
        case["uncertainty"] = uncertainty
    return case


def _put_identity(case: dict, identity: dict | None) -> None:
    """The CT's patient and study identity into the case (``patient``, ``study``); a patient
    ID that is no acceptable name (records/fields.py) stays in the measurement only."""
    from ..records.fields import name_problem
    from ..records.identity import case_identity
    if not identity:
        return
    patient, study = case_identity(identity)
    if name_problem(patient.get("id")) is not None:
        patient.pop("id", None)
    if patient:
        case["patient"] = patient
    if study:
        case["study"] = study


def measurement_uncertainty(measurement: dict, *, lsf_entered: bool = False,
                            tnr_entered: set[str] = frozenset()) -> dict:
    """The measured values' standard uncertainties for the case's ``uncertainty`` section.

    TNR: (u/TNR)^2 = 1/N_T + 1/N_N + u_pvc^2, with N_T and N_N the SPECT counts in the tumour
    and in its territory's normal liver (Poisson; law of propagation of uncertainty, JCGM
    100:2008) and u_pvc the residual error of the partial-volume correction measured on the
    synthetic patient (``data/spect_resolution.json``; without the correction, the bias
    measured without it). With a camera file that holds the reconstruction's measured
    background variability, its noise of the corrected TNR and LSF (the correction's
    ``noise``, :mod:`tareplanner.imaging.region_noise`) stands in for the Poisson terms,
    which understate a reconstructed image's noise. LSF: (u/LSF)^2 = 1/N_lung + u_lsf^2
    (the liver's Poisson term is negligible: N_liver is about 15 times N_lung at an LSF of
    6 %). The Poisson terms need
    counts: for a SPECT in Bq/mL only u_pvc is given. ``boundary_mm``: the CT's largest
    voxel size (a delineation uncertainty of one voxel). Values entered by hand get none
    (the case's defaults apply)."""
    data = resolution_data()
    applied = measurement.get("partial_volume_correction", {}).get("applied", False)
    residual = data["residual" if applied else "residual_without_correction"]
    u_tnr = residual["tnr_relative_sd"]["value"]
    u_lsf = residual["lsf_relative_sd"]["value"]
    poisson = measurement.get("spect", {}).get("units") == "counts"

    def inverse(n) -> float:
        return 1.0 / n if poisson and n and n > 0 else 0.0

    def sd(variance: float) -> float:
        return round(min(1.0, math.sqrt(variance)), 6)

    noise = measurement.get("partial_volume_correction", {}).get("noise") if applied else None
    out: dict = {}
    tnr = {}
    for position in measurement["positions"]:
        n_normal = position["normal_counts"]["counts"]
        for t in position["tumours"]:
            if t["name"] in tnr_entered:
                continue
            measured = (noise or {}).get("tnr_relative_sd", {}).get(t["name"])
            tnr[t["name"]] = sd((measured ** 2 if measured is not None else
                                 inverse(t["counts"]) + inverse(n_normal)) + u_tnr ** 2)
    if tnr:
        out["tnr_relative_sd"] = tnr
    if not lsf_entered:
        lung = measurement.get("lung_shunt_uncorrected", measurement["lung_shunt"])
        used = lung["lung_volume_used_ml"] / lung["lung_volume_ml"] if lung["lung_volume_ml"] \
            else 0.0
        measured = (noise or {}).get("lsf_relative_sd")
        out["lsf_relative_sd"] = sd((measured ** 2 if measured is not None else
                                     inverse(lung["lung_counts"] * used)) + u_lsf ** 2)
    out["counting_basis"] = (NOISE_BASIS if noise else
                             "Poisson statistics of the image's counts (no background "
                             "variability measured: a reconstruction's noise is larger; "
                             "give a camera file from tareplanner calibrate)"
                             if poisson else "none (an image in Bq/mL without a camera file's "
                             "background variability)")
    if measurement.get("ct_spacing_mm"):
        out["boundary_mm"] = round(float(max(measurement["ct_spacing_mm"])), 4)
    sensitivity = measurement.get("partial_volume_correction", {}).get("sensitivity")
    if applied and sensitivity:
        table = {k: v for k, v in sensitivity.items() if k not in ("tnr", "lsf")}
        table["tnr"] = {k: [round(x, 6) for x in v] for k, v in sensitivity["tnr"].items()
                        if k not in tnr_entered and k in tnr}
        if not lsf_entered:
            table["lsf"] = [round(x, 8) for x in sensitivity["lsf"]]
        out["resolution"] = table
    return out
