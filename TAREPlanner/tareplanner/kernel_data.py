"""Reading the shipped kernel data files (point kernels and reference voxel S-values)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

from .errors import UnknownNameError
from .physics.kernels import MEV_PER_G_TO_GY, PointKernel, octant_to_kernel

POINT_KERNELS = {"Y-90": ("graves2019", "90Y_beta_dpk_water_r0-1.2cm.csv")}
LANCONELLI_SIZES_MM = (2.21, 2.33, 2.4, 3.0, 3.59, 3.9, 4.0, 4.42, 4.8, 5.0, 6.0, 6.8, 9.28)


def _kernels_dir():
    return resources.files("tareplanner.data").joinpath("kernels")


@lru_cache(maxsize=None)
def point_kernel(nuclide: str) -> PointKernel:
    """The beta dose point kernel of ``nuclide`` in water."""
    if nuclide not in POINT_KERNELS:
        raise UnknownNameError("kernel nuclide", nuclide, ", ".join(POINT_KERNELS))
    folder, name = POINT_KERNELS[nuclide]
    lines = _kernels_dir().joinpath(folder, name).read_text("utf-8").splitlines()[2:]
    table = np.array([[float(v) for v in line.split(",")] for line in lines if line.strip()])
    return PointKernel(outer_radius_cm=table[:, 0], energy_mev=table[:, 1], density_g_per_cm3=1.0)


def lanconelli_voxel_s_values(voxel_mm: float) -> np.ndarray:
    """Reference Y-90 soft-tissue voxel S-values (mGy/(MBq·s)), full 11³ kernel [k, j, i]."""
    label = f"{voxel_mm:g}"
    path = _kernels_dir().joinpath("lanconelli2012", f"90Y{label}mmsoft.txt")
    rows = [line.split() for line in path.read_text("utf-8").splitlines()[2:] if line.strip()]
    table = np.array([[float(v) for v in row[:4]] for row in rows])
    return octant_to_kernel(table[:, :3], table[:, 3])


__all__ = ["point_kernel", "lanconelli_voxel_s_values", "LANCONELLI_SIZES_MM", "MEV_PER_G_TO_GY"]
