"""Body-surface-area (BSA) method for SIR-Spheres.

References
----------
DuBois D, DuBois EF. A formula to estimate the approximate surface area if height and
weight be known. Arch Intern Med 1916;17:863-871: BSA = 0.007184 * W^0.425 * H_cm^0.725,
equivalently 0.20247 * H_m^0.725 * W^0.425.
Sirtex SIR-Spheres IFU: A [GBq] = BSA [m2] - 0.2 + V_tumour / V_liver, scaled by
V_perfused / V_liver for lobar or segmental treatment, reduced for lung shunt
(10-15 %: 20 %, 15-20 %: 40 %, > 20 %: do not treat).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


def dubois_bsa_m2(height_cm: float, weight_kg: float) -> float:
    """Body surface area by DuBois & DuBois (1916), in m^2."""
    if not height_cm > 0:
        raise ValueError(f"height_cm must be > 0, got {height_cm!r}")
    if not weight_kg > 0:
        raise ValueError(f"weight_kg must be > 0, got {weight_kg!r}")
    return 0.20247 * (height_cm / 100.0) ** 0.725 * weight_kg ** 0.425


@dataclass(frozen=True)
class LsfBand:
    """Activity factor applied when ``lsf_from <= LSF < lsf_below``."""

    lsf_from: float
    lsf_below: float
    activity_factor: float


def bsa_lsf_factor(lung_shunt_fraction: float, bands: Sequence[LsfBand]) -> float:
    """Manufacturer's activity reduction factor for a lung shunt fraction (1.0 if none applies)."""
    for band in bands:
        if band.lsf_from <= lung_shunt_fraction < band.lsf_below:
            return band.activity_factor
    return 1.0


@dataclass(frozen=True)
class BsaActivity:
    """Result of the BSA method for one injection position."""

    bsa_m2: float
    tumour_involvement: float
    whole_liver_activity_gbq: float
    perfused_fraction: float
    lsf_factor: float
    activity_gbq: float


def bsa_activity(bsa_m2: float, whole_liver_volume_ml: float, whole_liver_tumour_volume_ml: float,
                 perfused_volume_ml: float, lsf_factor: float = 1.0) -> BsaActivity:
    """SIR-Spheres BSA activity for one injection position, in GBq.

    ``whole_liver_volume_ml`` includes the tumours; tumour involvement is
    V_tumour / V_liver; the whole-liver activity is scaled by the perfused
    fraction V_perfused / V_liver and by the lung-shunt factor.
    """
    if not whole_liver_volume_ml > 0:
        raise ValueError("whole_liver_volume_ml must be > 0")
    if not 0 <= whole_liver_tumour_volume_ml <= whole_liver_volume_ml:
        raise ValueError("whole_liver_tumour_volume_ml must be within [0, whole_liver_volume_ml]")
    involvement = whole_liver_tumour_volume_ml / whole_liver_volume_ml
    whole = bsa_m2 - 0.2 + involvement
    fraction = perfused_volume_ml / whole_liver_volume_ml
    return BsaActivity(bsa_m2=bsa_m2, tumour_involvement=involvement,
                       whole_liver_activity_gbq=whole, perfused_fraction=fraction,
                       lsf_factor=lsf_factor, activity_gbq=whole * fraction * lsf_factor)
