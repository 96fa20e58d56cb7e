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


#: kernel spectra kept for reuse, keyed by the kernel's bytes and the transform shape (a dose
#: command convolves the planned, delivered and voxel-plan doses on one grid)
_SPECTRA: dict = {}
_SPECTRA_KEPT = 2


def fft_shape(shape, kernel_shape) -> tuple[int, ...]:
    """Transform size per axis for a 'same'-size convolution: the grid plus the kernel's
    longer half (enough that the circular convolution never wraps into the kept region),
    rounded up to a fast length (``scipy.fft.next_fast_len``: real for the last axis, the
    one ``rfftn`` halves, complex for the others, whose transforms are complex)."""
    out = []
    last = len(shape) - 1
    for axis, (n, k) in enumerate(zip(shape, kernel_shape)):
        s = (k - 1) // 2
        out.append(scipy.fft.next_fast_len(n + max(s, k - 1 - s), real=axis == last))
    return tuple(out)


def kernel_spectrum(kernel: np.ndarray, fshape) -> np.ndarray:
    """The real-FFT spectrum (``rfftn`` layout) of ``kernel`` wrapped around index 0 (its
    'same'-mode centre at 0), on a grid of ``fshape``; cached for the last few grids.

    Computed as a separable sum over the few kernel offsets per axis (DFT matrices of
    k × L), not as an FFT of a mostly-zero grid; exact to double precision before the
    cast to single. A kernel symmetric about its centre along every axis (the voxel kernels)
    has a real spectrum that is also symmetric (K[u] = K[L - u]) along every axis but the
    last: only its first half along those axes is computed and kept (a quarter of the
    spectrum in 3D, real), and :func:`multiply_spectrum` reads the other halves mirrored.
    """
    kernel = np.ascontiguousarray(kernel, dtype=np.float32)
    key = (kernel.shape, kernel.tobytes(), tuple(fshape))
    cached = _SPECTRA.get(key)
    if cached is not None:
        return cached
    symmetric = all(k % 2 == 1 for k in kernel.shape) and all(
        np.array_equal(kernel, np.flip(kernel, axis)) for axis in range(kernel.ndim))
    factors = []
    last = kernel.ndim - 1
    for axis, (k, length) in enumerate(zip(kernel.shape, fshape)):
        freqs = np.arange(length // 2 + 1 if (axis == last or symmetric) else length)
        offsets = np.arange(k) - (k - 1) // 2
        phase = -2.0 * np.pi * np.outer(freqs, offsets) / length
        factors.append(np.cos(phase) if symmetric else np.exp(1j * phase))
    # contract the kernel with one DFT matrix per axis, the last axis first (small arrays),
    # the first axis last (one matrix product giving the whole spectrum)
    t = kernel.astype(np.float64)
    if kernel.ndim > 1:  # a 1-D kernel's only axis is the first, contracted below
        t = np.tensordot(t, factors[-1], axes=([t.ndim - 1], [1]))
    for axis in range(kernel.ndim - 2, 0, -1):
        t = np.moveaxis(np.tensordot(t, factors[axis], axes=([axis], [1])), -1, axis)
    dtype = np.float32 if symmetric else np.complex64
    first = factors[0].astype(dtype)
    spectrum = (first @ t.astype(dtype).reshape(kernel.shape[0], -1)).reshape(
        (first.shape[0],) + t.shape[1:])
    while len(_SPECTRA) >= _SPECTRA_KEPT:
        _SPECTRA.pop(next(iter(_SPECTRA)))
    _SPECTRA[key] = spectrum
    return spectrum


def multiply_spectrum(spectrum: np.ndarray, kernel_part: np.ndarray, fshape) -> None:
    """``spectrum *= K`` in place, with ``kernel_part`` as :func:`kernel_spectrum` keeps it
    (whole, or the first half along every axis but the last, mirrored here by views)."""
    if kernel_part.shape == spectrum.shape:
        spectrum *= kernel_part
        return
    import itertools

    halved = range(spectrum.ndim - 1)
    choices = []
    for axis in halved:
        length, half = fshape[axis], kernel_part.shape[axis]
        choices.append(((slice(0, half), slice(0, half)),
                        (slice(half, length), slice(length - half, 0, -1))))
    for combination in itertools.product(*choices):
        target = tuple(c[0] for c in combination) + (slice(None),)
        source = tuple(c[1] for c in combination) + (slice(None),)
        if spectrum[target].size:
            spectrum[target] *= kernel_part[source]


def clear_spectrum_cache() -> None:
    """Forget the kept kernel spectra (benchmarks measure the first call)."""
    _SPECTRA.clear()


def convolve_fft(values: np.ndarray, kernel: np.ndarray, workers: int = -1) -> np.ndarray:
    """Zero-padded FFT convolution, 'same' size (as ``scipy.signal.fftconvolve``), in single
    precision over all cores: real FFTs of the grid padded by the kernel's half-width only
    (the kernel is wrapped around index 0, so the result starts at index 0), the kernel's
    spectrum computed directly and kept for the next call on the same grid. Returns a view
    of the transform's output (``values.shape``, not contiguous)."""
    values = values.astype(np.float32, copy=False)
    fshape = fft_shape(values.shape, kernel.shape)
    with scipy.fft.set_workers(workers):
        spectrum = scipy.fft.rfftn(values, fshape)
        multiply_spectrum(spectrum, kernel_spectrum(kernel, fshape), fshape)
        full = scipy.fft.irfftn(spectrum, fshape)
    del spectrum
    return full[tuple(slice(0, n) for n in values.shape)]


def kernel_dose_gy(activity_gbq: np.ndarray, energy_j_per_gbq: float,
                   density_g_per_ml: np.ndarray | float, voxel_ml: float,
                   fractions: np.ndarray, lung_mask: np.ndarray | None = None,
                   convolve=convolve_fft) -> np.ndarray:
    """Kernel-convolution dose with density scaling; LDM in ``lung_mask`` voxels.

    ``fractions`` must be on the same voxel grid as ``activity_gbq``; ``convolve`` can be
    replaced (e.g. by the GPU path).

    The constant factors (energy per GBq, 1 / voxel mass at unit density, a uniform density)
    multiply the activity once, before the convolution (which is linear), so that the grid is
    passed over as few times as possible: scale, convolve, clip at zero into the result,
    divide by a density map, add the lungs' own energy.
    """
    density_is_map = np.ndim(density_g_per_ml) > 0
    scale = float(energy_j_per_gbq) * 1000.0 / voxel_ml
    if not density_is_map:
        scale /= float(density_g_per_ml)
    energy = np.multiply(activity_gbq, np.float32(scale), dtype=np.float32)  # J/kg at rho
    if lung_mask is not None:
        np.copyto(energy, 0, where=lung_mask)  # lung voxels keep their own energy (below)
    convolved = convolve(energy, fractions)
    dose = np.empty(activity_gbq.shape, np.float32)
    np.maximum(convolved, 0, out=dose)  # FFT round-off below zero far from activity
    del convolved
    if lung_mask is not None:  # LDM in the lungs: their own energy, added where it was taken
        np.multiply(activity_gbq, np.float32(scale), out=energy, dtype=np.float32)
        np.add(dose, energy, out=dose, where=lung_mask)
    del energy
    if density_is_map:
        dose /= np.asarray(density_g_per_ml, dtype=np.float32)
    return dose
