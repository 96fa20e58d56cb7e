"""Every physical constant and data table against its cited source, computed independently.

ICRP Publication 107 numbers are read from the PyPI package ``icrp107-database`` (a test
dependency; the tests that need it are skipped without it). Energy per unit activity, fully
decayed, is computed here by its definition, independently of ``physics.decay``:

    E [J/GBq] = 1e9 Bq × (T½ [s] / ln 2) × Ē [MeV] × 1.602176634e-13 J/MeV
"""

import json
import math
from importlib import resources

import numpy as np
import pytest

from tareplanner import catalogue
from tareplanner.physics.decay import energy_per_activity_j_per_gbq

J_PER_MEV = 1.602176634e-13          # CODATA 2018, exact


def cf_by_definition(half_life_h, mean_energy_mev):
    return 1e9 * half_life_h * 3600.0 / math.log(2.0) * mean_energy_mev * J_PER_MEV


def _nuclides_file():
    text = resources.files("tareplanner.data").joinpath("nuclides.json").read_text("utf-8")
    return json.loads(text)["nuclides"]


def _icrp107(nuclide):
    """Half-life (h) and energy per decay (MeV) of each emission type, from ICRP-107."""
    package = pytest.importorskip("icrp107_database")
    from pathlib import Path

    path = Path(package.__file__).parent / "icrp107" / f"{nuclide}.json"
    with open(path, "rb") as f:
        data = json.loads(json.load(f))
    half_life_h = data["half_life"] * {"h": 1.0, "d": 24.0}[data["time_unit"]]
    per_decay = {kind: sum(e * y for e, y in rows)
                 for kind, rows in data["emissions"].items() if kind != "b-spectra"}
    return half_life_h, per_decay, np.array(data["emissions"]["b-spectra"])


# --------------------------------------------------------------------------- by hand

def test_energy_per_activity_by_hand():
    """Bug caught: the energy per activity computed with T½ instead of the mean life
    T½/ln 2 (−31 %), or a wrong J/MeV.

    Y-90, 64.1 h, 0.9329 MeV: 64.1 × 3600 s / 0.693147 = 332 924 s;
    × 0.9329 MeV × 1.602177e-13 J/MeV × 1e9 = 49.760 J/GBq.
    Ho-166, 26.8 h, 0.6963 MeV (all electrons): 139 191 s × 0.6963 × 1.602177e-4 = 15.528.
    """
    assert energy_per_activity_j_per_gbq(64.1, 0.9329) == pytest.approx(49.760, abs=1e-3)
    assert energy_per_activity_j_per_gbq(26.8, 0.6963) == pytest.approx(15.528, abs=1e-3)


def test_adopted_cf_values_and_their_written_derivations():
    """Bug caught: a CF in nuclides.json changed or mislabelled without its derivation.

    Y-90 49.67 J/GBq = 64.1 h with 0.9313 MeV (the mean of ICRP-107's tabulated beta
    spectrum): 332 924 s × 0.9313 × 1.602177e-4 = 49.675 -> 49.67. Older MIRD practice
    49.38 J/GBq = 0.9267 MeV with 64.04 h: 49.383. TheraSphere IFU 50 Gy kg/GBq (rounded):
    0.7 % above. Ho-166 15.87 J/GBq: 60 Gy for 3.78 GBq/kg (60 / 15.87 = 3.7807).
    """
    y90, ho = catalogue.nuclide("Y-90"), catalogue.nuclide("Ho-166")
    assert y90.energy_per_activity_j_per_gbq == 49.67
    assert cf_by_definition(64.1, 0.9313) == pytest.approx(49.67, abs=0.01)
    assert cf_by_definition(64.04, 0.9267) == pytest.approx(49.38, abs=0.01)
    assert 50.0 / y90.energy_per_activity_j_per_gbq == pytest.approx(1.0066, abs=1e-4)
    assert ho.energy_per_activity_j_per_gbq == 15.87
    assert 60.0 / ho.energy_per_activity_j_per_gbq == pytest.approx(3.78, abs=0.001)
    sources = {n: _nuclides_file()[n]["energy_per_activity_j_per_gbq"]["source"]
               for n in ("Y-90", "Ho-166")}
    assert "0.9313" in sources["Y-90"] and "49.76" in sources["Y-90"]
    assert "15.53" in sources["Ho-166"] and "16.20" in sources["Ho-166"]


# --------------------------------------------------------------------------- ICRP-107

