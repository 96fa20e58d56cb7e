"""Lung shunt fraction (LSF) from planar scintigraphy.

Reference: the geometric mean of anterior and posterior counts corrects, to first order,
for depth-dependent attenuation (Sirtex and TheraSphere IFUs; EANM 2022 dosimetry
guidance): LSF = GM_lung / (GM_lung + GM_liver), GM = sqrt(anterior * posterior).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PlanarLsf:
    lung_geometric_mean_counts: float
    liver_geometric_mean_counts: float
    lung_shunt_fraction: float
    method: str = "planar-geometric-mean"


def lsf_planar_geometric_mean(lung_anterior_counts: float, lung_posterior_counts: float,
                              liver_anterior_counts: float, liver_posterior_counts: float,
                              ) -> PlanarLsf:
    """LSF from background-corrected anterior/posterior ROI counts of lungs and liver."""
    values = {"lung_anterior_counts": lung_anterior_counts,
              "lung_posterior_counts": lung_posterior_counts,
              "liver_anterior_counts": liver_anterior_counts,
              "liver_posterior_counts": liver_posterior_counts}
    for name, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name}: got {value!r}; allowed: a finite number >= 0")
    # sqrt(a) * sqrt(b), not sqrt(a * b): the product of two counts near 1e308 overflows
    gm_lung = math.sqrt(lung_anterior_counts) * math.sqrt(lung_posterior_counts)
    gm_liver = math.sqrt(liver_anterior_counts) * math.sqrt(liver_posterior_counts)
    if gm_lung + gm_liver <= 0:
        raise ValueError("lung and liver counts are all zero; LSF is undefined")
    return PlanarLsf(gm_lung, gm_liver, gm_lung / (gm_lung + gm_liver) if gm_lung < gm_liver
                     else 1.0 / (1.0 + gm_liver / gm_lung))


#: an LSF above this is more likely lung and liver counts swapped than a shunt: it would
#: send most of the activity to the lungs (every product's LSF cut-off is far below:
#: SIR-Spheres 20 %, TheraSphere by lung dose, EANM 2022)
SWAPPED_COUNTS_LSF = 0.5


def swapped_counts_warning(result: PlanarLsf) -> dict | None:
    """A warning when the LSF is above :data:`SWAPPED_COUNTS_LSF` (50 %): the lung and liver
    counts are likely swapped; states the LSF with them swapped."""
    if not result.lung_shunt_fraction > SWAPPED_COUNTS_LSF:
        return None
    swapped = 1.0 - result.lung_shunt_fraction
    return {"code": "lsf-above-50-percent",
            "message": f"LSF {result.lung_shunt_fraction:.2%} is above "
                       f"{SWAPPED_COUNTS_LSF:.0%}: most of the activity would reach the lungs; "
                       f"the lung and liver counts are likely swapped (swapped, the LSF is "
                       f"{swapped:.2%}); check which ROI is which before using it"}
