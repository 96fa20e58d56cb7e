"""Voxel absorbed dose: local deposition (LDM) and kernel convolution with density scaling.

All activities are the activity that decays in place to completion (microspheres do not
move): the energy released in a voxel is A [GBq] × CF [J/GBq].

- LDM: D = A · CF / m, with m = ρ · V.
- Kernel: the energy of every non-lung voxel is spread by the normalised voxel kernel K
  (fractions of the energy deposited at each offset, Σ K = 1, computed in soft tissue) with an
  FFT convolution; dose = energy / local mass (density scaling: transport as in soft tissue,
  dose to the local mass). Lung voxels deposit their own energy locally (LDM with lung
  density), as the soft-tissue kernel does not hold in lung.

References: Dieudonné et al., J Nucl Med 2011;52:1930; EANM 2022 dosimetry guidance (LDM and
kernel convolution for Y-90 microspheres); Pasciak et al., Front Oncol 2014;4:121 (LDM).
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from .kernels import VoxelKernel

#: Bilinear CT-number to mass-density calibration (typical values; sites may replace it):
#: air to water ρ = 1 + HU/1000; above water ρ = 1 + 0.00055·HU (bone 1000 HU -> 1.55 g/mL).
HU_TO_DENSITY_SLOPE_ABOVE_WATER = 0.00055


def density_from_hu(hu: np.ndarray) -> np.ndarray:
    """Mass density (g/mL) from CT numbers, bilinear (see module constants)."""
    hu = np.asarray(hu, dtype=np.float32)
    below = 1.0 + hu / 1000.0
    above = 1.0 + HU_TO_DENSITY_SLOPE_ABOVE_WATER * hu
    return np.clip(np.where(hu <= 0, below, above), 0.001, None).astype(np.float32)


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
