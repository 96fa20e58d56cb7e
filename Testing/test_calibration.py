"""Camera calibration from the NEMA/IEC body phantom, the camera file, and the resolution's
uncertainty carried through the partial-volume correction.

Expected values come from outside the code under test: the sphere volume formula, the
Gaussian's variance, scipy.ndimage.gaussian_filter as the independent blur, the PSF and
concentrations the synthetic phantom was imaged with, the standard's geometry as published
(NEMA NU 2-2012: 10-37 mm spheres on a 114.4 mm circle)."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from scipy import ndimage

from tareplanner.cli.main import main
from tareplanner.imaging.calibration import calibrate
from tareplanner.imaging.iec_phantom import IecSpec, make_iec_phantom
from tareplanner.imaging.loaded import LoadedImage
from tareplanner.physics.partial_volume import PointSpread, blur, transfer_matrix
from tareplanner.physics.psf_fit import ball_occupancy

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def _loaded(phantom, units="counts", modality="NM"):
    return (LoadedImage(phantom["ct"], "CT", "HU", "ct.nii.gz", "0" * 64),
            LoadedImage(phantom["image"], modality, units, "image.nii.gz", "1" * 64))


def test_standard_geometry_matches_the_published_one():
    """Bug caught: a sphere diameter or the circle radius mistyped in the data file."""
    from tareplanner.imaging.iec_phantom import iec_data, sphere_diameters_mm
    assert sphere_diameters_mm() == (10.0, 13.0, 17.0, 22.0, 28.0, 37.0)  # NEMA NU 2-2012
    assert iec_data()["sphere_ring_radius_mm"]["value"] * 2 == pytest.approx(114.4)
    assert iec_data()["lung_insert_diameter_mm"]["value"] == 50.0


@pytest.mark.parametrize("spacing", [(2.0, 2.0, 2.0), (4.42, 3.0, 2.0)])
def test_ball_occupancy_holds_the_sphere_volume(spacing):
    """Bug caught: sub-voxel sampling that loses or doubles part of a sphere, or treats
    anisotropic voxels as cubes. Truth: 4/3 pi r^3."""
    r = 8.5
    occ = ball_occupancy((20, 20, 20), spacing, (9.3, 10.1, 9.7), r, supersample=6)
    assert occ.sum() * np.prod(spacing) == pytest.approx(4 / 3 * math.pi * r ** 3, rel=0.01)


def test_blur_on_anisotropic_voxels_is_isotropic_in_mm():
    """Bug caught: the PSF's sigma divided by the wrong axis's spacing (anisotropic SPECT
    voxels), which blurs more along one axis. Truth: a Gaussian's variance (FWHM/2.3548)^2
    along every axis, in mm."""
    spacing = (6.0, 3.0, 2.0)  # z, y, x
    shape = (61, 121, 181)
    point = np.zeros(shape)
    point[30, 60, 90] = 1.0
    out = blur(point, spacing, PointSpread.gaussian(18.0))
    sigma2 = (18.0 * FWHM_TO_SIGMA) ** 2
    for axis, s in enumerate(spacing):
        profile = out.sum(axis=tuple(a for a in range(3) if a != axis))
        x = (np.arange(shape[axis]) - shape[axis] // 2) * s
        assert (profile * x ** 2).sum() / profile.sum() == pytest.approx(sigma2, rel=0.03)


def test_transfer_matrix_with_uneven_occupancy_is_not_transposed():
    """Bug caught: W[i, j] built as the mean over region j of region i's image (the
    transpose), or occupancy fractions taken as 0/1. Truth built by hand with
    scipy.ndimage.gaussian_filter as the independent blur: W[i, j] = sum_v n_i[v] (G f_j)[v]
    / sum_v n_i[v], f_j = n_j / sum_k n_k."""
    rng = np.random.default_rng(7)
    shape = (6, 7, 8)
    spacing = (4.0, 3.0, 2.0)
    v = int(np.prod(shape))
    counts = np.zeros((v, 3))
    counts[:, 0] = rng.integers(0, 9, v)
    counts[: v // 3, 1] = rng.integers(0, 27, v // 3)
    counts[v // 2:, 2] = 27 - counts[v // 2:, 0]
    w = transfer_matrix(counts, shape, spacing, PointSpread.gaussian(9.0)).matrix
    fractions = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    expected = np.zeros((3, 3))
    sigma = [9.0 * FWHM_TO_SIGMA / s for s in spacing]
    for j in range(3):
        image = ndimage.gaussian_filter(fractions[:, j].reshape(shape), sigma,
                                        mode="constant").ravel()
        for i in range(3):
            expected[i, j] = (counts[:, i] * image).sum() / counts[:, i].sum()
    assert np.allclose(w, expected, rtol=1e-9, atol=1e-12)
    assert not np.allclose(w.T, expected, rtol=1e-3)


@pytest.mark.parametrize("fwhm", [10.0, 16.0])
def test_calibration_recovers_a_gaussian_resolution(fwhm):
    """Bug caught: a fit biased by the sphere model (diameters, positions found wrong), the
    calibration factor in the wrong unit, recovery measured against the wrong concentration.
    Truth: the FWHM and counts per MBq the phantom was imaged with."""
    ct, image = _loaded(make_iec_phantom(IecSpec(psf=PointSpread.gaussian(fwhm))))
    camera = calibrate(ct, image, nuclide="Tc-99m", modality="SPECT", sphere_kbq_ml=40.0,
                       background_kbq_ml=5.0)
    assert camera["psf"]["model"] == "gaussian"
    assert camera["psf"]["fwhm_mm"] == pytest.approx(fwhm, rel=0.02)
    assert camera["calibration"]["counts_per_mbq"] == pytest.approx(1.0e5, rel=0.02)
    for sphere in camera["spheres"]:
        assert sphere["recovery_measured"] == pytest.approx(sphere["recovery_model"], abs=0.03)
    # the spheres were found where the phantom put them (first sphere at 30 degrees)
    assert camera["spheres"][0]["centre_mm"][0] == pytest.approx(
        57.2 * math.cos(math.radians(30)), abs=1.0)


def test_calibration_keeps_a_tail_only_where_the_image_has_one():
    """Bug caught: the core-plus-tail model always (or never) chosen. Truth: 15 % of the
    counts in a 42 mm tail around a 14 mm core."""
    ct, image = _loaded(make_iec_phantom(IecSpec(psf=PointSpread(((0.85, 14.0),
                                                                  (0.15, 42.0))))))
    camera = calibrate(ct, image, nuclide="Tc-99m", modality="SPECT", sphere_kbq_ml=40.0,
                       background_kbq_ml=5.0)
    assert camera["psf"]["model"] == "core-plus-tail"
    core, tail = camera["psf"]["components"]
    assert core["fwhm_mm"] == pytest.approx(14.0, rel=0.05)
    assert tail["weight"] == pytest.approx(0.15, abs=0.04)


def test_calibration_on_a_pet_gives_a_scale():
    """Bug caught: a PET (Bq/mL) given a counts-per-MBq factor, or the kBq/mL-to-Bq/mL
    conversion lost. Truth: the phantom's PET is exact in Bq/mL (scale 1)."""
    ct, image = _loaded(make_iec_phantom(IecSpec(modality="PET", nuclide="Y-90",
                                                 spacing_mm=(4.0, 4.0, 4.0),
                                                 psf=PointSpread.gaussian(9.0))),
                        units="Bq/mL", modality="PT")
    camera = calibrate(ct, image, nuclide="Y-90", modality="PET", sphere_kbq_ml=40.0,
                       background_kbq_ml=5.0)
    assert camera["calibration"]["scale"] == pytest.approx(1.0, rel=0.03)
    assert camera["psf"]["fwhm_mm"] == pytest.approx(9.0, rel=0.05)


