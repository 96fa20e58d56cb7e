"""Camera calibration from a scan of the NEMA/IEC body phantom, and the camera file.

A site images the phantom (six hot spheres in a warm background, known concentrations) with
its SPECT or PET protocol and its CT in one frame of reference. :func:`calibrate` finds the
spheres (the lung insert on the CT gives the axis of the sphere circle, the hottest spots on
the image give the plane and the turn of the circle; or the centres are given), builds the
forward model of :mod:`tareplanner.physics.psf_fit` (sphere occupancy from the standard's
diameters, background from the CT's water volume) and fits the camera's resolution: a
Gaussian, and a core-plus-tail PSF that is kept where it lowers the residual by more than a
stated fraction (``data/camera_calibration.json``). Every sphere's equivalent Gaussian FWHM
(the FWHM at which the model's recovery of that sphere equals its measured one) is written
beside its recovery; when the spheres do not follow one PSF (``camera-recovery-misfit``),
their spread is written too, and the Monte Carlo then carries the larger of it and the fit's
uncertainty (:mod:`tareplanner.imaging.camera_file`). Given the same scan reconstructed with
more iterations, the chosen model is fitted to it too (:func:`convergence_check`): a
reconstruction whose phantom FWHM still changes had not converged, and its camera file says
so (``camera-not-converged``) and carries the change. The result is a camera file
(``tareplanner.camera/1``) that ``measure --camera`` and ``dose --camera`` read.
"""

from __future__ import annotations

import json
import math
import statistics
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from .. import __version__
from ..errors import FieldValueError, ImageDataError
from ..physics.psf_fit import (EquivalentFwhm, PhantomScene, ball_occupancy,
                               effective_fwhm_mm, equivalent_fwhms, fit_psf, recovery)
from .arrays import image_array
from .background_noise import background_variability
from .camera_file import CAMERA_SCHEMA, MODALITIES
from .iec_phantom import iec_data, sphere_diameters_mm, standard_centres_mm
CALIBRATION_FILE = "camera_calibration.json"


@lru_cache(maxsize=None)
def calibration_data() -> dict:
    text = resources.files("tareplanner.data").joinpath(CALIBRATION_FILE).read_text("utf-8")
    return json.loads(text)


def half_life_h(nuclide: str) -> float:
    table = calibration_data()["imaging_nuclides"]
    if nuclide not in table:
        raise FieldValueError("--nuclide", nuclide, ", ".join(sorted(table)))
    value = table[nuclide]["half_life_h"]
    if value == "nuclides.json":
        from .. import catalogue
        return float(catalogue.nuclide(nuclide).half_life_h)
    return float(value)


def parse_centres(text: str, field: str = "--sphere-centres-mm") -> list[tuple[float, ...]]:
    """``"x,y,z;x,y,z;..."`` (six centres, mm, in the standard's order 10 ... 37 mm)."""
    n = len(sphere_diameters_mm())
    items = [s.strip() for s in str(text).split(";") if s.strip()]
    centres = []
    for item in items:
        parts = item.split(",")
        try:
            values = tuple(float(p) for p in parts)
        except ValueError:
            values = ()
        if len(values) != 3 or not all(math.isfinite(v) for v in values):
            raise FieldValueError(field, item, "three finite numbers x,y,z in mm per sphere")
        centres.append(values)
    if len(centres) != n:
        raise FieldValueError(field, text, f"{n} centres 'x,y,z' separated by ';', in the "
                              "order of the spheres' diameters "
                              + ", ".join(f"{d:g}" for d in sphere_diameters_mm()) + " mm")
    return centres