@pytest.mark.parametrize("nuclide", ["Y-90", "Ho-166"])
def test_half_life_and_mean_energies_match_icrp107(nuclide):
    """Bug caught: a half-life or mean energy in nuclides.json that is not the ICRP-107
    value its label cites (as 0.9267 MeV once was for Y-90; ICRP-107 gives 0.9329 MeV)."""
    half_life_h, per_decay, _ = _icrp107(nuclide)
    n = catalogue.nuclide(nuclide)
    entry = _nuclides_file()[nuclide]
    assert n.half_life_h == pytest.approx(half_life_h, rel=1e-4)
    assert n.mean_beta_energy_mev == pytest.approx(per_decay["beta-"], abs=1e-4)
    electrons = per_decay["beta-"] + per_decay["IE"] + per_decay["auger"]
    assert entry["mean_electron_energy_mev"]["value"] == pytest.approx(electrons, abs=1e-4)
    assert "ICRP Publication 107" in entry["half_life_h"]["source"]
    assert "ICRP Publication 107" in entry["mean_beta_energy_mev"]["source"]


def test_y90_cf_against_icrp107():
    """Bug caught: the adopted Y-90 CF drifting from what ICRP-107 supports. ICRP-107 mean
    beta energy per decay (0.9329 MeV) gives 49.76 J/GBq, 0.2 % above the adopted 49.67; the
    mean of its tabulated spectrum (0.9313 MeV) gives 49.67."""
    half_life_h, per_decay, spectrum = _icrp107("Y-90")
    e, p = spectrum[:, 0], spectrum[:, 1]
    spectrum_mean = np.trapezoid(e * p, e) / np.trapezoid(p, e)
    cf = catalogue.nuclide("Y-90").energy_per_activity_j_per_gbq
    assert cf_by_definition(half_life_h, per_decay["beta-"]) == pytest.approx(49.76, abs=0.01)
    assert cf_by_definition(half_life_h, spectrum_mean) == pytest.approx(cf, abs=0.01)
    assert cf / cf_by_definition(half_life_h, per_decay["beta-"]) == pytest.approx(0.998,
                                                                                    abs=5e-4)


def test_ho166_cf_lies_between_icrp107_electrons_and_electrons_plus_photons():
    """Bug caught: a Ho-166 CF outside what its decay data allow. ICRP-107 (26.8 h):
    betas 0.6650 MeV -> 14.83 J/GBq; all electrons 0.6963 -> 15.53; all electrons and
    photons 0.7264 -> 16.20. The adopted 15.87 J/GBq lies between the last two (electrons
    plus about half the photon energy, 0.7116 MeV), 2.2 % above electrons alone."""
    half_life_h, per_decay, _ = _icrp107("Ho-166")
    electrons = per_decay["beta-"] + per_decay["IE"] + per_decay["auger"]
    photons = per_decay["gamma"] + per_decay["X"]
    assert cf_by_definition(half_life_h, per_decay["beta-"]) == pytest.approx(14.83, abs=0.01)
    assert cf_by_definition(half_life_h, electrons) == pytest.approx(15.53, abs=0.01)
    assert cf_by_definition(half_life_h, electrons + photons) == pytest.approx(16.20, abs=0.01)
    cf = catalogue.nuclide("Ho-166").energy_per_activity_j_per_gbq
    absorbed_photon_fraction = (cf - cf_by_definition(half_life_h, electrons)) / \
        cf_by_definition(half_life_h, photons)
    assert absorbed_photon_fraction == pytest.approx(0.51, abs=0.01)


@pytest.mark.parametrize("nuclide", ["Y-90", "Ho-166", "Sr-89", "Re-188"])
def test_shipped_beta_spectra_are_icrp107(nuclide):
    """Bug caught: a beta spectrum in data/kernels/icrp107 (which sets the Ho-166 kernel's
    range scaling) that differs from ICRP-107."""
    _, _, spectrum = _icrp107(nuclide)
    text = resources.files("tareplanner.data").joinpath(
        "kernels", "icrp107", f"{nuclide}_beta_spectrum.csv").read_text("utf-8")
    rows = np.array([[float(v) for v in line.split(",")]
                     for line in text.splitlines()[2:] if line.strip()])
    np.testing.assert_array_equal(rows, spectrum)


# --------------------------------------------------------------------------- kernels