# ------------------------------------------------------------------ command line, bad input

@pytest.fixture(scope="module")
def iec_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("iec") / "iec10"
    assert main(["phantom", str(out), "--iec", "--fwhm-mm", "10"]) == 0
    return out


def _calibrate_args(d, out, *extra, s="40", b="5"):
    return ["calibrate", "--ct", str(d / "ct.nii.gz"), "--image", str(d / "image.nii.gz"),
            "--nuclide", "Tc-99m", "--sphere-kbq-ml", s, "--background-kbq-ml", b,
            "-o", str(out), *extra]


def test_calibrate_command_writes_the_camera_file(iec_dir, tmp_path):
    """Bug caught: a camera file without the fields measure and dose need, or with the
    standard's sphere sizes lost; slower than 30 s on the Gaussian phantom."""
    import time
    out = tmp_path / "camera.json"
    start = time.perf_counter()
    assert main(_calibrate_args(iec_dir, out, "--reconstruction", "OSEM 4i10s",
                                "--operator", "physicist")) == 0
    assert time.perf_counter() - start < 30
    camera = json.loads(out.read_text())
    assert camera["schema"] == "tareplanner.camera/1"
    assert (camera["modality"], camera["nuclide"]) == ("SPECT", "Tc-99m")
    assert camera["reconstruction"] == "OSEM 4i10s" and camera["operator"] == "physicist"
    assert [s["diameter_mm"] for s in camera["spheres"]] == [10, 13, 17, 22, 28, 37]
    assert camera["psf"]["fwhm_mm"] == pytest.approx(10.0, rel=0.02)
    assert camera["psf"]["fwhm_sd_mm"] > 0
    import jsonschema
    from conftest import REPO
    jsonschema.validate(camera, json.loads((REPO / "docs" / "schemas" /
                                            "camera-1.schema.json").read_text()))


