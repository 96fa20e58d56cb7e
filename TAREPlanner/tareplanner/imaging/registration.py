"""Rigid registration of a cone-beam CT to the planning CT (SimpleITK).

Mattes mutual information (robust to the contrast enhancement that only the CBCT has),
Euler 3D transform, on images smoothed to 4 mm voxels: a two-level multi-resolution (8 and
4 mm), then a fine level at the working spacing.
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

Several CBCTs (:func:`register_rigid_all`) are registered side by side, by this process and
by worker processes, each registration on one thread: every result is the one the
registration gives on its own, bit for bit, and the records are the same either way.
"""

from __future__ import annotations

import math
import os
import sys
from collections import deque
from concurrent.futures import FIRST_COMPLETED, CancelledError, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

DEFAULT_SEED = 20261122
#: threads of the registration metric and optimiser; more threads make the result depend on
#: the order in which partial sums are added, which varies from run to run
REGISTRATION_THREADS = 1
#: most registrations :func:`register_rigid_all` runs at the same time (this process and
#: worker processes, one thread each); None: one per CPU this process may use
REGISTRATION_PROCESSES: int | None = None
#: voxel size (mm) the CT and the CBCT are smoothed and resampled to before registering: on
#: 16 CBCTs of the synthetic patients (docs/benchmarks.md) 4 mm gave smaller errors against
#: the true transforms than 2 mm (largest 1.13 against 1.42 mm, mean 0.51 against 0.69 mm)
#: for a third of the CPU time: the images' noise at 2 mm roughens the mutual information
WORKING_SPACING_MM = 4.0
#: coarse stage: pyramid shrink factors of the working images (8 and 4 mm at 4 mm), smoothing
#: (mm) per level, iteration limit
COARSE_SHRINK = (2, 1)
COARSE_SIGMAS_MM = (3.0, 1.5)
COARSE_ITERATIONS = 200
#: coarse stage: smallest step (mm); 1e-4 went on for up to 160 more iterations at the finest
#: level, changing the transform by less than the fine stage then moves it
COARSE_MIN_STEP = 1e-3
#: fine stage: iteration limit and line-search tolerance (fraction of the search interval).
#: On the synthetic patients (2 and 5 positions, 16 CBCTs) 8 iterations at 0.05 give errors
#: against the truth within 0.02 mm of those of 15 at 0.01, for half the metric evaluations
#: (docs/benchmarks.md)
FINE_ITERATIONS = 8
FINE_LINE_SEARCH_EPSILON = 0.05
#: fraction of the mask's voxels the metric samples while optimising (fixed seed): the coarse
#: stage's, and the fine stage's (with 6 % of the 4-mm mask its line search ended worse than
#: it started on 4 of the 16 CBCTs, with 50 % on 1)
SAMPLING_FRACTION = 0.06
FINE_SAMPLING_FRACTION = 0.5


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


def euler_from_dict(entry: dict) -> sitk.Euler3DTransform:
    """The rigid transform of a recorded registration (:meth:`RegistrationResult.as_dict`) or
    of the synthetic patient's truth (``cbct_transforms``): centre, angles, translation."""
    t = sitk.Euler3DTransform()
    t.SetCenter(tuple(float(c) for c in entry["center_mm"]))
    t.SetRotation(*(math.radians(a) for a in entry["angles_deg"]))
    t.SetTranslation(tuple(float(v) for v in entry["translation_mm"]))
    return t


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
                   sampling_fraction: float = SAMPLING_FRACTION,
                   working_spacing_mm: float = WORKING_SPACING_MM,
                   bins: int = 48) -> RegistrationResult:
    """Register ``moving_cbct`` to ``fixed_ct`` (both in HU).

    ``fixed_mask`` (e.g. the liver grown by 20 mm) restricts the metric to the region that
    matters and avoids the CBCT's field-of-view edge. The images are assumed roughly aligned
    (within a few cm and degrees): the initial transform is the identity, centred on the mask.

    Both images are smoothed and resampled to voxels of at least ``working_spacing_mm``
    (default 4 mm). Two stages: (1) regular-step gradient descent over a 2-level pyramid (8
    and 4 mm at the default working spacing) captures the offset; (2) conjugate-gradient
    line search at the working spacing, sampling half the mask's voxels, refines it. Random
    metric sampling uses a fixed ``seed``. The metric values reported (before, after each
    level) are over all mask voxels at the working spacing. A failed
    or worse fine level keeps the coarse transform and adds a warning (``warnings``).

    ITK's global default thread count is ``REGISTRATION_THREADS`` while it runs (restored
    afterwards), so that the same images give the same transform bit for bit.
    """
    _announce()
    return _registration_job(fixed_ct, moving_cbct, fixed_mask, seed=seed,
                             sampling_fraction=sampling_fraction,
                             working_spacing_mm=working_spacing_mm, bins=bins)


def _announce() -> None:
    for callback in list(_OBSERVERS):
        callback()


def _registration_job(fixed_ct, moving_cbct, fixed_mask, *, seed=DEFAULT_SEED,
                      sampling_fraction=SAMPLING_FRACTION, working_spacing_mm=WORKING_SPACING_MM,
                      bins=48) -> RegistrationResult:
    """One registration on ``REGISTRATION_THREADS`` threads, not announced: what
    :func:`register_rigid` runs, here or in a worker process."""
    with _threads(REGISTRATION_THREADS):
        return _register(fixed_ct, moving_cbct, fixed_mask, seed, sampling_fraction,
                         working_spacing_mm, bins)


def available_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def embedded_interpreter() -> bool:
    """Whether this Python runs inside an application (the 3D Slicer application: the
    ``slicer`` module has its ``app``), whose executable is no Python that 'spawn' can
    start. A plain Python that imports slicer-core (the web page, the headless tests) is
    not embedded: its registrations run side by side."""
    slicer = sys.modules.get("slicer")
    return getattr(slicer, "app", None) is not None or not sys.executable


