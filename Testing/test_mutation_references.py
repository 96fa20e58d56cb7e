"""Dose physics against hand calculations written out here, each test naming the bug it
catches. Every one of these bugs (a D_x rank off by one voxel, the CT lung density dropped,
(1 − R) dropped from the lung dose, ...) once passed the rest of the suite.

Definitions used:
- D_x: the minimum absorbed dose received by the hottest x % of the volume, i.e. the dose
  that at least x % of the volume receives (ICRU Report 83, J ICRU 2010;10(1): D_V%).
- V_x: the fraction of the volume receiving at least x Gy (ICRU Report 83).
- Lung dose (MIRD, TheraSphere / SIR-Spheres IFUs, with the residual left in vial and lines):
  D_L = A · LSF · (1 − R) · CF / m_lung, m_lung = ρ_lung · V_lung, with the CT lung density
  ρ = (HU + 1000) / 1000 g/mL (Kao et al., EJNMMI Res 2014;4:33).
- CF (Y-90) = 49.67 J/GBq (TvNG 2023 review; EANM 2022), the value in nuclides.json.
"""

import numpy as np
import pytest
import SimpleITK as sitk

from tareplanner.physics.compartments import lung_dose_per_activity
from tareplanner.physics.dvh import DoseIndices, cumulative_dvh, dose_indices
from tareplanner.physics.kernels import PointKernel, csda_range_g_per_cm2

CF_Y90 = 49.67  # J/GBq, cited above


# --------------------------------------------------------------------------- D_x and V_x

TEN_VOXELS_GY = np.array([7.0, 2.0, 10.0, 4.0, 1.0, 9.0, 3.0, 6.0, 8.0, 5.0])  # 1..10, shuffled


@pytest.mark.parametrize("weights", [None, np.full(10, 0.5)], ids=["whole", "weighted"])
def test_dx_of_ten_hand_made_voxels(weights):
    """Bug caught: a D_x rank off by one voxel (e.g. the 8th instead of the 7th hottest voxel
    for D70), in the whole-voxel path (order statistics) or the weighted path (cumulative
    weights); equal weights of 0.5 must give the same answers as whole voxels.

    By hand, voxels of 1..10 Gy (each 10 % of the volume):
    D70: the hottest 7 voxels are 4..10 Gy -> 4 Gy. D69.5: 6.95 voxels -> 7 voxels -> 4 Gy.
    D70.5: 7.05 voxels -> part of the 8th -> 3 Gy. D50: hottest 5 (6..10) -> 6 Gy.
    D90: 2 Gy. D2: 0.2 voxel, inside the hottest -> 10 Gy. D100: 1 Gy.
    """
    idx = dose_indices(TEN_VOXELS_GY, weights, voxel_ml=0.1,
                       d_percents=(2, 50, 69.5, 70, 70.5, 90, 100))
    assert idx.d_gy == {"D2": 10.0, "D50": 6.0, "D69.5": 4.0, "D70": 4.0, "D70.5": 3.0,
                        "D90": 2.0, "D100": 1.0}
    assert idx.median_gy == 6.0
    assert idx.volume_ml == pytest.approx(1.0 if weights is None else 0.5)
    assert idx.mean_gy == pytest.approx(5.5)          # (1 + ... + 10) / 10
    assert (idx.min_gy, idx.max_gy) == (1.0, 10.0)


def test_dx_with_partial_voxels_by_hand():
    """Bug caught: the weighted D_x reading the wrong cumulative-volume entry (off by one) or
    ignoring the occupancy weights.

    Doses 10, 8, 6, 4 Gy with occupancies 0.5, 1, 1, 0.5 (total 3 voxel volumes). Hottest
    first, the cumulative volume is 0.5, 1.5, 2.5, 3 -> 16.7 %, 50 %, 83.3 %, 100 %.
    D50 = 8 Gy (exactly the two hottest); D49.9 = 8 Gy; D50.1 = 6 Gy; D16 = 10 Gy;
    D17 = 8 Gy; D84 = 4 Gy. Mean = (5 + 8 + 6 + 2) / 3 = 7 Gy.
    """
    dose = np.array([4.0, 10.0, 6.0, 8.0])
    w = np.array([0.5, 0.5, 1.0, 1.0])
    idx = dose_indices(dose, w, voxel_ml=1.0, d_percents=(16, 17, 49.9, 50, 50.1, 84))
    assert idx.d_gy == {"D16": 10.0, "D17": 8.0, "D49.9": 8.0, "D50": 8.0, "D50.1": 6.0,
                        "D84": 4.0}
    assert idx.mean_gy == pytest.approx(7.0)
    assert idx.volume_ml == pytest.approx(3.0)