def test_calibrate_with_given_centres(iec_dir, tmp_path):
    """Bug caught: --sphere-centres-mm parsed in another order or ignored."""
    truth = json.loads((iec_dir / "truth.json").read_text())
    centres = ";".join(",".join(f"{v:.3f}" for v in s["centre_mm"]) for s in truth["spheres"])
    out = tmp_path / "camera.json"
    assert main(_calibrate_args(iec_dir, out, "--sphere-centres-mm", centres)) == 0
    camera = json.loads(out.read_text())
    assert camera["sphere_finding"]["method"].startswith("given")
    assert camera["psf"]["fwhm_mm"] == pytest.approx(10.0, rel=0.02)


@pytest.mark.parametrize("s, b, extra, message", [
    ("4", "5", [], "--sphere-kbq-ml: got 4.0; allowed: a sphere concentration above"),
    ("nan", "5", [], "--sphere-kbq-ml: got nan"),
    ("40", "5", ["--sphere-centres-mm", "1,2,3;4,5"], "--sphere-centres-mm"),
    ("40", "5", ["--reference-time", "yesterday"], "--reference-time: got 'yesterday'"),
])
def test_calibrate_refuses_bad_options(iec_dir, tmp_path, capsys, s, b, extra, message):
    """Bug caught: impossible concentrations or centres accepted, or a traceback; a camera
    file written anyway."""
    out = tmp_path / "camera.json"
    assert main(_calibrate_args(iec_dir, out, *extra, s=s, b=b)) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_calibrate_refuses_an_image_without_spheres(tmp_path, capsys):
    """Bug caught: a phantom with cold (or no) spheres fitted anyway."""
    d = tmp_path / "flat"
    assert main(["phantom", str(d), "--iec", "--sphere-kbq-ml", "5",
                 "--background-kbq-ml", "5"]) == 0
    out = tmp_path / "camera.json"
    assert main(_calibrate_args(d, out)) == 2
    assert "--image: got 'no hot sphere'" in capsys.readouterr().err
    assert not out.exists()


def test_calibrate_refuses_a_truncated_dicom(phantom_dir, iec_dir, tmp_path, capsys):
    """Bug caught: a truncated DICOM CT read as far as it goes."""
    ct = tmp_path / "ct"
    shutil.copytree(phantom_dir / "dicom" / "ct", ct)
    first = sorted(ct.iterdir())[0]
    first.write_bytes(first.read_bytes()[:600])
    out = tmp_path / "camera.json"
    args = _calibrate_args(iec_dir, out)
    args[args.index("--ct") + 1] = str(ct)
    assert main(args) == 2
    assert "--ct" in capsys.readouterr().err
    assert not out.exists()


def _measure_args(d, out, *extra):
    return ["measure", "--ct", str(d / "nifti" / "ct.nii.gz"),
            "--spect", str(d / "dicom" / "spect_maa"),
            "--liver", str(d / "labels" / "liver.nii.gz"),
            "--tumours", str(d / "labels" / "tumours.nii.gz"), "--tumour-names", "T1,T2,T3",
            "--territories", str(d / "labels" / "territories.nii.gz"),
            "--territory-names", "right hepatic,left hepatic", "--goal", "tumour_dose_gy=250",
            "--product", "therasphere", "-o", str(out / "case.json"),
            "--measurement-output", str(out / "measurement.json"), "--quiet", *extra]


