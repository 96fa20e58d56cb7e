"""Voxel S-values from a beta dose point kernel (DPK), for any voxel size.

The mean dose in target voxel T per decay uniformly distributed in source voxel S is

    S(n) = (1/V_S)(1/V_T) ∫_S ∫_T D(|x - y|) dx dy = ∫ D(|u|) w(u - n·Δ) du,

where w is the autocorrelation of the voxel box (a triangle of base 2Δ per axis). It is
evaluated on a fine grid (m sub-cells per voxel and axis): the point kernel sampled at the
sub-cell centres (the central sub-cell takes the energy inside its equal-volume sphere) is
convolved with the discrete triangle along each axis and read at multiples of m.

The DPK of a medium of density ρ (same composition as water) is D_ρ(r) = ρ² D_1(ρ r)
(ranges scale as 1/ρ). References: Graves et al., Med Phys 2019;46(11):5284 (Y-90 DPK);
Lanconelli et al., Phys Med Biol 2012;57:517 (voxel S-values used for validation);
Dieudonné et al., J Nucl Med 2011;52:1930 (voxel S-values from DPK by integration).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MEV_PER_G_TO_GY = 1.602176634e-13 * 1e3  # MeV/g -> J/kg


@dataclass(frozen=True)
class PointKernel:
    """Energy deposited per decay in spherical shells of a point source in a medium."""

    outer_radius_cm: np.ndarray       # shell outer radii (inner = previous, 0 for the first)
    energy_mev: np.ndarray            # energy deposited per decay in each shell
    density_g_per_cm3: float = 1.0

    @property
    def total_energy_mev(self) -> float:
        return float(self.energy_mev.sum())

    def scaled_to_density(self, density_g_per_cm3: float) -> "PointKernel":
        """The same kernel in a medium of another density (radii scale as 1/ρ)."""
        factor = self.density_g_per_cm3 / density_g_per_cm3
        return PointKernel(self.outer_radius_cm * factor, self.energy_mev, density_g_per_cm3)

    def cumulative_energy_mev(self, radius_cm):
        """Energy deposited within ``radius_cm`` (linear in r³ inside each shell)."""
        outer = self.outer_radius_cm
        inner = np.concatenate([[0.0], outer[:-1]])
        cum = np.concatenate([[0.0], np.cumsum(self.energy_mev)])
        r = np.asarray(radius_cm, dtype=float)
        idx = np.clip(np.searchsorted(outer, r), 0, len(outer) - 1)
        frac = np.clip((r ** 3 - inner[idx] ** 3) / (outer[idx] ** 3 - inner[idx] ** 3), 0, 1)
        out = cum[idx] + frac * self.energy_mev[idx]
        return np.where(r >= outer[-1], cum[-1], out)

    def dose_per_decay_mev_per_g(self, radius_cm):
        """Point-kernel dose at ``radius_cm`` (shell-mean dose, log-interpolated in r)."""
        outer = self.outer_radius_cm
        inner = np.concatenate([[0.0], outer[:-1]])
        shell_mass = 4.0 / 3.0 * np.pi * (outer ** 3 - inner ** 3) * self.density_g_per_cm3
        dose = self.energy_mev / shell_mass
        mid = np.cbrt((outer ** 3 + inner ** 3) / 2.0)
        r = np.asarray(radius_cm, dtype=float)
        log_dose = np.interp(np.log(np.maximum(r, mid[0])), np.log(mid),
                             np.log(np.maximum(dose, 1e-300)))
        out = np.exp(log_dose)
        return np.where(r > outer[-1], 0.0, out)


@dataclass(frozen=True)
class VoxelKernel:
    """Voxel S-values: dose per decay to voxel offset (k, j, i) from the centre voxel."""

    spacing_mm: tuple[float, float, float]   # (x, y, z)
    values_gy_per_decay: np.ndarray          # indexed [z, y, x], odd sizes, centred
    density_g_per_cm3: float

    def energy_mev(self) -> float:
        """Energy deposited in the kernel's voxels per decay (Σ S · m)."""
        mass_g = float(np.prod(self.spacing_mm)) / 1000.0 * self.density_g_per_cm3
        return float(self.values_gy_per_decay.sum() * mass_g / MEV_PER_G_TO_GY)

    def s_values_mgy_per_mbq_s(self) -> np.ndarray:
        return self.values_gy_per_decay * 1e6 * 1e3