@pytest.mark.parametrize("weights", [None, np.full(10, 0.5)], ids=["whole", "weighted"])
def test_vx_edges_by_hand(weights):
    """Bug caught: V_x counting dose > x instead of dose >= x (a voxel at exactly x Gy
    receives at least x Gy).

    By hand, voxels of 1..10 Gy: V4 = 70 % (4..10 Gy); V3.999 = 70 %; V4.001 = 60 %;
    V10 = 10 %; V10.001 = 0 %; V1 = 100 %.
    """
    idx = dose_indices(TEN_VOXELS_GY, weights, voxel_ml=0.1,
                       v_thresholds_gy=(1, 3.999, 4, 4.001, 10, 10.001))
    expected = {"V1": 100.0, "V3.999": 70.0, "V4": 70.0, "V4.001": 60.0, "V10": 10.0,
                "V10.001": 0.0}
    assert idx.v_percent == pytest.approx(expected)


def test_cumulative_dvh_bins_by_hand():
    """Bug caught: a dose falling in the wrong bin (rounded up instead of down), which
    shifts the cumulative DVH by one bin, or a voxel at exactly an edge not counted there.

    Doses 0.5, 1.0, 1.5, 2.0 Gy, 1 Gy bins: at least 0 Gy: 100 %; at least 1 Gy: 75 %
    (1.0, 1.5, 2.0); at least 2 Gy: 25 %; at least 3 Gy: 0 %.
    """
    for weights in (None, np.ones(4) * 0.25):
        edges, volume = cumulative_dvh(np.array([0.5, 1.0, 1.5, 2.0], np.float32), weights,
                                       bin_gy=1.0)
        np.testing.assert_allclose(edges, [0, 1, 2, 3])
        np.testing.assert_allclose(volume, [100, 75, 25, 0])


def test_dose_indices_record_keys():
    """Bug caught: a key of the dose-index record renamed (the report and the schema read
    volume_ml, mean_gy, median_gy, min_gy, max_gy, then each D and V by its name)."""
    idx = DoseIndices(volume_ml=1.0, mean_gy=2.0, median_gy=3.0, min_gy=4.0, max_gy=5.0,
                      d_gy={"D70": 6.0}, v_percent={"V100": 7.0})
    assert idx.as_dict() == {"volume_ml": 1.0, "mean_gy": 2.0, "median_gy": 3.0,
                             "min_gy": 4.0, "max_gy": 5.0, "D70": 6.0, "V100": 7.0}


@pytest.mark.parametrize("weights", [None, np.ones(1), np.full(1, 0.4)],
                         ids=["whole", "ones", "partial"])
def test_one_voxel_structure_and_median_without_d50(weights):
    """Bug caught: a structure of a single voxel refused as empty; the median read from a
    D50 that was not asked for (KeyError, or another percentile). By hand: one voxel of 7
    Gy: every D, the median, min, max and mean are 7 Gy; V7 = 100 %, V7.5 = 0 %."""
    idx = dose_indices(np.array([7.0]), weights, voxel_ml=0.5, d_percents=(70,),
                       v_thresholds_gy=(7, 7.5))
    assert idx.d_gy == {"D70": 7.0} and idx.median_gy == 7.0
    assert (idx.min_gy, idx.max_gy, idx.mean_gy) == (7.0, 7.0, 7.0)
    assert idx.v_percent == {"V7": 100.0, "V7.5": 0.0}
    assert idx.volume_ml == pytest.approx(0.5 * (1.0 if weights is None else weights[0]))


def test_median_without_d50_by_hand():
    """Bug caught: the median taken at another percentile than 50 % when D50 is not among
    the asked D values. Voxels of 1..10 Gy: the hottest 5 are 6..10 Gy -> median 6 Gy."""
    for weights in (None, np.full(10, 0.5)):
        idx = dose_indices(TEN_VOXELS_GY, weights, voxel_ml=0.1, d_percents=(70,))
        assert idx.median_gy == 6.0 and idx.d_gy == {"D70": 4.0}


