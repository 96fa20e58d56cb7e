"""Voxel absorbed dose: local deposition (LDM) and kernel convolution with density scaling.

All activities are the activity that decays in place to completion (microspheres do not
move): the energy released in a voxel is A [GBq] × CF [J/GBq].

- LDM: D = A · CF / m, with m = ρ · V.
- Kernel: the energy of every non-lung voxel is spread by the normalised voxel kernel K
  (fractions of the energy deposited at each offset, Σ K = 1, computed in soft tissue) with an
  FFT convolution; dose = energy / local mass (density scaling: transport as in soft tissue,
  dose to the local mass). Lung voxels deposit their own energy locally (LDM with lung
  density), as the soft-tissue kernel does not hold in lung.
- Density from the CT: a piecewise-linear HU-to-mass-density calibration (``HuDensityCurve``;
  the packaged default and its sources are in ``tareplanner/data/hu_density.json``, a site can
  supply its own scanner's curve).

References: Dieudonné et al., J Nucl Med 2011;52:1930; EANM 2022 dosimetry guidance (LDM and
kernel convolution for Y-90 microspheres); Pasciak et al., Front Oncol 2014;4:121 (LDM).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft

from .kernels import VoxelKernel


@dataclass(frozen=True)
class HuDensityCurve:
    """A CT-number to mass-density calibration: piecewise linear through its points
    (``hu`` strictly increasing), constant beyond the first and last point, never below
    ``minimum_g_per_ml`` (a floor that keeps masses positive). The packaged default and site
    files are read by ``tareplanner.density_curves``."""

    hu: tuple[float, ...]
    density_g_per_ml: tuple[float, ...]
    minimum_g_per_ml: float
    name: str
    source: str

    def __post_init__(self):
        hu = np.asarray(self.hu, dtype=float)
        rho = np.asarray(self.density_g_per_ml, dtype=float)
        if hu.ndim != 1 or hu.size < 2 or hu.shape != rho.shape:
            raise ValueError("a density curve needs at least two (HU, density) points")
        if not np.all(np.isfinite(hu)) or not np.all(np.diff(hu) > 0):
            raise ValueError("the HU values of a density curve must increase strictly")
        if not np.all(np.isfinite(rho)) or np.any(rho < 0):
            raise ValueError("the densities of a density curve must be finite and >= 0")
        if not self.minimum_g_per_ml > 0:
            raise ValueError("minimum_g_per_ml must be > 0")


def density_from_hu(hu: np.ndarray, curve: HuDensityCurve) -> np.ndarray:
    """Mass density (g/mL) from CT numbers with the calibration ``curve``."""
    hu = np.asarray(hu, dtype=np.float32)
    rho = np.interp(hu, np.asarray(curve.hu, dtype=np.float64),
                    np.asarray(curve.density_g_per_ml, dtype=np.float64))
    return np.maximum(rho, curve.minimum_g_per_ml).astype(np.float32)


def ldm_dose_gy(activity_gbq: np.ndarray, energy_j_per_gbq: float,
                density_g_per_ml: np.ndarray | float, voxel_ml: float) -> np.ndarray:
    """Local deposition: D = A · CF / (ρ · V)."""
    mass_kg = np.asarray(density_g_per_ml, dtype=np.float32) * np.float32(voxel_ml / 1000.0)
    return (activity_gbq * np.float32(energy_j_per_gbq) / mass_kg).astype(np.float32)


def energy_fractions(kernel: VoxelKernel) -> np.ndarray:
    """The kernel as fractions of the energy per decay deposited at each offset (Σ = 1)."""
    mass = float(np.prod(kernel.spacing_mm)) / 1000.0 * kernel.density_g_per_cm3
    deposited = kernel.values_gy_per_decay * mass
    return (deposited / deposited.sum()).astype(np.float32)


def convolve_fft(values: np.ndarray, kernel: np.ndarray, workers: int = -1) -> np.ndarray:
    """Zero-padded FFT convolution, 'same' size (as ``scipy.signal.fftconvolve``), in single
    precision over all cores, written to keep few grid-sized arrays alive at once."""
    values = values.astype(np.float32, copy=False)
    shape = [n + k - 1 for n, k in zip(values.shape, kernel.shape)]
    fshape = [scipy.fft.next_fast_len(s, real=True) for s in shape]
    with scipy.fft.set_workers(workers):
        spectrum = scipy.fft.rfftn(values, fshape)
        spectrum *= scipy.fft.rfftn(kernel.astype(np.float32, copy=False), fshape)
        full = scipy.fft.irfftn(spectrum, fshape)
    del spectrum
    start = [(k - 1) // 2 for k in kernel.shape]
    return full[tuple(slice(b, b + n) for b, n in zip(start, values.shape))]


def kernel_dose_gy(activity_gbq: np.ndarray, energy_j_per_gbq: float,
                   density_g_per_ml: np.ndarray | float, voxel_ml: float,
                   fractions: np.ndarray, lung_mask: np.ndarray | None = None,
                   convolve=convolve_fft) -> np.ndarray:
    """Kernel-convolution dose with density scaling; LDM in ``lung_mask`` voxels.

    ``fractions`` must be on the same voxel grid as ``activity_gbq``; ``convolve`` can be
    replaced (e.g. by the GPU path).
    """
    energy = activity_gbq.astype(np.float32) * np.float32(energy_j_per_gbq)
    local = None
    if lung_mask is not None:
        local = energy[lung_mask]          # lung voxels keep their own energy (LDM)
        energy[lung_mask] = 0
    dose = convolve(energy, fractions)
    del energy
    if local is not None:
        dose[lung_mask] += local
    np.maximum(dose, 0, out=dose)  # FFT round-off below zero far from activity
    dose /= np.asarray(density_g_per_ml, dtype=np.float32)
    dose *= np.float32(1000.0 / voxel_ml)  # energy / (rho V): J / kg
    return np.ascontiguousarray(dose, dtype=np.float32)
