"""The noise of a reconstructed image's region means, and how the partial-volume correction
carries it.

A reconstructed SPECT or PET image's noise is not the Poisson noise of the counts it holds:
the reconstruction spreads and correlates the noise of the projections, and its amount
depends on the iterations, the scatter and randoms estimates and the attenuation correction.
The noise of an iterative (EM/OSEM) reconstruction is approximately multiplicative: a voxel's
variance scales with the square of its mean, so its coefficient of variation is set by the
acquisition's counts, not by the voxel's own (Barrett, Wilson & Tsui, Phys Med Biol
1994;39:833-846). Sites measure it on the IEC body phantom as the "background variability":
the coefficient of variation of the means of regions of each sphere's size placed in the
phantom's uniform background (NEMA NU 2-2012 section 7 (image quality): circles on five slices; here
balls, the volumes a plan's structures are).

Model: the relative standard deviation of a region's mean is

    u(V) = a * V^(-b) * sqrt(N_phantom / N_image)

with a and b fitted to the phantom's six sizes (least squares on log u against log V), V the
region's volume in mL and N the acquisition's counts (the image totals): the multiplicative
law above, with the relative noise of a region falling as the counts rise. Beyond the
largest sphere (V_max) the relative SD falls as V^(-1/2) from u(V_max): a region much larger
than the noise's correlation length (about the resolution) averages independent patches, so
its variance falls as 1/V (the fitted exponent, about 0.2-0.4 over the spheres where the
noise is correlated, would overstate a liver's noise several-fold). The regions'
noise is taken as independent, and the partial-volume correction (GTM) carries it as a
linear map: corrected = W^-1 measured, so Cov(corrected) = W^-1 diag(sd^2) W^-T (law of
propagation of uncertainty, JCGM 100:2008, 5.1.2 in matrix form).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


#: the relative SD's fall with volume beyond the largest sphere: independent patches
LARGE_REGION_EXPONENT = 0.5


@dataclass(frozen=True)
class RoiNoiseModel:
    """u(V) = coefficient * V^(-exponent) * sqrt(reference_total / total) up to the largest
    volume measured, u(V_max) (V / V_max)^(-1/2) beyond it."""

    coefficient: float          # relative SD of a 1 mL region at the phantom's counts
    exponent: float
    reference_total: float      # the phantom image's total (image units x voxels)
    volume_range_ml: tuple[float, float]

    def relative_sd(self, volume_ml, total: float) -> np.ndarray:
        """Relative SD of the mean of regions of ``volume_ml`` in an image whose total is
        ``total`` (the same units as ``reference_total``)."""
        v = np.asarray(volume_ml, dtype=np.float64)
        if not (math.isfinite(total) and total > 0):
            raise ValueError(f"total: got {total!r}; allowed: a finite number > 0")
        if np.any(~np.isfinite(v)) or np.any(v <= 0):
            raise ValueError(f"volume_ml: got {volume_ml!r}; allowed: finite volumes > 0")
        largest = self.volume_range_ml[1]
        within = np.minimum(v, largest)
        beyond = np.maximum(v / largest, 1.0) ** (-LARGE_REGION_EXPONENT)
        return (self.coefficient * within ** (-self.exponent) * beyond
                * math.sqrt(self.reference_total / total))


def fit_roi_noise(volumes_ml, relative_sds) -> tuple[float, float]:
    """(a, b) of u = a V^-b: the straight line through (log V, log u) by least squares
    (numpy.polyfit). Needs two or more sizes with a positive relative SD."""
    v = np.asarray(volumes_ml, dtype=np.float64)
    u = np.asarray(relative_sds, dtype=np.float64)
    ok = np.isfinite(v) & np.isfinite(u) & (v > 0) & (u > 0)
    if ok.sum() < 2:
        raise ValueError(f"relative_sds: got {ok.sum()} usable sizes; allowed: two or more "
                         "sizes with a finite relative SD > 0")
    slope, intercept = np.polyfit(np.log(v[ok]), np.log(u[ok]), 1)
    return float(math.exp(intercept)), float(-slope)


def coefficient_of_variation(means) -> float:
    """Sample standard deviation (n - 1) of the region means over their mean."""
    m = np.asarray(means, dtype=np.float64)
    if m.size < 2 or not np.all(np.isfinite(m)):
        raise ValueError(f"means: got {m.size} values; allowed: two or more finite means")
    centre = float(m.mean())
    if centre <= 0:
        raise ValueError(f"means: mean {centre:g}; allowed: a positive background")
    return float(m.std(ddof=1)) / centre


def gtm_covariance(w, measured_sd) -> np.ndarray:
    """Covariance of the GTM-corrected means, W^-1 diag(sd^2) W^-T, for independent noise
    ``measured_sd`` (absolute, the measured means' units) on the measured means. Regions
    with no voxel (an all-zero column of ``w``) or a NaN SD get NaN rows and columns."""
    w = np.asarray(w, dtype=np.float64)
    sd = np.asarray(measured_sd, dtype=np.float64)
    n = w.shape[0]
    if w.shape != (n, n) or sd.shape != (n,):
        raise ValueError(f"w, measured_sd: got shapes {w.shape} and {sd.shape}; allowed: "
                         "(R, R) and (R,)")
    used = np.isfinite(sd) & (np.abs(w).sum(axis=0) > 0)
    out = np.full((n, n), np.nan)
    if not used.any():
        return out
    inverse = np.linalg.pinv(w[np.ix_(used, used)])
    out[np.ix_(used, used)] = (inverse * sd[used] ** 2) @ inverse.T
    return out


def ratio_relative_sd(means, covariance, i: int, j: int) -> float:
    """Relative SD of means[i] / means[j] (first-order, with their covariance)."""
    ci, cj = float(means[i]), float(means[j])
    if not (ci > 0 and cj > 0):
        return float("nan")
    var = (covariance[i, i] / ci ** 2 + covariance[j, j] / cj ** 2
           - 2.0 * covariance[i, j] / (ci * cj))
    return math.sqrt(max(float(var), 0.0))


def linear_sd(gradient, covariance) -> float:
    """SD of a function whose gradient with respect to the means is ``gradient``:
    sqrt(g^T C g), over the regions with a finite covariance (the others have no weight)."""
    g = np.asarray(gradient, dtype=np.float64)
    c = np.asarray(covariance, dtype=np.float64)
    used = np.isfinite(np.diag(c)) & (g != 0)
    if not used.any():
        return 0.0
    sub = c[np.ix_(used, used)]
    return math.sqrt(max(float(g[used] @ sub @ g[used]), 0.0))