@pytest.mark.parametrize("weights", [None, np.zeros(3)], ids=["no voxel", "zero weights"])
def test_empty_structure_refused(weights):
    """Bug caught: a structure without voxels (or whose every occupancy is 0) given dose
    indices (NaN or an IndexError) instead of a clear refusal."""
    dose = np.zeros(0) if weights is None else np.ones(3)
    with pytest.raises(ValueError) as info:
        dose_indices(dose, weights, voxel_ml=1.0)
    assert str(info.value) == "the structure has no voxels"


@pytest.mark.parametrize("bin_gy", [0.0, -1.0, float("inf"), float("nan")])
def test_cumulative_dvh_refuses_a_bad_bin(bin_gy):
    """Bug caught: a zero, negative or infinite bin width accepted (a division by zero, an
    empty or reversed histogram)."""
    with pytest.raises(ValueError) as info:
        cumulative_dvh(np.ones(3), None, bin_gy)
    assert str(info.value) == f"bin_gy must be a finite width > 0 Gy, got {bin_gy!r}"


def test_cumulative_dvh_half_gray_bins_by_hand():
    """Bug caught: the bin width multiplied where it divides (edges, number of bins, bin of
    each dose): invisible with 1 Gy bins. Doses 0.2, 0.7, 1.2 Gy, 0.5 Gy bins: ceil(1.2 /
    0.5) + 1 = 4 bins, edges 0, 0.5, 1, 1.5, 2 Gy; at least 0: 100 %, 0.5: 66.67 %, 1:
    33.33 %, 1.5 and 2: 0 %."""
    edges, volume = cumulative_dvh(np.array([0.2, 0.7, 1.2], np.float32), None, bin_gy=0.5)
    np.testing.assert_allclose(edges, [0, 0.5, 1.0, 1.5, 2.0])
    np.testing.assert_allclose(volume, [100, 200 / 3, 100 / 3, 0, 0], rtol=1e-6)


def test_cumulative_dvh_weights_by_hand():
    """Bug caught: the occupancy weights ignored, the histogram's range taken from voxels
    outside the structure (weight 0), a structure of less than one whole voxel divided by 1
    instead of its volume, a structure without volume failing.

    Doses 1, 2, 5 Gy with weights 0.1, 0.3, 0 (the 5 Gy voxel is outside), 1 Gy bins: the
    range ends at 2 Gy: edges 0..3; at least 0 and 1 Gy: 100 %; 2 Gy: 0.3 / 0.4 = 75 %;
    3 Gy: 0 %. All weights 0: edges 0, 1 and 0 % everywhere."""
    dose = np.array([1.0, 2.0, 5.0], np.float32)
    edges, volume = cumulative_dvh(dose, np.array([0.1, 0.3, 0.0]), bin_gy=1.0)
    np.testing.assert_allclose(edges, [0, 1, 2, 3])
    np.testing.assert_allclose(volume, [100, 100, 75, 0])
    edges, volume = cumulative_dvh(dose, np.zeros(3), bin_gy=1.0)
    np.testing.assert_allclose(edges, [0, 1])
    np.testing.assert_allclose(volume, [0, 0])


def test_cumulative_dvh_outside_its_range():
    """Bug caught: a negative dose (a dose map that was not clipped at zero) or a dose
    above a given ``max_gy`` falling outside the histogram (an error, or bins beyond the
    edges) instead of into the first or last bin. Doses -1.5, 0.5, 3 Gy, max_gy 1, 1 Gy
    bins: n = 2, edges 0, 1, 2; the 3 Gy voxel counts in the last bin: at least 0 Gy
    100 %, 1 Gy 33.3 %, 2 Gy 33.3 %."""
    edges, volume = cumulative_dvh(np.array([-1.5, 0.5, 3.0], np.float32), None, 1.0,
                                   max_gy=1.0)
    np.testing.assert_allclose(edges, [0, 1, 2])
    np.testing.assert_allclose(volume, [100, 100 / 3, 100 / 3], rtol=1e-6)


# --------------------------------------------------------------------------- lung dose