def _water_mask_on(ct: sitk.Image, reference: sitk.Image, supersample: int) -> np.ndarray:
    """Fraction of each voxel of ``reference`` where the CT is above the water threshold."""
    threshold = iec_data()["ct_threshold_hu"]["value"]
    k = int(supersample)
    size = [n * k for n in reference.GetSize()]
    spacing = [s / k for s in reference.GetSpacing()]
    direction = np.asarray(reference.GetDirection()).reshape(3, 3)
    shift = direction @ (np.asarray(reference.GetSpacing()) * ((1.0 / k - 1.0) / 2.0))
    fine = sitk.Image(size, sitk.sitkFloat32)
    fine.SetSpacing(spacing)
    fine.SetDirection(reference.GetDirection())
    fine.SetOrigin(tuple(np.asarray(reference.GetOrigin()) + shift))
    moved = sitk.Resample(sitk.Cast(ct, sitk.sitkFloat32), fine, sitk.Transform(),
                          sitk.sitkLinear, -1000.0, sitk.sitkFloat32)
    water = (image_array(moved) > threshold).astype(np.float64)
    nz, ny, nx = (n // k for n in water.shape)
    return water.reshape(nz, k, ny, k, nx, k).mean(axis=(1, 3, 5))


def _index_zyx(image: sitk.Image, point) -> np.ndarray:
    return np.asarray(image.TransformPhysicalPointToContinuousIndex(
        tuple(float(v) for v in point)))[::-1]


def find_spheres(ct: sitk.Image, image: sitk.Image, sphere_kbq_ml: float,
                 background_kbq_ml: float) -> tuple[list, dict]:
    """Centres (x, y, z mm) of the six spheres in the standard's order, and how they were
    found. The CT's lung insert gives the axis; the largest hot spot (37 mm sphere) the
    plane and the turn of the circle; the second (28 mm) the sense of the order."""
    d = iec_data()
    radius = d["sphere_ring_radius_mm"]["value"]
    step = d["sphere_angle_step_deg"]["value"]
    array = sitk.GetArrayFromImage(sitk.Cast(image, sitk.sitkFloat64))
    water = sitk.GetArrayFromImage(sitk.Resample(
        sitk.Cast(ct, sitk.sitkFloat32), image, sitk.Transform(), sitk.sitkLinear, -1000.0,
        sitk.sitkFloat32)) > d["ct_threshold_hu"]["value"]
    if water.sum() < 100:
        raise ImageDataError("--ct", "no water-filled phantom over the image",
                             "a CT of the filled phantom in the image's frame of reference")
    smooth = ndimage.gaussian_filter(array, 1.0)
    level = float(np.median(array[water]))
    peak = float(smooth[water].max())
    contrast = sphere_kbq_ml / background_kbq_ml
    needed = level * (1.0 + calibration_data()["hot_spot_min_excess"]["value"]
                      * (contrast - 1.0))
    if not (level > 0 and peak > needed):
        raise ImageDataError("--image", "no hot sphere", "an image of the phantom with its "
                             f"spheres hotter than the background (peak {peak:.4g} against a "
                             f"background median {level:.4g}; at least {needed:.4g} expected "
                             f"for the given contrast {contrast:.3g}); or give "
                             "--sphere-centres-mm")
    hot, n = ndimage.label(water & (smooth > level + 0.4 * (peak - level)))
    excess = np.clip(smooth - level, 0, None)
    sums = ndimage.sum(excess, hot, index=np.arange(1, n + 1))
    order = np.argsort(sums)[::-1]
    centroids = []
    for label in order[:2] + 1:
        idx = np.asarray(ndimage.center_of_mass(excess, hot, int(label)))  # (z, y, x)
        centroids.append(np.asarray(image.TransformContinuousIndexToPhysicalPoint(
            tuple(float(v) for v in idx[::-1]))))
    # the lung insert on the CT near the sphere plane: the axis of the circle
    ct_array = sitk.GetArrayFromImage(ct)
    threshold = d["ct_threshold_hu"]["value"]
    water_ct = ct_array > threshold
    in_plane = np.zeros((3, 3, 3), bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)
    interior = ndimage.binary_fill_holes(water_ct, structure=in_plane)
    lung = interior & ~water_ct
    zs = np.array([ct.TransformIndexToPhysicalPoint((0, 0, int(k)))[2]
                   for k in range(ct_array.shape[0])])
    near = np.abs(zs - centroids[0][2]) <= 20.0
    lung[~near] = False
    labelled, m = ndimage.label(lung)
    if m == 0:
        raise ImageDataError("--ct", "no lung insert", "a CT of the IEC phantom with its "
                             "lung insert (the axis of the sphere circle); or give "
                             "--sphere-centres-mm")
    sizes = ndimage.sum(lung, labelled, index=np.arange(1, m + 1))
    biggest = int(np.argmax(sizes)) + 1
    cz, cy, cx = ndimage.center_of_mass(lung, labelled, biggest)
    axis = np.asarray(ct.TransformContinuousIndexToPhysicalPoint((cx, cy, cz)))
    angles = []
    for c in centroids:
        r = math.hypot(c[0] - axis[0], c[1] - axis[1])
        if abs(r - radius) > 15.0:
            raise ImageDataError("--image", f"hot spot {r:.1f} mm from the lung insert axis",
                                 f"spheres on the standard's {radius:g} mm circle (within "
                                 "15 mm); or give --sphere-centres-mm")
        angles.append(math.degrees(math.atan2(c[1] - axis[1], c[0] - axis[0])))
    if len(angles) < 2:
        raise ImageDataError("--image", "one hot spot", "the two largest spheres visible; or "
                             "give --sphere-centres-mm")
    diff = (angles[1] - angles[0] + 180.0) % 360.0 - 180.0
    if abs(abs(diff) - step) > 20.0:
        raise ImageDataError("--image", f"second hot spot {diff:.0f} degrees from the first",
                             f"the 28 mm sphere {step:g} degrees from the 37 mm one; or give "
                             "--sphere-centres-mm")
    direction = -1 if diff > 0 else 1
    last = len(sphere_diameters_mm()) - 1
    first_angle = angles[0] - direction * last * step
    centres = standard_centres_mm((axis[0], axis[1]), float(centroids[0][2]), first_angle,
                                  direction)
    how = {"method": "automatic: lung insert axis on the CT, largest two hot spots on the "
                     "image, standard geometry",
           "axis_mm": [float(axis[0]), float(axis[1])], "plane_z_mm": float(centroids[0][2]),
           "largest_sphere_angle_deg": angles[0], "order": "anticlockwise" if direction > 0
           else "clockwise"}
    return centres, how


def build_scene(ct: sitk.Image, image: sitk.Image, centres, sphere_kbq_ml: float,
                background_kbq_ml: float) -> tuple[PhantomScene, np.ndarray]:
    """The forward model's occupancies on a crop of ``image`` around the spheres, and the
    image values of that crop."""
    settings = calibration_data()
    margin = settings["crop_margin_mm"]["value"]
    around = settings["fit_margin_mm"]["value"]
    diameters = sphere_diameters_mm()
    spacing_xyz = np.asarray(image.GetSpacing())
    idx = np.array([_index_zyx(image, c)[::-1] for c in centres])  # (K, x y z)
    reach = (max(diameters) / 2.0 + margin) / spacing_xyz
    low = np.maximum(np.floor(idx.min(axis=0) - reach).astype(int), 0)
    high = np.minimum(np.ceil(idx.max(axis=0) + reach).astype(int) + 1, image.GetSize())
    if np.any(high - low < 3):
        raise ImageDataError("--sphere-centres-mm", "spheres outside the image",
                             "sphere centres inside the image's field of view")
    crop = sitk.RegionOfInterest(image, [int(v) for v in high - low], [int(v) for v in low])
    values = sitk.GetArrayFromImage(sitk.Cast(crop, sitk.sitkFloat64))
    shape = values.shape
    spacing_zyx = tuple(float(s) for s in crop.GetSpacing()[::-1])
    spheres = np.stack([ball_occupancy(shape, spacing_zyx, _index_zyx(crop, c), d / 2.0)
                        for c, d in zip(centres, diameters)])
    water = _water_mask_on(ct, crop, settings["ct_supersample"]["value"])
    background = np.clip(water - spheres.sum(axis=0), 0.0, 1.0)
    mask = np.zeros(shape, bool)
    for c, d in zip(centres, diameters):
        mask |= ball_occupancy(shape, spacing_zyx, _index_zyx(crop, c), d / 2.0 + around,
                               supersample=1) > 0
    scene = PhantomScene(spheres, background, spacing_zyx, float(sphere_kbq_ml),
                         float(background_kbq_ml), mask)
    return scene, values


def _check_concentrations(sphere_kbq_ml, background_kbq_ml) -> None:
    for field, value in (("--sphere-kbq-ml", sphere_kbq_ml),
                         ("--background-kbq-ml", background_kbq_ml)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise FieldValueError(field, value, "a finite concentration > 0 kBq/mL")
    if not sphere_kbq_ml > background_kbq_ml:
        raise FieldValueError("--sphere-kbq-ml", sphere_kbq_ml,
                              f"a sphere concentration above the background's "
                              f"({background_kbq_ml:g} kBq/mL): hot spheres")


def recovery_misfit(diameters_mm, measured, model, limit: float) -> dict | None:
    """A ``camera-recovery-misfit`` warning when a sphere's measured recovery differs from
    the fitted PSF's by more than ``limit`` (absolute recovery), else None: the
    reconstruction does not follow one PSF over the spheres' sizes, so values corrected with
    this camera file may be off by more than its fit uncertainty."""
    off = [(float(d), float(m), float(mo)) for d, m, mo in zip(diameters_mm, measured, model)
           if abs(float(m) - float(mo)) > limit]
    if not off:
        return None
    spheres = ", ".join(f"{d:g} mm {m:.3f} vs {mo:.3f}" for d, m, mo in off)
    return {"code": "camera-recovery-misfit",
            "message": f"measured recovery differs from the fitted PSF's by more than "
                       f"{limit:g} ({spheres}): this reconstruction does not follow one "
                       "point-spread function over the spheres' sizes; TNRs, LSF and doses "
                       "corrected with this camera file may be off by more than its fit "
                       "uncertainty (data/camera_calibration.json recovery_misfit_max)"}


def equivalent_fwhm_words(e: EquivalentFwhm, bracket_mm) -> str | None:
    """Why a sphere has no equivalent FWHM (None when it has one)."""
    if e.fwhm_mm is not None:
        return None
    lo, hi = bracket_mm
    if e.status == "above":
        return (f"measured recovery {e.measured:.3f} above the model's {e.model_at_bracket[0]:.3f}"
                f" at {lo:g} mm (the sharpest FWHM searched): no Gaussian FWHM in "
                f"{lo:g}-{hi:g} mm gives it (edge overshoot or noise)")
    if e.status == "below":
        return (f"measured recovery {e.measured:.3f} below the model's {e.model_at_bracket[1]:.3f}"
                f" at {hi:g} mm (the widest FWHM searched): no Gaussian FWHM in "
                f"{lo:g}-{hi:g} mm gives it")
    return f"measured recovery {e.measured!r} is not a finite number"


def fwhm_spread(diameters_mm, equivalent) -> dict:
    """The spread of the spheres' equivalent FWHMs (``fwhm_spread_mm``, the sample standard
    deviation, n - 1, over the spheres that have one; None with fewer than two) and a
    statement of what it is (``fwhm_spread``)."""
    found = [(float(d), float(e.fwhm_mm)) for d, e in zip(diameters_mm, equivalent)
             if e.fwhm_mm is not None]
    listed = ", ".join(f"{d:g} mm: {f:.2f} mm" for d, f in found) or "none"
    none = [f"{float(d):g} mm" for d, e in zip(diameters_mm, equivalent) if e.fwhm_mm is None]
    left = f"; without one: {', '.join(none)}" if none else ""
    if len(found) < 2:
        return {"fwhm_spread_mm": None,
                "fwhm_spread": f"no spread: fewer than two spheres have an equivalent Gaussian "
                               f"FWHM ({listed}{left}); the fit uncertainty is carried"}
    spread = statistics.stdev(f for _, f in found)
    return {"fwhm_spread_mm": spread,
            "fwhm_spread": f"standard deviation (n - 1) of the equivalent Gaussian FWHMs of "
                           f"{len(found)} spheres ({listed}{left}), each the FWHM at "
                           "which the model's recovery of that sphere equals its measured "
                           "recovery: how far this reconstruction is from one point-spread "
                           "function. Written because of the recovery misfit; the Monte Carlo "
                           "carries the larger of it and fwhm_sd_mm"}


def misfit_and_spread(diameters_mm, measured, model, equivalent, limit: float
                      ) -> tuple[dict | None, dict]:
    """The ``camera-recovery-misfit`` warning (or None) and the keys it adds to the camera
    file's ``psf`` (the spheres' FWHM spread; nothing without the warning)."""
    misfit = recovery_misfit(diameters_mm, measured, model, limit)
    return misfit, (fwhm_spread(diameters_mm, equivalent) if misfit else {})


def convergence_check(ct: sitk.Image, more_iterations, centres, sphere: float,
                      background: float, chosen) -> dict:
    """The chosen PSF model fitted to the phantom reconstructed with more iterations, against
    the protocol's fit ``chosen``: each effective FWHM, their change (protocol minus more
    iterations), each sphere's recovery there, and whether the change is within the limit."""
    scene, values = build_scene(ct, more_iterations.image, centres, sphere, background)
    start = fit_psf(scene, values, "gaussian")
    fit = start if chosen.model == "gaussian" else fit_psf(scene, values, chosen.model,
                                                           start=start)
    rc = recovery(scene, values, fit)
    protocol, more = effective_fwhm_mm(chosen.psf), effective_fwhm_mm(fit.psf)
    limit = calibration_data()["convergence_change_max_mm"]
    change = protocol - more
    return {"model": chosen.model, "effective_fwhm_mm": protocol,
            "more_iterations_effective_fwhm_mm": more,
            "more_iterations_components": [{"weight": w, "fwhm_mm": f}
                                           for w, f in fit.psf.components],
            "change_mm": change, "limit_mm": float(limit["value"]),
            "converged": abs(change) <= float(limit["value"]),
            "recovery_more_iterations": [float(v) for v in rc.measured],
            "rule": limit["source"]}


def not_converged_warning(convergence: dict) -> dict:
    """The ``camera-not-converged`` warning of a :func:`convergence_check` over its limit."""
    return {"code": "camera-not-converged",
            "message": f"the phantom's effective FWHM is "
                       f"{convergence['effective_fwhm_mm']:.2f} mm with the protocol's "
                       f"iterations and {convergence['more_iterations_effective_fwhm_mm']:.2f}"
                       f" mm with more (a change of {abs(convergence['change_mm']):.2f} mm, "
                       f"above {convergence['limit_mm']:g} mm): the reconstruction had not "
                       "converged in the phantom, and a patient whose activity is concentrated "
                       "in the liver converges faster, so values corrected with this camera "
                       "file may be over-corrected; calibrate on the phantom reconstructed with "
                       "enough iterations that its FWHM no longer changes (for activity "
                       "concentrated in the liver that is closer to the patient's image: "
                       "docs/imaging.md), or use a protocol that converges in the phantom too "
                       "(data/camera_calibration.json convergence_change_max_mm). The plan's "
                       "uncertainty carries the change where it is larger than the fit's"}


#: where a camera file's background variability was measured, given --noise-image
NOISE_IMAGE_BASIS = ("--noise-image (the same scan reconstructed as the patients' images are; "
                     "the PSF from --image)")


def calibrate(ct, image, *, nuclide: str, modality: str, sphere_kbq_ml: float,
              background_kbq_ml: float, reference_time: str | None = None,
              centres=None, reconstruction: str = "", camera_name: str = "",
              operator: str = "", force_model: str | None = None,
              acquisition_s: float | None = None, more_iterations=None,
              noise_image=None) -> dict:
    """The camera file of a phantom scan (``ct`` and ``image`` are LoadedImage).

    ``noise_image`` (a LoadedImage, optional): the same scan reconstructed as the patients'
    images are, where ``image`` is reconstructed otherwise (e.g. to convergence, for its
    resolution): the background variability (``roi_noise``), which the noise of a patient's
    TNRs, LSF and doses is scaled from, is measured on it instead.

    ``more_iterations`` (a LoadedImage, optional): the same scan reconstructed with more
    iterations than the protocol's; the chosen PSF model is fitted to it too, and where the
    effective FWHM changes by more than ``convergence_change_max_mm``
    (data/camera_calibration.json) the reconstruction had not converged in the phantom: a
    ``camera-not-converged`` warning, and the change in ``psf.fwhm_convergence_mm``."""
    _check_concentrations(sphere_kbq_ml, background_kbq_ml)
    if modality not in MODALITIES:
        raise FieldValueError("--modality", modality, " or ".join(MODALITIES))
    warnings: list[dict] = []
    decay = 1.0
    acquisition = image.meta.get("acquisition_datetime")
    if reference_time:
        try:
            ref = datetime.fromisoformat(reference_time)
        except ValueError:
            raise FieldValueError("--reference-time", reference_time,
                                  "ISO 8601 with UTC offset, e.g. 2026-12-01T09:00:00+01:00"
                                  ) from None
        if ref.tzinfo is None:
            raise FieldValueError("--reference-time", reference_time,
                                  "ISO 8601 with UTC offset, e.g. 2026-12-01T09:00:00+01:00")
        if acquisition:
            hours = (datetime.fromisoformat(acquisition) - ref).total_seconds() / 3600.0
            decay = 0.5 ** (hours / half_life_h(nuclide))
        else:
            warnings.append({"code": "no-acquisition-time",
                             "message": "the image has no acquisition time: the "
                                        "concentrations are used as given (no decay "
                                        "correction from --reference-time)"})
    else:
        half_life_h(nuclide)
    s, b = sphere_kbq_ml * decay, background_kbq_ml * decay
    if centres is None:
        centres, how = find_spheres(ct.image, image.image, s, b)
    else:
        how = {"method": "given (--sphere-centres-mm)"}
    scene, values = build_scene(ct.image, image.image, centres, s, b)
    gaussian = fit_psf(scene, values, "gaussian")
    tailed = fit_psf(scene, values, "core-plus-tail", start=gaussian)
    rule = calibration_data()["tail_model_rule"]
    reduction = (gaussian.residual_sum_of_squares / tailed.residual_sum_of_squares - 1.0
                 if tailed.residual_sum_of_squares > 0 else 0.0)
    use_tail = (reduction > rule["rss_reduction"]
                and tailed.parameters["tail_weight"] > rule["min_tail_weight"])
    if force_model is not None:
        use_tail = force_model == "core-plus-tail"
    chosen = tailed if use_tail else gaussian
    rc = recovery(scene, values, chosen)
    bracket = tuple(float(v) for v in calibration_data()["equivalent_fwhm_bracket_mm"]["value"])
    equivalent = equivalent_fwhms(scene, rc.measured, bracket)
    misfit, spread = misfit_and_spread(sphere_diameters_mm(), rc.measured, rc.model,
                                       equivalent,
                                       calibration_data()["recovery_misfit_max"]["value"])
    noisy = noise_image if noise_image is not None else image
    try:
        roi_noise = background_variability(
            ct.image, noisy.image, centres, counts=noisy.is_counts,
            settings=calibration_data()["background_variability"])
        if not noisy.is_counts:
            roi_noise["acquisition_s"] = acquisition_s
        roi_noise["measured_on"] = (NOISE_IMAGE_BASIS if noise_image is not None
                                    else "--image")
    except ImageDataError as exc:
        roi_noise = None
        warnings.append({"code": "no-background-variability",
                         "message": f"the reconstruction's noise was not measured ({exc}): "
                                    "measure and dose with this camera file keep the Poisson "
                                    "counting terms, which understate it; scan the phantom "
                                    "with its whole background in the field of view"})
    floor = calibration_data()["fwhm_sd_floor_mm"]["value"]
    core_key = "core_fwhm_mm" if use_tail else "fwhm_mm"
    core = chosen.parameters[core_key]
    fit_sd = chosen.standard_uncertainties[core_key]
    if not math.isfinite(fit_sd):
        raise ImageDataError("--image", f"the {chosen.model} PSF's {core_key} has no "
                             "standard uncertainty (the fit's information matrix is singular)",
                             "a phantom image whose spheres determine the PSF (or --model "
                             "gaussian)")
    sd = math.sqrt(fit_sd ** 2 + floor ** 2)
    if misfit:
        if spread.get("fwhm_spread_mm") is not None:
            misfit = {**misfit, "message": misfit["message"] + (
                f"; the spheres' equivalent Gaussian FWHMs spread by "
                f"{spread['fwhm_spread_mm']:.2f} mm (sd; fit uncertainty {sd:.2f} mm): the "
                "plan's uncertainty carries the larger")}
        warnings.append(misfit)
    convergence = None
    if more_iterations is not None:
        convergence = convergence_check(ct.image, more_iterations, centres, s, b, chosen)
        if not convergence["converged"]:
            warnings.append(not_converged_warning(convergence))
    voxel_ml = float(np.prod(image.image.GetSpacing())) / 1000.0
    k, k_sd = chosen.calibration_factor, chosen.calibration_factor_sd
    if image.is_counts:
        calibration = {"counts_per_mbq": k * 1000.0 / voxel_ml,
                       "counts_per_mbq_sd": k_sd * 1000.0 / voxel_ml,
                       "definition": "image counts per MBq in the field of view over the "
                                     "acquisition (fitted factor / voxel volume)"}
    else:
        calibration = {"scale": k / 1000.0, "scale_sd": k_sd / 1000.0,
                       "definition": "image Bq/mL per true Bq/mL (fitted factor)"}

    def fit_dict(fit):
        # a parameter the fit does not determine (a singular information matrix: e.g. the
        # tail of a core-plus-tail fit to a noise-free Gaussian image) has no uncertainty
        return {"model": fit.model, "parameters": fit.parameters,
                "standard_uncertainties": {k: (v if math.isfinite(v) else None)
                                           for k, v in fit.standard_uncertainties.items()},
                "relative_residual_rms": fit.relative_residual_rms,
                "residual_sum_of_squares": fit.residual_sum_of_squares,
                "voxels": fit.voxels}

    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return {
        "schema": CAMERA_SCHEMA,
        "name": camera_name or None,
        "modality": modality,
        "nuclide": nuclide,
        "reconstruction": reconstruction or None,
        "psf": {"model": chosen.model,
                "components": [{"weight": w, "fwhm_mm": f} for w, f in chosen.psf.components],
                "fwhm_mm": core, "fwhm_sd_mm": sd,
                "effective_fwhm_mm": effective_fwhm_mm(chosen.psf),
                "uncertainty": "fit standard uncertainty (Jacobian, independent voxel noise) "
                               f"and a {floor:g} mm floor in quadrature "
                               "(data/camera_calibration.json)",
                "fit_relative_residual_rms": chosen.relative_residual_rms, **spread,
                **({"fwhm_convergence_mm": abs(convergence["change_mm"])}
                   if convergence and not convergence["converged"] else {})},
        "fits": {"gaussian": fit_dict(gaussian), "core-plus-tail": fit_dict(tailed)},
        "model_choice": {"rss_reduction_by_tail": reduction, "rule": rule["source"],
                         "chosen": chosen.model,
                         "forced": force_model is not None},
        "spheres": [{"diameter_mm": dia, "centre_mm": [float(v) for v in c],
                     "recovery_measured": float(m), "recovery_model": float(mo),
                     "equivalent_fwhm_mm": e.fwhm_mm,
                     **({"equivalent_fwhm_none": why}
                        if (why := equivalent_fwhm_words(e, bracket)) else {})}
                    for dia, c, m, mo, e in zip(sphere_diameters_mm(), centres, rc.measured,
                                                rc.model, equivalent)],
        "equivalent_fwhm": "per sphere, the FWHM of the one Gaussian at which the model's "
                           "recovery of that sphere (the whole phantom blurred, as in the "
                           "fit) equals its measured recovery; searched over "
                           f"{bracket[0]:g}-{bracket[1]:g} mm (data/camera_calibration.json "
                           "equivalent_fwhm_bracket_mm), null where none in it does",
        "sphere_finding": how,
        "calibration": calibration,
        **({"roi_noise": roi_noise} if roi_noise else {}),
        **({"convergence": convergence} if convergence else {}),
        "concentrations": {"sphere_kbq_ml": sphere_kbq_ml,
                           "background_kbq_ml": background_kbq_ml,
                           "reference_time": reference_time,
                           "acquisition_time": acquisition,
                           "decay_factor_to_acquisition": decay},
        "phantom": {"name": iec_data()["name"], "source": iec_data()["source"]},
        "date": now,
        "operator": operator or None,
        "inputs": {"ct": {"source": ct.source, "sha256": ct.sha256},
                   "image": {"source": image.source, "sha256": image.sha256,
                             "units": image.units, "spacing_mm": list(image.image.GetSpacing())},
                   **({"more_iterations_image": {
                       "source": more_iterations.source, "sha256": more_iterations.sha256,
                       "units": more_iterations.units,
                       "spacing_mm": list(more_iterations.image.GetSpacing())}}
                      if more_iterations is not None else {}),
                   **({"noise_image": {
                       "source": noise_image.source, "sha256": noise_image.sha256,
                       "units": noise_image.units,
                       "spacing_mm": list(noise_image.image.GetSpacing())}}
                      if noise_image is not None else {})},
        "software": {"name": "tareplanner", "version": __version__},
        "warnings": warnings,
    }