@pytest.mark.parametrize("change, message", [
    ({"psf": {"fwhm_mm": float("nan")}}, "psf.fwhm_mm: got nan"),
    ({"psf": {"fwhm_mm": -3.0}}, "psf.fwhm_mm: got -3.0"),
    ({"nuclide": "Ho-166"}, ":nuclide: got 'Ho-166'; allowed: Tc-99m"),
    ({"modality": "PET"}, ":modality: got 'PET'; allowed: SPECT"),
])
def test_measure_refuses_a_bad_camera_file(iec_dir, phantom_dir, tmp_path, capsys, change,
                                           message):
    """Bug caught: a camera file with a NaN or negative FWHM, or of another nuclide or
    modality than the SPECT (Tc-99m NM DICOM), used to correct it."""
    good = tmp_path / "good.json"
    assert main(_calibrate_args(iec_dir, good)) == 0
    camera = json.loads(good.read_text())
    for key, value in change.items():
        if isinstance(value, dict):
            camera[key].update(value)
        else:
            camera[key] = value
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(camera))
    out = tmp_path / "out"
    out.mkdir()
    capsys.readouterr()
    assert main(_measure_args(phantom_dir, out, "--camera", str(bad))) == 2
    assert message in capsys.readouterr().err
    assert not (out / "case.json").exists() and not (out / "measurement.json").exists()


def test_measure_with_camera_records_it_and_without_says_assumed(iec_dir, phantom_dir,
                                                                 tmp_path):
    """Bug caught: the camera file not named by hash in the measurement, or a default
    resolution used without saying so in the measurement and the case."""
    camera = tmp_path / "camera.json"
    assert main(_calibrate_args(iec_dir, camera)) == 0
    import hashlib
    for name, extra in (("with", ["--camera", str(camera)]), ("without", [])):
        out = tmp_path / name
        out.mkdir()
        assert main(_measure_args(phantom_dir, out, *extra)) == 0
        m = json.loads((out / "measurement.json").read_text())
        case = json.loads((out / "case.json").read_text())
        pvc = m["partial_volume_correction"]
        codes = [w["code"] for w in m["warnings"]]
        if name == "with":
            assert pvc["resolution"]["camera"]["sha256"] == hashlib.sha256(
                camera.read_bytes()).hexdigest()
            assert not pvc["assumed"] and "spect-resolution-assumed" not in codes
            assert case["uncertainty"]["resolution"]["distribution"] == "normal"
            # the GTM's residual and each region's recovery in the record, consistent with
            # the measured and corrected counts per mL written per tumour
            assert 0 <= pvc["relative_residual"] < 0.05
            t1 = next(t for p in m["positions"] for t in p["tumours"] if t["name"] == "T1")
            assert pvc["regions"]["tumour:T1"]["recovery"] == pytest.approx(
                t1["counts_per_ml_uncorrected"] / t1["counts_per_ml"], rel=1e-6)
        else:
            assert pvc["assumed"] and "spect-resolution-assumed" in codes
            assert case["measurement"]["resolution"]["assumed"] is True
            assert case["uncertainty"]["resolution"]["distribution"] == "uniform"
            assert case["uncertainty"]["resolution"]["half_range_mm"] == 4.0


def test_camera_file_is_a_parent_of_measurement_and_plan(iec_dir, phantom_dir, tmp_path,
                                                          capsys):
    """Bug caught: the camera file the TNRs and LSF were corrected with missing from the
    record chain (measurement and plan not naming it by the hash of its bytes), or a chain
    check that accepts another camera file in its place."""
    import hashlib
    camera = tmp_path / "camera.json"
    assert main(_calibrate_args(iec_dir, camera)) == 0
    other = tmp_path / "other.json"
    assert main(_calibrate_args(iec_dir, other, "--operator", "someone else")) == 0
    out = tmp_path / "m"
    out.mkdir()
    assert main(_measure_args(phantom_dir, out, "--camera", str(camera))) == 0
    sha = hashlib.sha256(camera.read_bytes()).hexdigest()
    m = json.loads((out / "measurement.json").read_text())
    assert m["parents"]["camera"] == {"schema": "tareplanner.camera/1", "sha256": sha,
                                      "file": "camera.json"}
    plan = out / "plan.json"
    assert main(["plan", str(out / "case.json"), "-o", str(plan)]) == 0
    assert json.loads(plan.read_text())["parents"]["camera"]["sha256"] == sha
    capsys.readouterr()
    # the whole chain with its camera file is verified; without it, or with another, refused
    assert main(["replay", str(out / "measurement.json"), str(out / "case.json"), str(plan),
                 str(camera)]) == 0
    capsys.readouterr()
    assert main(["replay", str(out / "measurement.json"), str(out / "case.json"),
                 str(plan)]) == 2
    assert "parents.camera" in capsys.readouterr().err
    assert main(["replay", str(out / "measurement.json"), str(out / "case.json"), str(plan),
                 str(other)]) == 2
    assert "parents.camera" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("psf_args", [["--fwhm-mm", "16"],
                                      ["--fwhm-mm", "14", "--tail-fraction", "0.15",
                                       "--tail-fwhm-mm", "42"]])
