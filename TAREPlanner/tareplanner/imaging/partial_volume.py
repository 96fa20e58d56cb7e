"""Partial-volume correction of the SPECT region values on the CT masks (image plumbing).

The regions are the tumours, the normal liver of each territory, the liver outside every
territory, the lungs (optionally split into base and rest), the rest of the body and the
outside of the body: together they cover every CT voxel once. The measurement operator is
the one of :func:`tareplanner.imaging.quantities.counts_on_grid` (every CT voxel takes the
SPECT voxel that contains its centre, nearest-neighbour resampling): the map from CT voxels
to SPECT voxels is obtained by resampling an image of SPECT voxel numbers with that very
resampler, so that the transfer matrix reads its images exactly as the data are read. The
math is in :mod:`tareplanner.physics.partial_volume`.

The system resolution comes, in this order, from a FWHM given by the user, a site camera
file (JSON: ``fwhm_mm`` and ``source``) or the default for the SPECT's radionuclide in
``data/spect_resolution.json``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import FieldValueError, SchemaError
from ..physics.partial_volume import (PointSpread, fine_voxel_counts, region_means,
                                      solve_gtm, transfer_matrices)

RESOLUTION_FILE = "spect_resolution.json"
#: FWHM the correction accepts (mm): below a voxel it does nothing, above 50 mm no SPECT
FWHM_RANGE_MM = (0.0, 50.0)


@lru_cache(maxsize=None)
def resolution_data() -> dict:
    text = resources.files("tareplanner.data").joinpath(RESOLUTION_FILE).read_text("utf-8")
    return json.loads(text)


def check_fwhm(value, field: str) -> float:
    """A FWHM in mm within FWHM_RANGE_MM, or a FieldValueError naming ``field``."""
    low, high = FWHM_RANGE_MM
    number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else float("nan")
    if not (math.isfinite(number) and low < number <= high):
        raise FieldValueError(field, value, f"a FWHM in mm, > {low:g} and <= {high:g}")
    return number


def default_resolution(radionuclide: str | None) -> dict:
    """The default system resolution for ``radionuclide`` with its source."""
    data = resolution_data()
    known = data["defaults"]
    if radionuclide in known:
        entry, chosen = known[radionuclide], f"default for {radionuclide}"
    else:
        fallback = data["unknown_radionuclide"]
        entry = known[fallback]
        chosen = (f"default for {fallback}; " + (f"no default for {radionuclide!r}"
                                                 if radionuclide else
                                                 "the SPECT names no radionuclide"))
    spread = data["assumed_fwhm_half_range_mm"]
    return {"fwhm_mm": float(entry["fwhm_mm"]), "source": entry["source"],
            "study": entry["study"], "chosen_by": chosen,
            "assumed": True, "radionuclide_known": radionuclide in known,
            "fwhm_half_range_mm": float(spread["value"]),
            "fwhm_range_source": spread["source"]}


def resolution_from_camera_file(path: str, field: str = "--camera") -> dict:
    """A site camera file: ``{"fwhm_mm": 12.5, "source": "..."}`` (``name`` optional)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise FieldValueError(field, path, "a readable JSON file", exc.strerror or "") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SchemaError(field, path, "a JSON object with fwhm_mm and source",
                          str(exc)) from None
    if not isinstance(doc, dict):
        raise SchemaError(field, type(doc).__name__, "a JSON object with fwhm_mm and source")
    unknown = sorted(set(doc) - {"fwhm_mm", "source", "name"})
    if unknown:
        raise FieldValueError(f"{field} {path}", unknown, "keys fwhm_mm, source, name")
    if "fwhm_mm" not in doc:
        raise FieldValueError(f"{field} {path}:fwhm_mm", None, "the camera's FWHM in mm")
    fwhm = check_fwhm(doc["fwhm_mm"], f"{field} {path}:fwhm_mm")
    source = doc.get("source")
    if not isinstance(source, str) or not source.strip():
        raise FieldValueError(f"{field} {path}:source", source,
                              "a text saying where the FWHM comes from (measurement, date)")
    out = {"fwhm_mm": fwhm, "source": source.strip(), "chosen_by": f"camera file {path}",
           "assumed": False, "fwhm_half_range_mm": float(
               resolution_data()["assumed_fwhm_half_range_mm"]["value"]),
           "fwhm_range_source": "a FWHM file without its uncertainty (no "
                                "tareplanner.camera/1 calibration): "
                                + resolution_data()["assumed_fwhm_half_range_mm"]["source"]}
    if isinstance(doc.get("name"), str):
        out["camera"] = doc["name"]
    return out


def resolution_given(fwhm_mm: float, field: str = "--spect-fwhm-mm") -> dict:
    spread = resolution_data()["assumed_fwhm_half_range_mm"]
    return {"fwhm_mm": check_fwhm(fwhm_mm, field), "source": f"given by the user ({field})",
            "chosen_by": field, "assumed": False,
            "fwhm_half_range_mm": float(spread["value"]),
            "fwhm_range_source": "a FWHM given without its uncertainty: " + spread["source"]}