def test_graves_y90_point_kernel_geometry_and_energy():
    """Bug caught: a corrupted point-kernel file (shell masses or doses not of the stated
    geometry, or energy missing). Each shell's mass must be 4/3 π (r_o³ − r_i³) × 1 g/cm³
    and its dose energy / mass; the 120 shells to 1.2 cm hold 0.9299 MeV, 99.7 % of the
    ICRP-107 mean beta energy 0.9329 MeV (Y-90's CSDA range is 1.1 cm)."""
    text = resources.files("tareplanner.data").joinpath(
        "kernels", "graves2019", "90Y_beta_dpk_water_r0-1.2cm.csv").read_text("utf-8")
    t = np.array([[float(v) for v in line.split(",")]
                  for line in text.splitlines()[2:] if line.strip()])
    outer = t[:, 0]
    inner = np.concatenate([[0.0], outer[:-1]])
    np.testing.assert_allclose(t[:, 3], 4 / 3 * np.pi * (outer ** 3 - inner ** 3), rtol=1e-6)
    np.testing.assert_allclose(t[:, 4], t[:, 1] / t[:, 3], rtol=1e-6)
    assert t[:, 1].sum() == pytest.approx(0.9299, abs=1e-4)
    assert t[:, 1].sum() / 0.9329 == pytest.approx(0.997, abs=1e-3)


@pytest.mark.parametrize("size_mm", [2.21, 4.42, 6.0])
def test_lanconelli_y90_kernels_hold_the_icrp107_energy(size_mm):
    """Bug caught: reference S-values read with wrong units or voxel mass. Σ S × m over the
    11³ kernel (S in mGy/(MBq s) = 1e-9 Gy per decay; m = (size)³ × 1.04 g/cm³) must be the
    Y-90 energy per decay, 0.9329 MeV (ICRP-107), within 0.5 % (0.934–0.936 MeV)."""
    from tareplanner.kernel_data import lanconelli_voxel_s_values

    s = lanconelli_voxel_s_values(size_mm)
    mass_kg = (size_mm / 10) ** 3 * 1.04 / 1000
    energy_mev = (s * 1e-9 * mass_kg).sum() / J_PER_MEV
    assert energy_mev == pytest.approx(0.9329, rel=0.005)


# --------------------------------------------------------------------------- BED

def test_bed_parameters_are_the_cited_ones():
    """Bug caught: LQ parameters changed without their source (Cremonesi et al., Front Oncol
    2014;4:210, as cited in dosimetry/dose.py: tumour α/β 10 Gy, repair half-time
    1.5 h; normal liver α/β 2.5 Gy, 2.5 h)."""
    from tareplanner.dosimetry.dose import BED_PARAMETERS

    assert BED_PARAMETERS == {"tumour": {"alpha_beta_gy": 10.0, "repair_half_time_h": 1.5},
                              "normal": {"alpha_beta_gy": 2.5, "repair_half_time_h": 2.5}}


def test_bed_normal_liver_by_hand():
    """Bug caught: the decay and repair constants swapped in the BED's G factor, or the
    normal-tissue α/β not applied. Y-90 (64.1 h), normal liver α/β 2.5 Gy, T_rep 2.5 h,
    D = 40 Gy: λ = 0.693147/64.1 = 0.0108135 /h, μ = 0.693147/2.5 = 0.277259 /h,
    λ/(μ+λ) = 0.0375375; BED = 40 × (1 + 40 × 0.0375375 / 2.5) = 64.0240 Gy.
    Ho-166 (26.8 h), same tissue: λ = 0.0258637 /h, λ/(μ+λ) = 0.0853242,
    BED = 40 × (1 + 40 × 0.0853242 / 2.5) = 94.6075 Gy."""
    from tareplanner.physics.dvh import bed_gy

    assert float(bed_gy(40.0, 64.1, 2.5, 2.5)) == pytest.approx(64.0240, abs=1e-3)
    assert float(bed_gy(40.0, 26.8, 2.5, 2.5)) == pytest.approx(94.6075, abs=1e-3)


# --------------------------------------------------------------------------- HU to density

def _density(hu, curve=None):
    from tareplanner.density_curves import default_curve
    from tareplanner.physics.voxel_dose import density_from_hu

    return density_from_hu(np.asarray(hu, dtype=np.float32), curve or default_curve())


def test_default_density_curve_lung_convention():
    """Bug caught: lung density not (HU + 1000)/1000 g/mL (Kao et al., EJNMMI Res 2014;4:33)
    below water, or the floor misplaced. By hand: −1000 HU -> 0 -> floor 0.001; −750 ->
    0.25; −500 -> 0.5; −1 -> 0.999; 0 -> 1.0; below −1000 (−1024) the floor 0.001."""
    np.testing.assert_allclose(_density([-1024, -1000, -750, -500, -1, 0]),
                               [0.001, 0.001, 0.25, 0.5, 0.999, 1.0], atol=1e-6)