def test_calibrated_camera_measures_the_patient_within_5_percent(tmp_path, psf_args):
    """Bug caught: a camera file whose PSF the correction does not use as fitted (tail
    dropped, FWHM scaled), so that a patient imaged by the same camera is mis-corrected.
    Truth: the synthetic patient's TNRs (3.2, 2.4, 1.8) and LSF (6 %)."""
    iec, patient = tmp_path / "iec", tmp_path / "patient"
    assert main(["phantom", str(iec), "--iec", *psf_args]) == 0
    assert main(_calibrate_args(iec, tmp_path / "camera.json")) == 0
    assert main(["phantom", str(patient), "--size", "small", "--no-pet", *psf_args]) == 0
    out = tmp_path / "out"
    out.mkdir()
    args = _measure_args(patient, out, "--camera", str(tmp_path / "camera.json"))
    args[args.index("--spect") + 1] = str(patient / "nifti" / "spect_maa.nii.gz")
    assert main(args) == 0
    case = json.loads((out / "case.json").read_text())
    truth = {"T1": 3.2, "T2": 2.4, "T3": 1.8}
    assert case["lung_shunt_fraction"] == pytest.approx(0.06, rel=0.05)
    for p in case["positions"]:
        for t in p["tumours"]:
            assert t["tnr"] == pytest.approx(truth[t["name"]], rel=0.05)


def test_calibrated_gaussian_camera_measures_the_patient_within_5_percent(iec_dir, tmp_path):
    """As above for a 10 mm Gaussian (not the synthetic patient's default 14 mm), where the
    assumed default over-corrects T3 by about 11 %."""
    patient = tmp_path / "patient"
    assert main(_calibrate_args(iec_dir, tmp_path / "camera.json")) == 0
    assert main(["phantom", str(patient), "--size", "small", "--no-pet", "--fwhm-mm",
                 "10"]) == 0
    out = tmp_path / "out"
    out.mkdir()
    args = _measure_args(patient, out, "--camera", str(tmp_path / "camera.json"))
    args[args.index("--spect") + 1] = str(patient / "nifti" / "spect_maa.nii.gz")
    assert main(args) == 0
    case = json.loads((out / "case.json").read_text())
    truth = {"T1": 3.2, "T2": 2.4, "T3": 1.8}
    assert case["lung_shunt_fraction"] == pytest.approx(0.06, rel=0.05)
    for p in case["positions"]:
        for t in p["tumours"]:
            assert t["tnr"] == pytest.approx(truth[t["name"]], rel=0.05)


# ------------------------------------------------------------------ Monte Carlo

def _inputs(resolution):
    from tareplanner.physics.uncertainty import PlanInputs, PositionInput, TumourInput
    return PlanInputs(energy_j_per_gbq=49.67, density_g_per_ml=1.03, partition=True,
                      lung_shunt_fraction=0.06, lsf_relative_sd=0.0, residual_fraction=0.0,
                      residual_sd=0.0, calibrator_relative_sd=0.0, lung_mass_kg=1.0,
                      lung_mass_relative_sd=0.0, prior_lung_dose_gy=0.0, boundary_mm=0.0,
                      positions=(PositionInput("a", 2.0, True, 1000.0,
                                               (TumourInput("T1", 50.0, 3.2, 0.0),)),),
                      resolution=resolution)


