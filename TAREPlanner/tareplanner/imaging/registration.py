"""Rigid registration of a cone-beam CT to the planning CT (SimpleITK).

Mattes mutual information (robust to the contrast enhancement that only the CBCT has),
Euler 3D transform, three-level multi-resolution, then a fine level at the working spacing.
The SPECT shares the CT's frame of reference and needs no registration. The returned
transform maps CT (fixed) points to CBCT (moving) points, as SimpleITK's resampling expects.

Reproducibility: the same images give the same transform, bit for bit. Random metric
sampling uses a fixed seed, and the metric and optimiser run on one thread
(``REGISTRATION_THREADS``): ITK's multi-threaded metric adds per-thread partial sums in an
order that changes from run to run, which moved the transform by micrometres and the
measured volumes by a few voxels between identical runs.

A fine level that fails (an exception from ITK, e.g. the transform leaves the images'
overlap) or ends worse than the coarse result does not fail the registration: the coarse
transform is kept and a warning with both metric values is returned (and recorded in the
measurement, the case, the plan record and the report).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

DEFAULT_SEED = 20261122
#: threads of the registration metric and optimiser; more threads make the result depend on
#: the order in which partial sums are added, which varies from run to run
REGISTRATION_THREADS = 1
#: coarse stage: pyramid shrink factors and smoothing (mm) per level, iteration limit
COARSE_SHRINK = (4, 2, 1)
COARSE_SIGMAS_MM = (3.0, 1.5, 0.0)
COARSE_ITERATIONS = 200
#: fine stage: iteration limit (on the synthetic patient 15 give the transform that 40 gave,
#: to 0.01 mm)
FINE_ITERATIONS = 15
#: fraction of the mask's voxels the metric samples while optimising (fixed seed)
SAMPLING_FRACTION = 0.06


@dataclass(frozen=True)
class RegistrationResult:
    transform: sitk.Euler3DTransform
    metric_before: float
    metric_after: float
    iterations: int
    stop_condition: str
    fine_level: dict = field(default_factory=dict)
    warnings: tuple[dict, ...] = ()

    @property
    def angles_deg(self) -> tuple[float, float, float]:
        t = self.transform
        return tuple(math.degrees(a) for a in (t.GetAngleX(), t.GetAngleY(), t.GetAngleZ()))

    def as_dict(self) -> dict:
        t = self.transform
        return {"type": "Euler3D", "maps": "CT point -> CBCT point",
                "center_mm": list(t.GetCenter()), "angles_deg": list(self.angles_deg),
                "translation_mm": list(t.GetTranslation()),
                "matrix": list(t.GetMatrix()),
                "mattes_mi_before": self.metric_before, "mattes_mi_after": self.metric_after,
                "iterations": self.iterations, "stop_condition": self.stop_condition,
                "fine_level": dict(self.fine_level), "warnings": list(self.warnings)}


def mask_centroid_mm(mask: sitk.Image) -> tuple[float, float, float]:
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Cast(mask > 0, sitk.sitkUInt8))
    if not stats.HasLabel(1):
        raise ValueError("the registration mask is empty")
    return stats.GetCentroid(1)


def _crop_to_mask(image: sitk.Image, mask: sitk.Image, margin_vox: int = 2):
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(mask)
    if not stats.HasLabel(1):
        raise ValueError("the registration mask is empty")
    x, y, z, sx, sy, sz = stats.GetBoundingBox(1)
    low = [max(0, v - margin_vox) for v in (x, y, z)]
    high = [min(n, v + s + margin_vox) for v, s, n in zip((x, y, z), (sx, sy, sz), image.GetSize())]
    size = [h - l for l, h in zip(low, high)]
    return (sitk.RegionOfInterest(image, size, low), sitk.RegionOfInterest(mask, size, low))


def _at_least(image: sitk.Image, spacing_mm: float) -> sitk.Image:
    """Downsample (with smoothing) to voxels of at least ``spacing_mm`` where finer."""
    spacing = np.array(image.GetSpacing())
    target = np.maximum(spacing, spacing_mm)
    if np.allclose(target, spacing):
        return image
    sigma = np.sqrt(np.maximum(target ** 2 - spacing ** 2, 0)) / 2.355
    smoothed = sitk.SmoothingRecursiveGaussian(image, [float(s) for s in np.maximum(sigma, 1e-3)])
    size = np.ceil(np.array(image.GetSize()) * spacing / target).astype(int)
    origin = image.TransformContinuousIndexToPhysicalPoint(tuple(float(v) for v in
                                                                 (target / spacing - 1) / 2))
    return sitk.Resample(smoothed, [int(v) for v in size], sitk.Transform(), sitk.sitkLinear,
                         origin, tuple(float(v) for v in target), image.GetDirection(), 0.0,
                         image.GetPixelID())


def _method(fixed_mask, sampling_fraction: float, seed: int, bins: int):
    reg = sitk.ImageRegistrationMethod()
    reg.SetNumberOfThreads(REGISTRATION_THREADS)
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=bins)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(sampling_fraction, seed)
    if fixed_mask is not None:
        reg.SetMetricFixedMask(fixed_mask)
    reg.SetInterpolator(sitk.sitkLinear)
    return reg


#: callables run (without arguments) as each registration starts: the command line's step lines
_OBSERVERS: list = []


@contextmanager
def observe_registrations(callback):
    """Run ``callback()`` as each :func:`register_rigid` call in the block starts."""
    _OBSERVERS.append(callback)
    try:
        yield
    finally:
        _OBSERVERS.remove(callback)


@contextmanager
def _threads(count: int):
    """ITK's global default thread count set to ``count`` for the block, then restored. The
    metric and optimiser of a registration take their threads from the global default (the
    method's own ``SetNumberOfThreads`` does not reach them)."""
    previous = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(count)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(previous)


def register_rigid(fixed_ct: sitk.Image, moving_cbct: sitk.Image,
                   fixed_mask: sitk.Image | None = None, *, seed: int = DEFAULT_SEED,
                   sampling_fraction: float = SAMPLING_FRACTION, working_spacing_mm: float = 2.0,
                   bins: int = 48) -> RegistrationResult:
    """Register ``moving_cbct`` to ``fixed_ct`` (both in HU).

    ``fixed_mask`` (e.g. the liver grown by 20 mm) restricts the metric to the region that
    matters and avoids the CBCT's field-of-view edge. The images are assumed roughly aligned
    (within a few cm and degrees): the initial transform is the identity, centred on the mask.

    Two stages: (1) regular-step gradient descent over a 3-level pyramid (8, 4, 2 mm at the
    default working spacing) captures the offset; (2) conjugate-gradient line search at the
    working spacing refines it (stage 1 alone stops up to ~2 mm short on the synthetic
    patient; stage 2 brings it below 1 mm). Random metric sampling uses a fixed ``seed``.
    The metric values reported (before, after each level) are over all mask voxels. A failed
    or worse fine level keeps the coarse transform and adds a warning (``warnings``).

    ITK's global default thread count is ``REGISTRATION_THREADS`` while it runs (restored
    afterwards), so that the same images give the same transform bit for bit.
    """
    for callback in list(_OBSERVERS):
        callback()
    with _threads(REGISTRATION_THREADS):
        return _register(fixed_ct, moving_cbct, fixed_mask, seed, sampling_fraction,
                         working_spacing_mm, bins)


def _register(fixed_ct, moving_cbct, fixed_mask, seed, sampling_fraction, working_spacing_mm,
              bins) -> RegistrationResult:
    fixed = sitk.Cast(fixed_ct, sitk.sitkFloat32)
    moving = sitk.Cast(moving_cbct, sitk.sitkFloat32)
    mask = None
    if fixed_mask is not None:
        fixed, mask = _crop_to_mask(fixed, sitk.Cast(fixed_mask > 0, sitk.sitkUInt8))
    fixed = _at_least(fixed, working_spacing_mm)
    moving = _at_least(moving, working_spacing_mm)
    if mask is not None:
        mask = sitk.Resample(mask, fixed, sitk.Transform(), sitk.sitkNearestNeighbor)
    initial = sitk.Euler3DTransform()
    if mask is not None:
        initial.SetCenter(mask_centroid_mm(mask))
    else:
        size = np.array(fixed.GetSize())
        initial.SetCenter(fixed.TransformContinuousIndexToPhysicalPoint(
            tuple(float(v) for v in (size - 1) / 2.0)))

    coarse = _method(mask, sampling_fraction, seed, bins)
    coarse.SetOptimizerAsRegularStepGradientDescent(learningRate=2.0, minStep=1e-4,
                                                    numberOfIterations=COARSE_ITERATIONS,
                                                    relaxationFactor=0.8,
                                                    gradientMagnitudeTolerance=1e-8)
    coarse.SetOptimizerScalesFromPhysicalShift()
    coarse.SetShrinkFactorsPerLevel(list(COARSE_SHRINK))
    coarse.SetSmoothingSigmasPerLevel(list(COARSE_SIGMAS_MM))
    coarse.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    coarse.SetInitialTransform(initial, inPlace=False)
    before = _metric(fixed, moving, mask, initial, seed, bins)  # all voxels, like ``after``
    stage1 = sitk.Euler3DTransform(_unwrap(coarse.Execute(fixed, moving)))
    iterations = int(coarse.GetOptimizerIteration())
    stop = coarse.GetOptimizerStopConditionDescription()

    coarse_metric = _metric(fixed, moving, mask, stage1, seed, bins)
    result, warnings = stage1, []
    fine_level = {"status": "accepted", "mattes_mi_coarse": coarse_metric}
    try:
        stage2, fine_iterations, fine_stop = _refine(fixed, moving, mask, stage1,
                                                     sampling_fraction, seed, bins)
    except RuntimeError as error:  # e.g. the refinement left the images' overlap
        reason = " ".join(str(error).split())[-300:]
        fine_level.update(status="failed", error=reason)
        warnings.append({"code": "registration-fine-level-failed",
                         "message": "the fine registration level failed; the coarse result "
                                    f"is kept (Mattes MI {float(before):.4f} before, "
                                    f"{coarse_metric:.4f} after the coarse levels): {reason}"})
    else:
        fine_metric = _metric(fixed, moving, mask, stage2, seed, bins)
        fine_level["mattes_mi_fine"] = fine_metric
        if fine_metric <= coarse_metric:
            result = stage2
            iterations += fine_iterations
            stop = fine_stop
        else:
            fine_level["status"] = "rejected"
            warnings.append({"code": "registration-fine-level-rejected",
                             "message": "the fine registration level ended at a worse metric "
                                        f"(Mattes MI {fine_metric:.4f}) than the coarse levels "
                                        f"({coarse_metric:.4f}); the coarse result is kept"})
    after = coarse_metric if result is stage1 else fine_level["mattes_mi_fine"]
    return RegistrationResult(result, float(before), float(after), iterations, stop,
                              fine_level, tuple(warnings))


def _refine(fixed, moving, mask, start: sitk.Euler3DTransform, sampling_fraction: float,
            seed: int, bins: int):
    """Fine level: conjugate-gradient line search at the working spacing from ``start``;
    returns (transform, iterations, stop condition); raises RuntimeError when ITK fails."""
    fine = _method(mask, sampling_fraction, seed, bins)
    fine.SetOptimizerAsConjugateGradientLineSearch(learningRate=1.0,
                                                   numberOfIterations=FINE_ITERATIONS,
                                                   convergenceMinimumValue=1e-7,
                                                   convergenceWindowSize=10,
                                                   lineSearchUpperLimit=2.0,
                                                   maximumStepSizeInPhysicalUnits=1.0)
    fine.SetOptimizerScalesFromPhysicalShift()
    fine.SetInitialTransform(sitk.Euler3DTransform(start), inPlace=False)
    transform = sitk.Euler3DTransform(_unwrap(fine.Execute(fixed, moving)))
    return (transform, int(fine.GetOptimizerIteration()),
            fine.GetOptimizerStopConditionDescription())


def _unwrap(transform: sitk.Transform) -> sitk.Transform:
    if isinstance(transform, sitk.CompositeTransform):
        return transform.GetNthTransform(0)
    return transform


def _metric(fixed, moving, mask, transform, seed, bins) -> float:
    reg = _method(mask, 1.0, seed, bins)
    reg.SetMetricSamplingStrategy(reg.NONE)
    reg.SetInitialTransform(transform)
    return float(reg.MetricEvaluate(fixed, moving))


def transform_error_mm(estimated: sitk.Transform, truth: sitk.Transform,
                       points_mm: np.ndarray) -> np.ndarray:
    """Distance between where two transforms send each point (N x 3 array), in mm."""
    a = np.array([estimated.TransformPoint(tuple(map(float, p))) for p in points_mm])
    b = np.array([truth.TransformPoint(tuple(map(float, p))) for p in points_mm])
    return np.linalg.norm(a - b, axis=1)
