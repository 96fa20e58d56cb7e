"""Quantities from SPECT counts and masks: volumes, counts, lung shunt fraction, TNR.

Counts in a structure are computed at the resolution of the masks (the CT grid): every CT
voxel takes the count density of the SPECT voxel that contains its centre, so structure
edges are handled by fractional occupancy at CT resolution. These are the measured
(uncorrected) values; :mod:`tareplanner.imaging.partial_volume` corrects them for the
system resolution through this same measurement operator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

OUTSIDE = np.nan


def counts_on_grid(spect: sitk.Image, reference: sitk.Image) -> np.ndarray:
    """SPECT counts per voxel of ``reference`` (NaN outside the SPECT field of view)."""
    moved = sitk.Resample(sitk.Cast(spect, sitk.sitkFloat32), reference, sitk.Transform(),
                          sitk.sitkNearestNeighbor, float("nan"), sitk.sitkFloat32)
    ratio = np.prod(reference.GetSpacing()) / np.prod(spect.GetSpacing())
    return sitk.GetArrayFromImage(moved) * np.float32(ratio)


@dataclass(frozen=True)
class StructureCounts:
    name: str
    volume_ml: float
    counts: float
    in_fov_fraction: float

    @property
    def counts_per_ml(self) -> float:
        return self.counts / self.volume_ml if self.volume_ml > 0 else float("nan")

    def as_dict(self) -> dict:
        return {"volume_ml": self.volume_ml, "counts": self.counts,
                "counts_per_ml": self.counts_per_ml, "in_fov_fraction": self.in_fov_fraction}


def structure_counts(name: str, counts: np.ndarray, mask: np.ndarray,
                     voxel_ml: float) -> StructureCounts:
    values = counts[mask]
    finite = np.isfinite(values)
    n = int(mask.sum())
    return StructureCounts(name, n * voxel_ml, float(values[finite].sum()),
                           float(finite.sum()) / n if n else 0.0)


@dataclass(frozen=True)
class LungShunt:
    lung_shunt_fraction: float
    lung_counts: float
    liver_counts: float
    lung_volume_ml: float
    lung_volume_used_ml: float
    lungs_in_fov_fraction: float
    method: str
    partial_volume_corrected: bool = False

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def lung_shunt_from_spect(counts: np.ndarray, lungs: np.ndarray, liver: np.ndarray,
                          voxel_ml: float, lungs_used: np.ndarray | None = None) -> LungShunt:
    """LSF = C_lung / (C_lung + C_liver) from SPECT counts.

    With ``lungs_used`` (the lungs minus a basal margin) the lung counts are the mean count
    density of the used part times the whole lung volume, so that the excluded base is not
    simply dropped.
    """
    lung = structure_counts("lungs", counts, lungs, voxel_ml)
    liv = structure_counts("liver", counts, liver, voxel_ml)
    method = "spect-whole-lung"
    lung_counts = lung.counts
    used_volume = lung.volume_ml
    if lungs_used is not None:
        used = structure_counts("lungs used", counts, lungs_used, voxel_ml)
        if used.volume_ml <= 0:
            raise ValueError("no lung is left after the lung-base exclusion")
        lung_counts = used.counts_per_ml * lung.volume_ml
        used_volume = used.volume_ml
        method = "spect-lung-base-excluded"
    total = lung_counts + liv.counts
    if total <= 0:
        raise ValueError("no counts in lungs and liver")
    return LungShunt(lung_counts / total, lung_counts, liv.counts, lung.volume_ml, used_volume,
                     lung.in_fov_fraction, method)


def tumour_to_normal_ratios(counts: np.ndarray, territory: np.ndarray, liver: np.ndarray,
                            tumours: dict[str, np.ndarray], voxel_ml: float) -> dict:
    """TNR of each tumour in a territory: counts/mL in the tumour part inside the territory
    over counts/mL in the territory's normal liver (territory minus all tumours)."""
    any_tumour = np.zeros_like(territory, dtype=bool)
    for mask in tumours.values():
        any_tumour |= mask
    normal = territory & liver & ~any_tumour
    normal_counts = structure_counts("normal", counts, normal, voxel_ml)
    out = {"normal": normal_counts.as_dict(), "tumours": {}}
    for name, mask in tumours.items():
        inside = mask & territory
        if not inside.any():
            continue
        t = structure_counts(name, counts, inside, voxel_ml)
        out["tumours"][name] = {**t.as_dict(),
                                "tnr": t.counts_per_ml / normal_counts.counts_per_ml}
    return out