def test_default_density_curve_schneider_points_and_edges():
    """Bug caught: a point of the Schneider, Bortfeld and Schlegel 2000 relation (Phys Med
    Biol 2000;45:459, as tabulated by OpenGATE: 14 HU 1.03, 23 HU 1.031, 100 HU 1.1199,
    101 HU 1.0762, 1600 HU 1.9642, 3000 HU 2.8 g/mL) mistyped, or the curve extrapolated.
    Either side of each point by hand: 7 HU (halfway 0–14) 1.015; 60 HU
    1.031 + 37/77 × 0.0889 = 1.073718; 100.5 HU (mid-step) 1.09805; 1000 HU
    1.0762 + 899/1499 × 0.888 = 1.608763; 3500 HU 2.8 (constant beyond the last point)."""
    hu = [7, 14, 23, 60, 100, 100.5, 101, 1000, 1600, 3000, 3500]
    expected = [1.015, 1.03, 1.031, 1.073718, 1.1199, 1.09805, 1.0762, 1.608763, 1.9642, 2.8,
                2.8]
    np.testing.assert_allclose(_density(hu), expected, atol=2e-6)


def test_density_curve_file_names_its_sources():
    text = resources.files("tareplanner.data").joinpath("hu_density.json").read_text("utf-8")
    document = json.loads(text)
    assert "Kao" in document["source"] and "Schneider" in document["source"]
    assert document["minimum_density_g_per_ml"]["source"]


def _write_curve(tmp_path, points, **extra):
    document = {"schema": "tareplanner.hu-density/1", "name": "Site CT 120 kV",
                "source": "phantom calibration 2026", "points_hu_g_per_ml": points, **extra}
    path = tmp_path / "curve.json"
    path.write_text(json.dumps(document))
    return path


def test_site_density_curve_changes_lung_dose_and_is_recorded(tmp_path):
    """Bug caught: a site's density curve read but not used (or not recorded). A site curve
    through (−1000 HU, 0.25) and (0, 1.0) gives −750 HU -> 0.25 + 0.75 × 0.25 = 0.4375 g/mL,
    so the lung dose of the two-block phantom (409.60 Gy with 0.25 g/mL) becomes
    409.60 × 0.25 / 0.4375 = 234.06 Gy."""
    import SimpleITK as sitk

    from tareplanner.density_curves import read_curve
    from tareplanner.dosimetry.activity import predictive_activity
    from tareplanner.dosimetry.dose import dose_map
    from test_mutation_references import _two_block_phantom

    curve, info = read_curve(_write_curve(tmp_path, [[-1000, 0.25], [0, 1.0]]))
    ct, counts, structures, lung = _two_block_phantom()
    activity, _ = predictive_activity(counts, structures, {"p": 2.0}, 0.10, 0.05)
    dose, record = dose_map(activity, "Y-90", ct, lung, method="ldm", density_curve=curve,
                            density_curve_info=info)
    d = sitk.GetArrayFromImage(dose)
    np.testing.assert_allclose(d[1:-1, 1:-1, 1:5], 234.06, rtol=1e-4)
    assert record["density_curve"]["name"] == "Site CT 120 kV"
    assert record["density_curve"]["file"].endswith("curve.json")
    assert len(record["density_curve"]["sha256"]) == 64


@pytest.mark.parametrize("points, extra, field", [
    ([[0, 1.0], [-1000, 0.0]], {}, "points_hu_g_per_ml"),
    ([[0, 1.0]], {}, "points_hu_g_per_ml"),
    ([[-1000, -0.1], [0, 1.0]], {}, "points_hu_g_per_ml"),
    ([[-1000, 0.0], [0, 1.0]], {"schema": "other/1"}, "schema"),
    ([[-1000, 0.0], [0, 1.0]], {"minimum_density_g_per_ml": {"value": 0}},
     "minimum_density_g_per_ml"),
])
def test_bad_site_density_curves_are_refused(tmp_path, points, extra, field):
    from tareplanner.density_curves import read_curve
    from tareplanner.errors import TarePlannerInputError

    with pytest.raises(TarePlannerInputError, match=field):
        read_curve(_write_curve(tmp_path, points, **extra))


def test_dose_command_takes_a_density_curve():
    from tareplanner.cli.main import build_parser

    args = build_parser().parse_args(["dose", "--measurement", "m.json", "--plan", "p.json",
                                      "--out", "o", "--density-curve", "curve.json"])
    assert args.density_curve == "curve.json"
