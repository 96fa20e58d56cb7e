"""Reading the shipped kernel data files (point kernels and reference voxel S-values)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

from .errors import UnknownNameError
from .physics.kernels import (MEV_PER_G_TO_GY, BetaSpectrum, PointKernel, octant_to_kernel,
                              range_scaled_kernel)

#: nuclides with a beta kernel: Y-90 from its published DPK, the others by range scaling of it
POINT_KERNELS = {"Y-90": ("graves2019", "90Y_beta_dpk_water_r0-1.2cm.csv"),
                 "Ho-166": "range-scaled", "Sr-89": "range-scaled", "Re-188": "range-scaled"}
LANCONELLI_PREFIX = {"Y-90": "90Y", "Sr-89": "89Sr", "Re-188": "188Re"}
LANCONELLI_SIZES_MM = (2.21, 2.33, 2.4, 3.0, 3.59, 3.9, 4.0, 4.42, 4.8, 5.0, 6.0, 6.8, 9.28)


def _kernels_dir():
    return resources.files("tareplanner.data").joinpath("kernels")


@lru_cache(maxsize=None)
def point_kernel(nuclide: str) -> PointKernel:
    """The beta dose point kernel of ``nuclide`` in water."""
    if nuclide not in POINT_KERNELS:
        raise UnknownNameError("kernel nuclide", nuclide, ", ".join(POINT_KERNELS))
    if POINT_KERNELS[nuclide] == "range-scaled":
        return range_scaled_kernel(point_kernel("Y-90"), beta_spectrum("Y-90"),
                                   beta_spectrum(nuclide))
    folder, name = POINT_KERNELS[nuclide]
    lines = _kernels_dir().joinpath(folder, name).read_text("utf-8").splitlines()[2:]
    table = np.array([[float(v) for v in line.split(",")] for line in lines if line.strip()])
    return PointKernel(outer_radius_cm=table[:, 0], energy_mev=table[:, 1], density_g_per_cm3=1.0)


@lru_cache(maxsize=None)
def beta_spectrum(nuclide: str) -> BetaSpectrum:
    """ICRP-107 beta spectrum of ``nuclide``."""
    text = _kernels_dir().joinpath("icrp107", f"{nuclide}_beta_spectrum.csv").read_text("utf-8")
    rows = [line.split(",") for line in text.splitlines()[2:] if line.strip()]
    table = np.array([[float(a), float(b)] for a, b in rows])
    return BetaSpectrum(table[:, 0], table[:, 1])


def lanconelli_voxel_s_values(voxel_mm: float, nuclide: str = "Y-90") -> np.ndarray:
    """Reference soft-tissue voxel S-values (mGy/(MBq·s)), full 11³ kernel [k, j, i]."""
    label = f"{voxel_mm:g}"
    path = _kernels_dir().joinpath("lanconelli2012",
                                   f"{LANCONELLI_PREFIX[nuclide]}{label}mmsoft.txt")
    text = path.read_bytes().decode("utf-8", errors="replace")
    rows = [line.split() for line in text.splitlines()[2:] if line.strip()]
    table = np.array([[float(v) for v in row[:4]] for row in rows])
    return octant_to_kernel(table[:, :3], table[:, 3])


__all__ = ["point_kernel", "beta_spectrum", "lanconelli_voxel_s_values", "LANCONELLI_SIZES_MM",
           "MEV_PER_G_TO_GY"]
