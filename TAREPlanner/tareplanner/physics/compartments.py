"""Compartment models of absorbed dose per unit administered activity.

All doses are mean absorbed doses, fully decayed, local energy deposition.

Single compartment (MIRD):
    D = CF * A * (1 - LSF) * (1 - R) / M_perfused
Partition / multi-compartment (Ho et al., Eur J Nucl Med 1996;23:947; MIRDy90,
J Nucl Med 2024;65(5):794), one position with normal liver N and tumours T_i of
tumour-to-normal ratio r_i:
    D_N  = CF * A * (1 - LSF) * (1 - R) / (M_N + sum_i r_i * M_Ti)
    D_Ti = r_i * D_N
Lung:
    D_L = CF * LSF * (1 - R) * sum(A) / M_lung

CF is the energy released per unit activity (J/GBq = Gy*kg/GBq), LSF the lung shunt
fraction, R the residual fraction left in the vial and lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

SINGLE_COMPARTMENT = "single-compartment"
PARTITION = "partition"
DOSE_MODELS = (SINGLE_COMPARTMENT, PARTITION)


@dataclass(frozen=True)
class DosePerActivity:
    """Mean absorbed dose per GBq administered at one injection position, in Gy/GBq."""

    normal_gy_per_gbq: float
    perfused_gy_per_gbq: float
    tumour_gy_per_gbq: tuple[float, ...]


def liver_energy_fraction(lung_shunt_fraction: float, residual_fraction: float) -> float:
    """Fraction of the administered activity that stays in the liver: (1 - LSF)(1 - R)."""
    return (1.0 - lung_shunt_fraction) * (1.0 - residual_fraction)


def dose_per_activity(model: str, energy_j_per_gbq: float, lung_shunt_fraction: float,
                      residual_fraction: float, normal_mass_kg: float,
                      tumour_masses_kg: Sequence[float],
                      tumour_to_normal_ratios: Sequence[float] | None) -> DosePerActivity:
    """Dose per GBq to perfused normal liver, whole perfused volume and each tumour.

    In the single-compartment model every part of the perfused volume receives the
    same dose, whatever the TNRs; in the partition model tumour i receives r_i times
    the normal-liver dose.
    """
    if model not in DOSE_MODELS:
        raise ValueError(f"model must be one of {DOSE_MODELS}, got {model!r}")
    if not normal_mass_kg > 0:
        raise ValueError(f"normal_mass_kg must be > 0, got {normal_mass_kg!r}")
    e = energy_j_per_gbq * liver_energy_fraction(lung_shunt_fraction, residual_fraction)
    perfused_mass_kg = normal_mass_kg + sum(tumour_masses_kg)
    perfused = e / perfused_mass_kg
    if model == SINGLE_COMPARTMENT:
        return DosePerActivity(perfused, perfused, tuple(perfused for _ in tumour_masses_kg))
    if tumour_to_normal_ratios is None or len(tumour_to_normal_ratios) != len(tumour_masses_kg):
        raise ValueError("the partition model needs one TNR per tumour")
    if any(not r > 0 for r in tumour_to_normal_ratios):
        raise ValueError("every TNR must be > 0")
    denominator = normal_mass_kg + sum(r * m for r, m in zip(tumour_to_normal_ratios,
                                                              tumour_masses_kg))
    normal = e / denominator
    return DosePerActivity(normal, perfused, tuple(r * normal for r in tumour_to_normal_ratios))


def lung_dose_per_activity(energy_j_per_gbq: float, lung_shunt_fraction: float,
                           residual_fraction: float, lung_mass_kg: float) -> float:
    """Lung dose per GBq administered (all positions together), in Gy/GBq."""
    if not lung_mass_kg > 0:
        raise ValueError(f"lung_mass_kg must be > 0, got {lung_mass_kg!r}")
    return energy_j_per_gbq * lung_shunt_fraction * (1.0 - residual_fraction) / lung_mass_kg