def test_lung_dose_with_residual_by_hand():
    """Bug caught: (1 − R) dropped from the lung dose (the residual never reaches the
    patient). The suite's other lung tests use R = 0, where the bug is invisible.

    CF 49.67 J/GBq, LSF 0.10, R 0.20, 1 kg: 49.67 × 0.10 × 0.80 = 3.9736 Gy/GBq;
    3 GBq -> 11.9208 Gy. With 0.8 kg: 4.9670 Gy/GBq. At R = 0 the textbook 4.967 Gy/GBq.
    """
    assert lung_dose_per_activity(CF_Y90, 0.10, 0.20, 1.0) == pytest.approx(3.9736, abs=1e-9)
    assert 3 * lung_dose_per_activity(CF_Y90, 0.10, 0.20, 1.0) == pytest.approx(11.9208,
                                                                                abs=1e-9)
    assert lung_dose_per_activity(CF_Y90, 0.10, 0.20, 0.8) == pytest.approx(4.9670, abs=1e-9)
    assert lung_dose_per_activity(CF_Y90, 0.10, 0.0, 1.0) == pytest.approx(4.967, abs=1e-9)


def _two_block_phantom(lung_hu=-750.0, liver_hu=50.0):
    """CT and SPECT on one 4 mm grid (x 20, y 12, z 12 voxels): lungs for x < 10, liver
    (the territory of position "p") for x >= 10; uniform counts."""
    from tareplanner.dosimetry.structures import Structures

    shape = (12, 12, 20)                                   # z, y, x
    lung = np.zeros(shape, bool)
    lung[:, :, :10] = True
    liver = ~lung
    hu = np.where(lung, np.float32(lung_hu), np.float32(liver_hu)).astype(np.float32)
    ct = sitk.GetImageFromArray(hu)
    ct.SetSpacing((4.0, 4.0, 4.0))
    counts = sitk.GetImageFromArray(np.ones(shape, np.float32))
    counts.CopyInformation(ct)
    structures = Structures(ct, {"lungs": lung, "liver": liver},
                            {"lungs": "lung", "liver": "liver"}, {"p": liver})
    return ct, counts, structures, lung


@pytest.mark.parametrize("method", ["ldm", "kernel"])
def test_voxel_lung_dose_uses_ct_lung_density_and_residual(method):
    """Bugs caught: the CT lung density dropped from the voxel dose (lungs given the
    soft-tissue planning density: the lung dose falls about fourfold), (1 − R) dropped from
    the predictive lung activity, and a density floor above the lung density.

    Phantom: 1440 lung voxels of 0.064 mL at −750 HU -> ρ = (−750 + 1000)/1000 = 0.25 g/mL,
    lung mass 1440 × 0.064 mL × 0.25 g/mL = 23.04 g. A = 2 GBq, LSF 0.10, R 0.05:
    lung activity 2 × 0.10 × 0.95 = 0.19 GBq, uniform;
    D_L = 0.19 × 49.67 / 0.02304 kg = 409.60 Gy in every lung voxel (local deposition in
    lung, with both methods; with the kernel, lung voxels further than the Y-90 range
    (~11 mm) from the liver receive nothing else). Liver, LDM: 2 × 0.90 × 0.95 = 1.71 GBq
    over 1440 voxels at the 1.03 g/mL planning density:
    1.71 × 49.67 / (1440 × 0.064 × 1.03 g) = 894.77 Gy.
    """
    from tareplanner.dosimetry.activity import predictive_activity
    from tareplanner.dosimetry.dose import dose_map

    ct, counts, structures, lung = _two_block_phantom()
    activity, _ = predictive_activity(counts, structures, {"p": 2.0}, 0.10, 0.05)
    a = sitk.GetArrayFromImage(activity)
    assert a[lung].sum() == pytest.approx(0.19, rel=1e-5)
    assert a[~lung].sum() == pytest.approx(1.71, rel=1e-5)
    dose, info = dose_map(activity, "Y-90", ct, lung, method=method)
    d = sitk.GetArrayFromImage(dose)
    far_from_liver = d[1:-1, 1:-1, 1:5]                    # x = 1..4: >= 20 mm from x = 10
    np.testing.assert_allclose(far_from_liver, 409.60, rtol=1e-4)
    # the same number from the compartment formula with the CT lung mass
    assert 2.0 * lung_dose_per_activity(CF_Y90, 0.10, 0.05, 0.02304) == pytest.approx(
        409.60, rel=1e-4)
    if method == "ldm":
        np.testing.assert_allclose(d[1:-1, 1:-1, 12:-1], 894.77, rtol=1e-4)
    assert info["density_curve"]["file"].endswith("hu_density.json")


# --------------------------------------------------------------------------- kernels