def test_monte_carlo_carries_the_fwhm_through_the_correction():
    """Bug caught: the resolution's uncertainty ignored, applied as a percentage instead of
    through the correction, or TNR and LSF varied independently of each other. Truth by
    hand: with TNR 4.0 / 3.2 / 2.8 at 10 / 14 / 18 mm and a uniform 14 +/- 4 mm, the TNR
    samples span 2.8 to 4.0 and move with the LSF (1.5 / 1 / 0.5 times 6 %: one FWHM per
    sample)."""
    from tareplanner.physics.uncertainty import ResolutionInput, sample_inputs
    res = ResolutionInput(14.0, (10.0, 14.0, 18.0), {"T1": (4.0, 3.2, 2.8)},
                          (0.09, 0.06, 0.03), "uniform", 4.0)
    s = sample_inputs(_inputs(res), 4000, 1)
    assert s["tnr T1"].min() == pytest.approx(2.8, abs=0.02)
    assert s["tnr T1"].max() == pytest.approx(4.0, abs=0.02)
    assert s["lsf"].max() == pytest.approx(0.09, abs=0.001)
    # hand: at 12 mm the TNR is 3.6 (halfway 4.0-3.2), the LSF 7.5 %
    at12 = np.abs(s["resolution fwhm"] - 12.0) < 0.05
    assert s["tnr T1"][at12] == pytest.approx(3.6, abs=0.01)
    assert s["lsf"][at12] == pytest.approx(0.075, abs=0.0005)
    assert np.corrcoef(s["tnr T1"], s["lsf"])[0, 1] > 0.9
    none = sample_inputs(_inputs(None), 4000, 1)
    assert np.std(none["tnr T1"]) < 1e-12


def test_monte_carlo_normal_fwhm_of_a_calibration():
    """Bug caught: a calibration's standard uncertainty read as a half range. Truth: a
    normal FWHM of sd 0.5 mm on a linear TNR(FWHM) of slope -0.2 per mm gives a TNR sd of
    0.1."""
    from tareplanner.physics.uncertainty import ResolutionInput, sample_inputs
    res = ResolutionInput(14.0, (10.0, 14.0, 18.0), {"T1": (4.0, 3.2, 2.4)}, None,
                          "normal", 0.5)
    s = sample_inputs(_inputs(res), 20000, 2)
    assert np.std(s["tnr T1"]) == pytest.approx(0.1, rel=0.03)


# ------------------------------------------------------------------ activity check

@pytest.mark.parametrize("outside, warned", [(0.0499, False), (0.05, False), (0.0501, True)])
def test_activity_outside_structures_warning_edges(outside, warned):
    """Bug caught: the outside-structures warning at the wrong side of its threshold (5 %,
    data/verification.json), or the corrected fraction ignored."""
    from tareplanner.dosimetry.activity import activity_check
    check, warnings = activity_check(3.0, 3.0 * (1 - 0.2), 3.0, 0.0, "given",
                                     outside_fraction_corrected=outside)
    assert check["outside_liver_and_lungs_fraction"] == pytest.approx(0.2)
    assert check["outside_liver_and_lungs_gbq"] == pytest.approx(0.6)
    assert ("activity-outside-structures" in [w["code"] for w in warnings]) is warned


# ------------------------------------------------------------------ post-treatment means