def spect_index_on_grid(spect: sitk.Image, reference: sitk.Image) -> np.ndarray:
    """For every voxel of ``reference``, the flat (z, y, x) index of the SPECT voxel that
    contains its centre, -1 outside the SPECT: the nearest-neighbour resampling of
    :func:`counts_on_grid`, applied to an image of voxel numbers."""
    size = spect.GetSize()
    n = int(np.prod(size))
    if n >= 2 ** 31:
        raise ValueError("the SPECT has too many voxels for the partial-volume correction")
    numbers = sitk.GetImageFromArray(np.arange(n, dtype=np.int32).reshape(size[::-1]))
    numbers.CopyInformation(spect)
    moved = sitk.Resample(numbers, reference, sitk.Transform(), sitk.sitkNearestNeighbor, -1,
                          sitk.sitkInt32)
    return sitk.GetArrayFromImage(moved)


@dataclass(frozen=True)
class RegionSet:
    """Disjoint regions covering the CT grid: ``labels`` holds 0..R-1 per CT voxel."""

    names: tuple[str, ...]
    labels: np.ndarray

    def volumes_ml(self, voxel_ml: float, within: np.ndarray | None = None) -> np.ndarray:
        """Each region's volume (mL), or the part of it inside the mask ``within``."""
        labels = self.labels if within is None else self.labels[within]
        return np.bincount(labels.ravel(), minlength=len(self.names)) * voxel_ml


def build_regions(*, tumours: dict[str, np.ndarray], territories: dict[str, np.ndarray],
                  liver: np.ndarray, lungs: np.ndarray, body: np.ndarray,
                  lung_base: np.ndarray | None = None) -> RegionSet:
    """Tumours first, then each territory's normal liver, the rest of the liver, the lungs
    (the base apart when given), the rest of the body and the outside of the body; a voxel
    belongs to the first region that claims it. Empty regions are left out."""
    labels = np.full(liver.shape, -1, dtype=np.int16)
    names: list[str] = []

    def claim(name: str, mask: np.ndarray) -> None:
        free = mask & (labels < 0)
        if free.any():
            labels[free] = len(names)
            names.append(name)

    for name, mask in tumours.items():
        claim(f"tumour:{name}", mask)
    for name, mask in territories.items():
        claim(f"normal:{name}", mask & liver)
    claim("liver outside territories", liver)
    if lung_base is not None:
        claim("lung base", lungs & lung_base)
    claim("lungs", lungs)
    claim("rest of body", body)
    claim("outside body", np.ones(liver.shape, dtype=bool))
    return RegionSet(tuple(names), labels)


@dataclass(frozen=True)
class PvcResult:
    """Corrected and measured region means (per mL, in the image's counts units)."""

    names: tuple[str, ...]
    measured_per_ml: np.ndarray
    corrected_per_ml: np.ndarray
    transfer_matrix: np.ndarray
    condition_number: float
    method: str
    relative_residual: float

    def corrected(self, name: str) -> float:
        """The corrected mean of region ``name`` (NaN for a region that has no voxel)."""
        if name not in self.names:
            return float("nan")
        return float(self.corrected_per_ml[self.names.index(name)])

    def measured(self, name: str) -> float:
        if name not in self.names:
            return float("nan")
        return float(self.measured_per_ml[self.names.index(name)])

    def as_dict(self) -> dict:
        return {"regions": {n: {"measured_per_ml": _finite(m), "corrected_per_ml": _finite(c),
                                "recovery": _finite(m / c) if c else None}
                            for n, m, c in zip(self.names, self.measured_per_ml,
                                               self.corrected_per_ml)},
                "condition_number": self.condition_number, "solver": self.method,
                "relative_residual": self.relative_residual}


def _finite(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def correct_regions(spect: sitk.Image, reference: sitk.Image, regions: RegionSet,
                    fwhm_mm: float) -> PvcResult:
    """GTM correction of the region means of ``spect`` read on ``reference`` (the CT)."""
    return correct_regions_with_psf(spect, reference, regions, PointSpread.gaussian(fwhm_mm))


def correct_regions_with_psf(spect: sitk.Image, reference: sitk.Image, regions: RegionSet,
                             psf: PointSpread) -> PvcResult:
    return correct_regions_with_psfs(spect, reference, regions, [psf])[0]


def correct_regions_with_psfs(spect: sitk.Image, reference: sitk.Image, regions: RegionSet,
                              psfs) -> list[PvcResult]:
    """:func:`correct_regions_with_psf` for several PSFs, sharing the voxel map and counts
    (how the uncertainty of the resolution is carried: the correction at a few FWHMs)."""
    index = spect_index_on_grid(spect, reference)
    shape = spect.GetSize()[::-1]
    n_coarse = int(np.prod(shape))
    counts = fine_voxel_counts(index, regions.labels, len(regions.names), n_coarse)
    values = sitk.GetArrayFromImage(sitk.Cast(spect, sitk.sitkFloat64)).ravel()
    spect_ml = float(np.prod(spect.GetSpacing())) / 1000.0
    measured = region_means(counts, values) / spect_ml
    out = []
    for psf, gtm in zip(psfs, transfer_matrices(counts, shape, spect.GetSpacing()[::-1], psfs)):
        solution = solve_gtm(gtm.matrix, measured)
        out.append(PvcResult(regions.names, measured, solution.means, gtm.matrix,
                             gtm.condition_number, solution.method,
                             solution.relative_residual))
    return out