def test_cumulative_point_kernel_energy_grows_with_volume_inside_a_shell():
    """Bug caught: the energy inside a radius interpolated linearly in r instead of in r³
    (a shell's dose is uniform, so its energy is proportional to the enclosed volume); it
    sets the energy of the central sub-cell of every voxel kernel.

    Shells 0–1 mm (0.8 MeV) and 1–2 mm (0.2 MeV): within 0.5 mm, 0.8 × (0.5/1)³ = 0.1 MeV;
    within 1.5 mm, 0.8 + 0.2 × (1.5³ − 1)/(2³ − 1) = 0.8 + 0.2 × 2.375/7 = 0.86786 MeV;
    at and beyond 2 mm all of it, 1.0 MeV.
    """
    k = PointKernel(np.array([0.1, 0.2]), np.array([0.8, 0.2]))
    np.testing.assert_allclose(k.cumulative_energy_mev(np.array([0.05, 0.15, 0.2, 0.3])),
                               [0.1, 0.8 + 0.2 * 2.375 / 7, 1.0, 1.0], rtol=1e-12)


def test_point_kernel_density_scaling_by_hand():
    """Bug caught: the density scaling of the point kernel inverted (ranges must shrink as
    1/ρ in a denser medium: D_ρ(r) = ρ² D_1(ρ r), Cross et al., Health Phys 1992).

    A shell 1–2 mm in water (0.2 MeV) keeps its energy at 0.5–1 mm in a medium of 2 g/cm³.
    Shell dose in water: 0.2 / (4/3 π (0.2³ − 0.1³) cm³ × 1 g/cm³) = 6.820926 MeV/g, read at
    the shell's mean radius ((0.2³ + 0.1³)/2)^(1/3) = 0.165096 cm; in the dense medium
    ρ² = 4 times that, 27.283705 MeV/g, at 0.082548 cm.
    """
    water = PointKernel(np.array([0.1, 0.2]), np.array([0.8, 0.2]), 1.0)
    dense = water.scaled_to_density(2.0)
    np.testing.assert_allclose(dense.outer_radius_cm, [0.05, 0.1])
    np.testing.assert_allclose(dense.energy_mev, [0.8, 0.2])
    assert float(water.dose_per_decay_mev_per_g(0.165096)) == pytest.approx(6.820926,
                                                                             rel=1e-4)
    assert float(dense.dose_per_decay_mev_per_g(0.082548)) == pytest.approx(27.283705,
                                                                             rel=1e-4)


def test_katz_penfold_branches_meet_at_2_5_mev():
    """Bug caught: the edge between the two Katz–Penfold branches moved or the wrong branch
    used on one side (Rev Mod Phys 1952;24:28: R = 0.412 E^(1.265 − 0.0954 ln E) g/cm² for
    0.01–2.5 MeV, R = 0.530 E − 0.106 above).

    By hand: E = 2.5 MeV, exponent 1.265 − 0.0954 × ln 2.5 (0.916291) = 1.177586,
    2.5^1.177586 = 2.941769 -> R = 0.412 × 2.941769 = 1.212009 g/cm² (low branch, edge
    included); E = 2.4999 (low branch): exponent 1.177590, R = 1.211956;
    E = 2.5001 (high branch): 0.530 × 2.5001 − 0.106 = 1.219053;
    E = 2.0: exponent 1.265 − 0.0954 × 0.693147 = 1.198874, 2^1.198874 = 2.295604 ->
    R = 0.945789 (the high branch would give 0.954).
    """
    r = csda_range_g_per_cm2(np.array([2.0, 2.4999, 2.5, 2.5001]))
    np.testing.assert_allclose(r, [0.945789, 1.211956, 1.212009, 1.219053], rtol=2e-6)


