"""Body-surface-area (BSA) method for SIR-Spheres.

References
----------
DuBois D, DuBois EF. A formula to estimate the approximate surface area if height and
weight be known. Arch Intern Med 1916;17:863-871: BSA = 0.007184 * W^0.425 * H_cm^0.725,
equivalently 0.20247 * H_m^0.725 * W^0.425.
Sirtex SIR-Spheres IFU: A [GBq] = BSA [m2] - 0.2 + V_tumour / V_liver, scaled by
V_perfused / V_liver for lobar or segmental treatment, reduced for lung shunt
(< 10 %: none, 10-15 %: 20 %, 15-20 %: 40 %, > 20 %: do not treat; each band holds its lower
edge and the last band holds 20 %, see :class:`LsfBand`).
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
    """Activity factor for a lung-shunt band.

    A band holds its lower edge ``lsf_from``; it holds its upper edge ``lsf_to`` only when
    ``to_inclusive`` (the last band of the Sirtex table, which ends at the 20 % cut-off:
    "> 20 %: do not treat", so 20 % itself is still in the 15-20 % band).
    """

    lsf_from: float
    lsf_to: float
    activity_factor: float
    to_inclusive: bool = False

    def holds(self, lung_shunt_fraction: float) -> bool:
        if self.to_inclusive:
            return self.lsf_from <= lung_shunt_fraction <= self.lsf_to
        return self.lsf_from <= lung_shunt_fraction < self.lsf_to


def check_lsf_bands(bands: Sequence[LsfBand]) -> None:
    """Raise ``ValueError`` unless the bands tile [0, top] without a gap or an overlap:
    ascending, the first from 0, each starting where the previous one stops, only the last
    holding its upper edge, factors in (0, 1]."""
    if not bands:
        raise ValueError("the table has no band")
    if bands[0].lsf_from != 0:
        raise ValueError(f"the first band starts at {bands[0].lsf_from:g}, not at 0")
    for i, band in enumerate(bands):
        if not band.lsf_to > band.lsf_from:
            raise ValueError(f"band {i} is empty ({band.lsf_from:g} to {band.lsf_to:g})")
        if not 0 < band.activity_factor <= 1:
            raise ValueError(f"band {i} has activity factor {band.activity_factor:g}, "
                             "outside (0, 1]")
        if band.to_inclusive != (i == len(bands) - 1):
            raise ValueError(f"band {i}: only the last band may hold its upper edge, "
                             "and it must")
        if i and band.lsf_from != bands[i - 1].lsf_to:
            raise ValueError(f"band {i} starts at {band.lsf_from:g} but band {i - 1} stops "
                             f"at {bands[i - 1].lsf_to:g} (gap or overlap)")


def bsa_lsf_factor(lung_shunt_fraction: float, bands: Sequence[LsfBand]) -> float:
    """Manufacturer's activity factor for a lung shunt fraction.

    Raises ``ValueError`` when no band holds the LSF (above the table: the BSA method is not
    defined there): there is no silent default.
    """
    for band in bands:
        if band.holds(lung_shunt_fraction):
            return band.activity_factor
    top = bands[-1].lsf_to if bands else 0.0
    raise ValueError(f"lung shunt fraction {lung_shunt_fraction!r} is outside the "
                     f"manufacturer's reduction table (0 to {top:g})")


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