def test_post_treatment_means_corrected_by_their_own_recovery():
    """Bug caught: the post-treatment correction applied with the wrong region (tumour read
    as normal liver), the factor inverted, or a territory reaching outside the liver counted
    as liver. Truth by hand: a noise-free image made with scipy's gaussian_filter of the
    block-averaged true activity (tumour 8, liver 1, lungs 0.2 per mL; a territory that
    reaches 6 mm beyond the liver); each corrected mean dose = mean dose x true / measured
    concentration, the measured one read at the coarse voxel holding each CT voxel centre."""
    import SimpleITK as sitk
    from tareplanner.dosimetry.post_treatment_pvc import correct_structure_means
    from tareplanner.dosimetry.structures import structures_from_labels

    n, k = 64, 2                       # CT 2 mm, emission 4 mm, same corner
    z, y, x = np.mgrid[0:n, 0:n, 0:n] * 2.0 + 1.0
    body = (np.abs(x - 64) < 56) & (np.abs(y - 64) < 56) & (np.abs(z - 64) < 56)
    liver = body & (x > 50) & (x < 110) & (y > 20) & (y < 110) & (z > 20) & (z < 110)
    tumour = (x - 80) ** 2 + (y - 64) ** 2 + (z - 64) ** 2 <= 12.0 ** 2
    lungs = body & (x > 10) & (x < 40) & (y > 20) & (y < 110) & (z > 20) & (z < 110)
    territory = body & (x > 50) & (x < 116) & (y > 20) & (y < 110) & (z > 20) & (z < 110)
    hu = np.where(body, 0.0, -1000.0).astype(np.float32)
    ct = sitk.GetImageFromArray(hu)
    ct.SetSpacing((2.0, 2.0, 2.0))
    true = np.zeros(hu.shape)
    true[liver] = 1.0
    true[tumour] = 8.0
    true[lungs] = 0.2
    coarse = true.reshape(n // k, k, n // k, k, n // k, k).mean(axis=(1, 3, 5))
    sigma = 9.0 * FWHM_TO_SIGMA / 4.0
    image = ndimage.gaussian_filter(coarse, sigma, mode="constant")
    pet = sitk.GetImageFromArray(image.astype(np.float64))
    pet.SetSpacing((4.0, 4.0, 4.0))
    pet.SetOrigin((1.0, 1.0, 1.0))   # voxel corner at 0, as the CT's
    ct.SetOrigin((0.0, 0.0, 0.0))
    pet.SetOrigin((1.0, 1.0, 1.0))
    structures = structures_from_labels(ct, liver, lungs, {"T": tumour}, {"a": territory})
    report = {name: {"mean_gy": 100.0} for name in structures.masks}
    record = correct_structure_means(pet, structures, report,
                                     {"fwhm_mm": 9.0, "chosen_by": "test"})
    on_fine = image.repeat(k, 0).repeat(k, 1).repeat(k, 2)
    for name, truth in (("T", 8.0), ("lungs", 0.2), ("normal liver (a)", 1.0)):
        measured = on_fine[structures.masks[name]].mean()
        assert report[name]["mean_gy"] == pytest.approx(100.0 * truth / measured, rel=2e-3)
        assert report[name]["mean_gy_uncorrected"] == 100.0
    assert "DVH" in record["not_corrected"]


def _mean_doses(dose_dir):
    record = json.loads((dose_dir / "dose.json").read_text())
    return {n: s["mean_gy"] for n, s in record["post_treatment"]["structures"].items()}, record


@pytest.mark.slow
@pytest.mark.parametrize("pet_fwhm", [None, "12"])
def test_delivered_mean_doses_corrected_within_10_and_5_percent(tmp_path, pet_fwhm):
    """Bug caught: post-treatment mean doses left 15-21 % (tumours) and 6-7 % (normal liver)
    low by the PET's blur, or a PET of non-default resolution corrected with the default.
    Truth: the partition model the patient was built with, by hand (conftest's
    delivered_truth_gy). With the default 9 mm PET the assumed 9 mm is used; with a 12 mm
    PET the camera file calibrated on the IEC phantom imaged at 12 mm."""
    from conftest import delivered_truth_gy
    patient = tmp_path / "patient"
    extra = ["--pet-fwhm-mm", pet_fwhm] if pet_fwhm else []
    assert main(["phantom", str(patient), "--size", "small", *extra]) == 0
    camera = []
    if pet_fwhm:
        iec = tmp_path / "iec"
        assert main(["phantom", str(iec), "--iec", "--modality", "PET", "--nuclide", "Y-90",
                     "--fwhm-mm", pet_fwhm]) == 0
        assert main(["calibrate", "--ct", str(iec / "ct.nii.gz"), "--image",
                     str(iec / "image.nii.gz"), "--nuclide", "Y-90", "--sphere-kbq-ml", "40",
                     "--background-kbq-ml", "5", "-o", str(tmp_path / "pet.json")]) == 0
        camera = ["--camera", str(tmp_path / "pet.json")]
    out = tmp_path / "m"
    out.mkdir()
    args = _measure_args(patient, out)
    args[args.index("--spect") + 1] = str(patient / "nifti" / "spect_maa.nii.gz")
    assert main(args) == 0
    assert main(["plan", str(out / "case.json"), "-o", str(out / "plan.json")]) == 0
    assert main(["dose", "--measurement", str(out / "measurement.json"), "--plan",
                 str(out / "plan.json"), "--method", "ldm", "--quiet", "--pet",
                 str(patient / "dicom" / "pet_y90"), "--out", str(tmp_path / "d"),
                 *camera]) == 0
    got, record = _mean_doses(tmp_path / "d")
    want = delivered_truth_gy(json.loads((patient / "truth.json").read_text()),
                              record["dose"]["energy_per_activity_j_per_gbq"],
                              record["dose"]["soft_tissue_density_g_per_ml"])
    pvc = record["post_treatment"]["partial_volume_correction"]
    assert pvc["assumed"] is (pet_fwhm is None)
    if pet_fwhm:  # the PET's camera file is a parent of the dose record, by its bytes' hash
        import hashlib
        assert record["parents"]["camera"]["sha256"] == hashlib.sha256(
            (tmp_path / "pet.json").read_bytes()).hexdigest()
    else:
        assert "camera" not in record["parents"]
    # the issue's targets are 10 % (tumours) and 5 % (normal liver); measured against this
    # truth: at most 2.0 % and 0.34 % (default), 0.76 % and 0.31 % (12 mm): held to 4 % and
    # 1.5 % so that a few per cent lost anywhere in the chain fails
    for name in ("T1", "T2", "T3"):
        assert got[name] == pytest.approx(want[name], rel=0.04)
    for name in ("normal liver (right hepatic)", "normal liver (left hepatic)"):
        assert got[name] == pytest.approx(want[name], rel=0.015)


# --- a calibration whose spheres do not follow one PSF -----------------------------------

@pytest.mark.parametrize("model, warned", [(0.375, False), (0.37, True), (0.38, False),
                                           (0.625, False), (0.63, True)])
def test_recovery_misfit_warns_only_beyond_its_limit(model, warned):
    """Bug caught: a camera calibrated on a reconstruction that one PSF does not describe
    (the realistic Ho-166 scout: measured recovery 0.395 against the fit's 0.237 at 13 mm,
    corrected TNRs then +33 % off) accepted without a word, or a warning at the limit
    itself. Edges with a limit of 0.125 (binary-exact numbers): measured 0.5 against a
    model of 0.375 or 0.625 differs by exactly 0.125 (no warning), 0.37 and 0.63 by 0.13
    (warning naming the sphere), 0.38 by 0.12 (none)."""
    from tareplanner.imaging.calibration import recovery_misfit
    got = recovery_misfit([10.0, 37.0], [0.5, 0.9], [model, 0.9], 0.125)
    assert (got is not None) is warned
    if warned:
        assert got["code"] == "camera-recovery-misfit"
        assert f"10 mm 0.500 vs {model:.3f}" in got["message"]
        assert "37 mm" not in got["message"]


def test_recovery_misfit_limit_is_the_documented_value():
    """Bug caught: the limit changed in the data file without its measured basis (0.10:
    above the realistic MAA model's 0.072, below the realistic scout's 0.158)."""
    from pathlib import Path
    data = json.loads((Path(__file__).parents[1] / "TAREPlanner" / "tareplanner" / "data"
                       / "camera_calibration.json").read_text())
    entry = data["recovery_misfit_max"]
    assert entry["value"] == 0.10
    assert "0.072" in entry["source"] and "0.158" in entry["source"]


def test_a_camera_files_misfit_warning_reaches_the_measurement(iec_dir, phantom_dir,
                                                               tmp_path):
    """Bug caught: the calibration's warning kept in the camera file only, so the
    measurement corrected with it (and the case and report made from it) says nothing.
    A camera file calibrated on the 10 mm Gaussian phantom has no warning (its spheres
    follow the fit within 0.012); the same file with a misfit warning written in by hand
    passes it on, naming the file; a malformed warnings list is refused by name."""
    camera = tmp_path / "camera.json"
    assert main(_calibrate_args(iec_dir, camera)) == 0
    doc = json.loads(camera.read_text())
    assert doc["warnings"] == []
    assert max(abs(s["recovery_measured"] - s["recovery_model"]) for s in doc["spheres"]) < 0.05
    doc["warnings"] = [{"code": "camera-recovery-misfit", "message": "13 mm 0.395 vs 0.237"}]
    warned = tmp_path / "warned.json"
    warned.write_text(json.dumps(doc))
    out = tmp_path / "m"
    out.mkdir()
    assert main(_measure_args(phantom_dir, out, "--camera", str(warned))) == 0
    m = json.loads((out / "measurement.json").read_text())
    (w,) = [w for w in m["warnings"] if w["code"] == "camera-recovery-misfit"]
    assert w["message"] == f"camera file {warned}: 13 mm 0.395 vs 0.237"
    doc["warnings"] = ["not an object"]
    warned.write_text(json.dumps(doc))
    bad = tmp_path / "bad"
    bad.mkdir()
    assert main(_measure_args(phantom_dir, bad, "--camera", str(warned))) == 2
    assert not (bad / "case.json").exists()