@pytest.mark.parametrize("method", ["ldm", "kernel"])
def test_activity_in_one_lung_voxel_stays_there(method):
    """Bug caught: lung voxels convolved with the soft-tissue kernel in the case-level dose
    (the kernel does not hold in lung: lungs are local deposition). In a uniform lung the
    bug is invisible; a single hot lung voxel shows it.

    All lung counts in one voxel (x = 3, 28 mm from the liver): its activity is
    2 × 0.10 × 0.95 = 0.19 GBq; dose = 0.19 × 49.67 / (0.25 g/mL × 0.064 mL) =
    0.19 × 49.67 / 1.6e-5 kg = 589 831 Gy; its lung neighbours receive nothing.
    """
    from tareplanner.dosimetry.activity import predictive_activity
    from tareplanner.dosimetry.dose import dose_map

    ct, _, structures, lung = _two_block_phantom()
    c = np.where(lung, 0.0, 1.0).astype(np.float32)
    c[6, 6, 3] = 1.0
    counts = sitk.GetImageFromArray(c)
    counts.CopyInformation(ct)
    activity, _ = predictive_activity(counts, structures, {"p": 2.0}, 0.10, 0.05)
    d = sitk.GetArrayFromImage(dose_map(activity, "Y-90", ct, lung, method=method)[0])
    assert d[6, 6, 3] == pytest.approx(589831.25, rel=1e-4)
    neighbours = d[5:8, 5:8, 2:5].ravel()
    assert np.all(np.delete(neighbours, 13) < 1e-3)


def test_soft_tissue_self_dose_matches_monte_carlo():
    """Bug caught: the case-level kernel built for the wrong medium (e.g. water, 1.00 g/cm³,
    instead of ICRU soft tissue, 1.04 g/cm³: the self-dose falls 3.5 % at 2.21 mm).

    Independent reference: Lanconelli et al. 2012 Monte Carlo Y-90 voxel S-values in soft
    tissue, 2.21 mm voxels: the fraction of a voxel's energy absorbed in itself is
    S_self / Σ S. A 1 MBq voxel in soft tissue (50 HU; planning density 1.03 g/mL) then
    receives D = 1e-3 GBq × 49.67 J/GBq × (S_self / Σ S) / (1.03 g/mL × 2.21³ mm³).
    """
    from tareplanner.dosimetry.dose import dose_map
    from tareplanner.kernel_data import lanconelli_voxel_s_values

    s = lanconelli_voxel_s_values(2.21)
    self_fraction = s[5, 5, 5] / s.sum()
    shape = (15, 15, 15)
    ct = sitk.GetImageFromArray(np.full(shape, 50.0, np.float32))
    ct.SetSpacing((2.21,) * 3)
    a = np.zeros(shape, np.float32)
    a[7, 7, 7] = 1e-3
    activity = sitk.GetImageFromArray(a)
    activity.CopyInformation(ct)
    dose, _ = dose_map(activity, "Y-90", ct, np.zeros(shape, bool), method="kernel")
    expected = 1e-3 * CF_Y90 * self_fraction / (1.03e-3 * 2.21 ** 3 / 1000)
    assert sitk.GetArrayFromImage(dose)[7, 7, 7] == pytest.approx(expected, rel=0.015)


def test_structure_bed_by_hand():
    """Bug caught: the physical half-life and the repair half-time swapped (or the tumour
    and normal-tissue LQ parameters mixed up) when the structure report computes BED.

    Uniform 40 Gy of Y-90 (T½ 64.1 h), λ = 0.0108135 /h. Normal tissue (liver, lungs;
    α/β 2.5 Gy, T_rep 2.5 h, μ = 0.277259 /h): λ/(μ+λ) = 0.0375375,
    BED = 40 (1 + 40 × 0.0375375 / 2.5) = 64.0240 Gy. Tumour (α/β 10 Gy, T_rep 1.5 h,
    μ = 0.462098 /h): λ/(μ+λ) = 0.0228659, BED = 40 (1 + 40 × 0.0228659 / 10) = 43.6585 Gy.
    """
    from tareplanner.dosimetry.dose import structure_report
    from tareplanner.dosimetry.structures import Structures

    ct, _, structures, lung = _two_block_phantom()
    tumour = np.zeros(lung.shape, bool)
    tumour[4:8, 4:8, 13:17] = True
    s = Structures(ct, {**structures.masks, "T": tumour},
                   {**structures.kinds, "T": "tumour"}, structures.territories)
    dose = sitk.GetImageFromArray(np.full(lung.shape, 40.0, np.float32))
    dose.CopyInformation(ct)
    report = structure_report(dose, s, nuclide="Y-90")
    assert report["liver"]["bed"]["mean_gy"] == pytest.approx(64.0240, abs=1e-3)
    assert report["lungs"]["bed"]["mean_gy"] == pytest.approx(64.0240, abs=1e-3)
    assert report["T"]["bed"]["mean_gy"] == pytest.approx(43.6585, abs=1e-3)
    assert report["T"]["bed"]["D70"] == pytest.approx(43.6585, abs=1e-3)