def register_rigid_all(fixed_ct: sitk.Image, movings, fixed_mask: sitk.Image | None = None,
                       *, processes: int | None = None, **options) -> list[RegistrationResult]:
    """:func:`register_rigid` of each of ``movings`` to ``fixed_ct``; the results in order.

    Up to ``processes`` registrations (default ``REGISTRATION_PROCESSES``, else one per
    available CPU) run at the same time: one in this process, the others in worker processes
    started with 'spawn', each on one thread as in :func:`register_rigid`, so that every
    result is bit for bit the one :func:`register_rigid` gives on its own. One image, one
    CPU, or an embedding interpreter (3D Slicer, whose executable is no Python to spawn):
    one after the other, here. Registrations the workers cannot take (a pool that cannot
    start, a worker that dies) run here: the same results, later. The observers
    (:func:`observe_registrations`) are called in this process, in order, as each
    registration starts. An error is raised as one after the other would raise it: the
    first failing image's (the others have run)."""
    movings = list(movings)
    count = _side_by_side(len(movings), processes)
    if count < 2:
        return [register_rigid(fixed_ct, m, fixed_mask, **options) for m in movings]
    results: dict[int, RegistrationResult] = {}
    errors: dict[int, Exception] = {}
    announced: set[int] = set()
    queue = deque(range(len(movings)))
    futures: dict = {}
    pool = _take_started_pool(count - 1)
    if pool is None:
        pool = _worker_pool(count - 1)
    try:
        while queue or futures:
            while pool is not None and queue and len(futures) < count - 1:
                try:
                    future = pool.submit(_registration_job, fixed_ct, movings[queue[0]],
                                         fixed_mask, **options)
                except (BrokenProcessPool, RuntimeError, OSError):
                    pool = _give_up(pool)
                    break
                i = queue.popleft()
                futures[future] = i
                if i not in announced:
                    announced.add(i)
                    _announce()
            if queue:  # this process takes the next one
                i = queue.popleft()
                if i not in announced:
                    announced.add(i)
                    _announce()
                try:
                    results[i] = _registration_job(fixed_ct, movings[i], fixed_mask, **options)
                except Exception as error:
                    errors[i] = error
            else:
                wait(list(futures), return_when=FIRST_COMPLETED)
            for future in [f for f in futures if f.done()]:
                i = futures.pop(future)
                try:
                    results[i] = future.result()
                except (BrokenProcessPool, CancelledError):  # could not start, or died
                    pool = _give_up(pool)
                    queue = deque(sorted([*queue, i]))
                except Exception as error:
                    errors[i] = error
    except BaseException:
        _stop(pool)
        raise
    if pool is not None:
        pool.shutdown(wait=True)
    if errors:
        raise errors[min(errors)]
    return [results[i] for i in range(len(movings))]


def _side_by_side(registrations: int, processes: int | None = None) -> int:
    """How many of ``registrations`` run at the same time (1: one after the other, here)."""
    limit = processes if processes is not None else REGISTRATION_PROCESSES
    count = min(registrations, limit if limit is not None else available_cpus())
    return 1 if count < 2 or embedded_interpreter() else count


#: worker pools started ahead of their registrations (:func:`workers_started_early`), by size
_STARTED: dict[int, object] = {}


@contextmanager
def workers_started_early(registrations: int, processes: int | None = None):
    """Start now the worker processes that :func:`register_rigid_all` would start for
    ``registrations`` images, so that their start (about 0.3-0.6 s: a new Python importing
    SimpleITK and this module) overlaps what this process does before registering, such as
    reading the images. The first :func:`register_rigid_all` of that many side-by-side
    registrations inside the block takes the pool over; one that was not taken is ended on
    leaving the block. Nothing changes in the results: the same jobs run in the same kind of
    worker. Where the registrations would run one after the other, nothing is started."""
    workers = _side_by_side(registrations, processes) - 1
    pool = _worker_pool(workers) if workers >= 1 and workers not in _STARTED else None
    if pool is not None:
        try:
            for _ in range(workers):
                pool.submit(_ready)
            _STARTED[workers] = pool
        except (BrokenProcessPool, RuntimeError, OSError):
            pool = _give_up(pool)
    try:
        yield
    finally:
        if pool is not None and _STARTED.get(workers) is pool:
            del _STARTED[workers]
            _stop(pool)


def _ready() -> bool:
    """A worker's first job: it has imported this module (and SimpleITK) by running it."""
    return True


def _take_started_pool(workers: int):
    """The pool :func:`workers_started_early` started for ``workers`` workers, taken over by
    the caller (who shuts it down), or None."""
    return _STARTED.pop(workers, None)


def _worker_pool(workers: int):
    """A pool of ``workers`` processes started with 'spawn', or None when none can be made."""
    try:
        import multiprocessing
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_ignore_interrupts)
    except (ImportError, NotImplementedError, OSError, ValueError):
        return None


def _ignore_interrupts() -> None:
    """In a worker: Ctrl-C is this process's to handle (it ends the workers, quietly)."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _give_up(pool) -> None:
    """No more work for ``pool``: its queued registrations are cancelled (run here)."""
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)
    return None


def _stop(pool) -> None:
    """End the worker processes (Ctrl-C, an error here): their registrations are not wanted."""
    if pool is None:
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


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
    coarse.SetOptimizerAsRegularStepGradientDescent(learningRate=2.0, minStep=COARSE_MIN_STEP,
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
                                                     FINE_SAMPLING_FRACTION, seed, bins)
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
                                                   lineSearchEpsilon=FINE_LINE_SEARCH_EPSILON,
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