def voxel_kernel(point: PointKernel, spacing_mm, density_g_per_cm3: float = 1.04, *,
                 radius_voxels: int | tuple[int, int, int] | None = None,
                 subdivisions: int = 8, normalise: bool = True) -> VoxelKernel:
    """Voxel S-values for voxels of ``spacing_mm`` (x, y, z) in a medium of given density.

    ``radius_voxels`` (default: enough to hold the kernel's range) sets the half-size; with
    ``normalise`` the S-values are scaled so that Σ S·m equals the kernel's total energy
    (the few per mille lost outside the truncated kernel are put back, as in an infinite
    medium).
    """
    kernel = point.scaled_to_density(density_g_per_cm3)
    spacing_cm = np.asarray(spacing_mm, dtype=float)[::-1] / 10.0       # (z, y, x)
    reach_cm = float(kernel.outer_radius_cm[-1])
    if radius_voxels is None:
        half = np.ceil(reach_cm / spacing_cm).astype(int)
    else:
        half = np.broadcast_to(np.asarray(radius_voxels, dtype=int), (3,))[::-1].copy()
    m = subdivisions
    h = spacing_cm / m
    # one octant of the fine point kernel (it is symmetric), mirrored to the full grid
    axes = [np.arange(0, (n + 1) * m + 1) * hh for n, hh in zip(half, h)]
    zz, yy, xx = np.meshgrid(*axes, indexing="ij", sparse=True)
    octant = kernel.dose_per_decay_mev_per_g(np.sqrt(zz ** 2 + yy ** 2 + xx ** 2))
    cell_cm3 = float(np.prod(h))
    r_eq = np.cbrt(3.0 * cell_cm3 / (4.0 * np.pi))
    octant[0, 0, 0] = float(kernel.cumulative_energy_mev(r_eq)) / (cell_cm3 * density_g_per_cm3)
    fine = octant
    for axis in range(3):
        mirrored = np.flip(np.delete(fine, 0, axis=axis), axis=axis)
        fine = np.concatenate([mirrored, fine], axis=axis)
    centre = tuple((n + 1) * m for n in half)
    triangle = np.concatenate([np.arange(1, m + 1), np.arange(m - 1, 0, -1)]).astype(float)
    triangle /= triangle.sum()
    # the triangle filter is needed only at the voxel centres (multiples of m): filter and
    # decimate one axis at a time
    for axis, (c, n) in enumerate(zip(centre, half)):
        index = c + m * np.arange(-n, n + 1)[:, None] + np.arange(-(m - 1), m)[None, :]
        taps = np.take(fine, index, axis=axis)            # axis -> (2n+1, 2m-1)
        fine = np.tensordot(taps, triangle, axes=([axis + 1], [0]))
    values = fine * MEV_PER_G_TO_GY
    result = VoxelKernel(tuple(float(s) for s in spacing_mm), values, density_g_per_cm3)
    if normalise:
        values = values * (kernel.total_energy_mev / result.energy_mev())
        result = VoxelKernel(result.spacing_mm, values, density_g_per_cm3)
    return result


def octant_to_kernel(offsets: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mirror a one-octant table (rows i, j, k >= 0) into a full centred kernel [k, j, i]."""
    n = int(offsets.max())
    full = np.zeros((2 * n + 1,) * 3)
    for (i, j, k), v in zip(offsets.astype(int), values):
        for si in {i, -i}:
            for sj in {j, -j}:
                for sk in {k, -k}:
                    full[sk + n, sj + n, si + n] = v
    return full


def csda_range_g_per_cm2(energy_mev):
    """Electron range in water-like media, Katz & Penfold, Rev Mod Phys 1952;24:28:
    R = 0.412 E^(1.265 - 0.0954 ln E) g/cm² (0.01-2.5 MeV), R = 0.530 E - 0.106 above."""
    e = np.asarray(energy_mev, dtype=float)
    low = 0.412 * np.maximum(e, 1e-9) ** (1.265 - 0.0954 * np.log(np.maximum(e, 1e-9)))
    return np.where(e <= 2.5, low, 0.530 * e - 0.106)


@dataclass(frozen=True)
class BetaSpectrum:
    energy_mev: np.ndarray
    density_per_mev: np.ndarray

    @property
    def mean_energy_mev(self) -> float:
        return float(np.trapezoid(self.density_per_mev * self.energy_mev, self.energy_mev)
                     / np.trapezoid(self.density_per_mev, self.energy_mev))

    @property
    def energy_weighted_range_g_per_cm2(self) -> float:
        """Mean CSDA range of the emitted electrons, weighted by their energy."""
        w = self.density_per_mev * self.energy_mev
        return float(np.trapezoid(w * csda_range_g_per_cm2(self.energy_mev), self.energy_mev)
                     / np.trapezoid(w, self.energy_mev))


def range_scaled_kernel(reference: PointKernel, reference_spectrum: BetaSpectrum,
                        target_spectrum: BetaSpectrum) -> PointKernel:
    """Point kernel of another beta emitter by range scaling of a reference kernel.

    Beta dose point kernels expressed against distance scaled by the emitter's range are
    nearly universal (Berger, MIRD Pamphlet 7, 1971; Cross et al., Health Phys 1992): with
    s = R_target / R_reference (energy-weighted mean CSDA ranges of the spectra), shell radii
    scale by s and the energy per decay by the ratio of the mean beta energies. Validated
    against Monte Carlo voxel S-values of Sr-89 and Re-188, which bracket Ho-166 (tests).
    """
    s = target_spectrum.energy_weighted_range_g_per_cm2 / \
        reference_spectrum.energy_weighted_range_g_per_cm2
    energy = target_spectrum.mean_energy_mev / reference_spectrum.mean_energy_mev
    return PointKernel(reference.outer_radius_cm * s, reference.energy_mev * energy,
                       reference.density_g_per_cm3)
