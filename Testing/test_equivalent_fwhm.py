"""Each phantom sphere's equivalent Gaussian FWHM, their spread, and the resolution
uncertainty a camera file carries into the Monte Carlo (the fit's, or the spread where the
spheres do not follow one PSF).

Expected values come from outside the code under test: a sphere's recovery under a Gaussian
of known FWHM computed here with scipy.ndimage.gaussian_filter on a fine voxelised ball (the
mean of the blurred ball over the ball), the FWHM the synthetic IEC phantom was imaged with,
sample standard deviations and the second moment of a two-Gaussian mixture worked out by
hand in each docstring."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import ndimage

from tareplanner.cli.main import main
from tareplanner.errors import FieldValueError
from tareplanner.imaging.calibration import (equivalent_fwhm_words, fwhm_spread,
                                             misfit_and_spread)
from tareplanner.imaging.camera_file import camera_resolution, fwhm_uncertainty
from tareplanner.physics.psf_fit import (EquivalentFwhm, PhantomScene, ball_occupancy,
                                         equivalent_fwhms)

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))          # 2.35482
FIT = "fit uncertainty"
SPREAD = "spread of the spheres' equivalent FWHMs (recovery misfit)"
MISFIT = {"code": "camera-recovery-misfit", "message": "13 mm 0.395 vs 0.237"}


def _true_recovery(diameter_mm: float, fwhm_mm: float, step_mm: float = 0.2) -> float:
    """Mean over a ball of the ball blurred by a Gaussian: the ball voxelised on a fine
    grid (voxel centre inside the sphere), blurred with scipy.ndimage.gaussian_filter
    (sigma = FWHM / 2.35482), zero outside. The grid need only hold the ball: the blurred
    values inside it come from the ball alone."""
    r = diameter_mm / 2.0
    n = int(math.ceil(2.0 * r / step_mm)) + 3
    axis = (np.arange(n) - (n - 1) / 2.0) * step_mm
    z, y, x = np.meshgrid(axis, axis, axis, indexing="ij", sparse=True)
    ball = (z * z + y * y + x * x <= r * r).astype(float)
    blurred = ndimage.gaussian_filter(ball, fwhm_mm / FWHM_PER_SIGMA / step_mm,
                                      mode="constant")
    return float(blurred[ball > 0].mean())


def _lone_scene(diameters_mm, spacing_zyx, gap_mm: float = 0.0) -> PhantomScene:
    """Spheres side by side along x (``gap_mm`` between them), no background."""
    r = max(diameters_mm) / 2.0
    length_x = sum(diameters_mm) + gap_mm * (len(diameters_mm) - 1) + 4.0
    shape = [int(math.ceil((2.0 * r + 4.0) / spacing_zyx[0])),
             int(math.ceil((2.0 * r + 4.0) / spacing_zyx[1])),
             int(math.ceil(length_x / spacing_zyx[2]))]
    balls, x = [], 2.0
    for d in diameters_mm:
        centre = ((shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0,
                  (x + d / 2.0) / spacing_zyx[2] - 0.5)
        balls.append(ball_occupancy(shape, spacing_zyx, centre, d / 2.0))
        x += d + gap_mm
    return PhantomScene(np.stack(balls), np.zeros(shape), tuple(spacing_zyx), 1.0, 0.0,
                        np.ones(shape, bool))


@pytest.mark.parametrize("diameter, fwhm", [(10.0, 8.0), (17.0, 12.0), (28.0, 20.0)])
def test_equivalent_fwhm_of_a_sphere_matches_an_independent_blur(diameter, fwhm):
    """Bug caught: the equivalent FWHM taken as a sigma, or in voxels, or with the voxel
    spacing's axes mixed up (the grid here is 1.2 x 1.0 x 0.8 mm), or the root of another
    function than recovery(FWHM) = measured, or the bracket's end returned.

    Truth: the recovery of a sphere of that diameter under a Gaussian of that FWHM,
    computed on a 0.2 mm grid with scipy; the FWHM that gives it must come back within
    0.1 mm (the model's 1 mm grid costs at most 0.06 mm, measured over 10-28 mm spheres and
    8-20 mm FWHMs)."""
    measured = _true_recovery(diameter, fwhm)
    (got,) = equivalent_fwhms(_lone_scene([diameter], (1.2, 1.0, 0.8)), [measured])
    assert got.status == "found"
    assert got.fwhm_mm == pytest.approx(fwhm, abs=0.1)
    assert got.model_at_bracket[0] > measured > got.model_at_bracket[1]
    assert got.measured == measured


def test_each_sphere_gets_its_own_equivalent_fwhm():
    """Bug caught: every sphere given the first sphere's root (a loop variable captured
    late), or the recoveries matched to the wrong sphere. Two spheres 60 mm apart (no
    overlap of their blur below 20 mm FWHM), measured as if imaged with 8 and 14 mm."""
    measured = [_true_recovery(10.0, 8.0), _true_recovery(17.0, 14.0)]
    got = equivalent_fwhms(_lone_scene([10.0, 17.0], (1.0, 1.0, 1.0), gap_mm=60.0),
                           measured)
    assert [g.fwhm_mm for g in got] == [pytest.approx(8.0, abs=0.1),
                                        pytest.approx(14.0, abs=0.1)]


def test_a_recovery_no_fwhm_in_the_bracket_gives_is_reported_not_clipped():
    """Bug caught: a sphere whose measured recovery lies above the sharpest model's (edge
    overshoot of an OSEM image) or below the widest's given the bracket's end as its
    equivalent FWHM, which would make the spread look measured. A 10 mm sphere on a 2 mm
    grid: its recovery at 1 mm FWHM is below the occupancy-weighted ideal 1.0 (partial
    voxels), so 0.999 lies above it; 0.0 lies below any blur's recovery of a lone sphere."""
    scene = _lone_scene([10.0], (2.0, 2.0, 2.0))
    above, below, nan = (equivalent_fwhms(scene, [m], (1.0, 60.0))[0]
                         for m in (0.999, 0.0, float("nan")))
    assert (above.fwhm_mm, above.status) == (None, "above")
    assert (below.fwhm_mm, below.status) == (None, "below")
    assert (nan.fwhm_mm, nan.status) == (None, "not finite")
    assert "above the model's" in equivalent_fwhm_words(above, (1.0, 60.0))
    assert "at 1 mm" in equivalent_fwhm_words(above, (1.0, 60.0))
    assert "at 60 mm" in equivalent_fwhm_words(below, (1.0, 60.0))



def test_psf_fit_equivalent_fwhm_of_a_sphere_at_40_kbq_ml_matches_an_independent_blur():
    """The recovery is a ratio to the sphere's own concentration, whatever its unit and
    size: a 10 mm sphere at 40 (kBq/mL) imaged with 8 mm FWHM has the recovery of the same
    sphere at 1, computed with scipy (``_true_recovery``), and its equivalent FWHM is 8 mm
    within 0.1 mm. Bug caught: the model's recovery multiplied by the concentration instead
    of divided (invisible at a concentration of 1)."""
    lone = _lone_scene([10.0], (1.2, 1.0, 0.8))
    scene = PhantomScene(lone.spheres, lone.background, lone.spacing_mm, 40.0, 0.0,
                         lone.fit_mask)
    (got,) = equivalent_fwhms(scene, [_true_recovery(10.0, 8.0)])
    assert got.status == "found"
    assert got.fwhm_mm == pytest.approx(8.0, abs=0.1)


def test_psf_fit_equivalent_fwhm_equal_to_a_bracket_end_is_that_end():
    """A measured recovery equal, to the last bit, to the model's at the bracket's sharpest
    (1 mm) or widest (60 mm) FWHM has that end as its equivalent FWHM: the root lies on the
    end (the model's value there is taken from a first call), with its measured value and
    the model's at both ends. Bugs caught: the test for a root on either end miswritten
    (``f_lo == 1.0``), its result dropped or without its FWHM, status, measured value or
    ends; such a sphere then reported as "below" the bracket with no FWHM."""
    scene = _lone_scene([10.0], (2.0, 2.0, 2.0))
    (first,) = equivalent_fwhms(scene, [0.5], (1.0, 60.0))
    sharpest, widest = first.model_at_bracket
    assert sharpest > 0.5 > widest
    (at_lo,) = equivalent_fwhms(scene, [sharpest], (1.0, 60.0))
    (at_hi,) = equivalent_fwhms(scene, [widest], (1.0, 60.0))
    assert (at_lo.fwhm_mm, at_lo.status) == (1.0, "found")
    assert (at_hi.fwhm_mm, at_hi.status) == (60.0, "found")
    assert (at_lo.measured, at_hi.measured) == (sharpest, widest)
    assert at_lo.model_at_bracket == at_hi.model_at_bracket == (sharpest, widest)


def test_psf_fit_equivalent_fwhm_of_a_missing_recovery_is_not_finite_with_its_ends():
    """A sphere whose measured recovery is NaN or missing (None) is reported "not finite",
    with NaN as its measured value and the model's recoveries at the bracket's ends as for
    any sphere (those of a finite value's answer). Bugs caught: the measured value or the
    ends dropped from the answer (None), the recoveries not read as numbers (None then a
    TypeError instead of "not finite")."""
    scene = _lone_scene([10.0], (2.0, 2.0, 2.0))
    (finite,) = equivalent_fwhms(scene, [0.5], (1.0, 60.0))
    for value in (float("nan"), None):
        (got,) = equivalent_fwhms(scene, [value], (1.0, 60.0))
        assert (got.fwhm_mm, got.status) == (None, "not finite")
        assert math.isnan(got.measured)
        assert got.model_at_bracket == finite.model_at_bracket



def test_psf_fit_equivalent_fwhm_search_stops_at_its_tolerance(monkeypatch):
    """Brent's search stops once the FWHM is known within ``xtol_mm``: each model recovery
    is one blur of the whole scene, so a coarse tolerance needs fewer of them (counted
    here); the coarse answer stays within its tolerance of the fine one. Bug caught: the
    tolerance not passed to brentq (its default, 2e-12 mm, used whatever is asked)."""
    from tareplanner.physics import psf_fit
    scene = _lone_scene([17.0], (2.0, 2.0, 2.0))
    measured = [_true_recovery(17.0, 12.0)]
    calls = []
    real = psf_fit.model_recovery
    monkeypatch.setattr(psf_fit, "model_recovery", lambda *a: calls.append(1) or real(*a))
    (fine,) = equivalent_fwhms(scene, measured, (1.0, 60.0), xtol_mm=1e-6)
    fine_calls = len(calls)
    calls.clear()
    (coarse,) = equivalent_fwhms(scene, measured, (1.0, 60.0), xtol_mm=5.0)
    assert len(calls) < fine_calls
    assert coarse.fwhm_mm == pytest.approx(fine.fwhm_mm, abs=5.0 + 1e-9)


@pytest.mark.parametrize("measured, bracket, words", [
    ([0.5, 0.5], (1.0, 60.0), "measured: got 2 recoveries; allowed: one per sphere (1)"),
    ([], (1.0, 60.0), "measured: got 0 recoveries; allowed: one per sphere (1)"),
    ([0.5], (0.0, 60.0), "bracket_mm: got (0.0, 60.0); allowed: 0 < low < high"),
    ([0.5], (10.0, 10.0), "bracket_mm: got (10.0, 10.0); allowed: 0 < low < high"),
    ([0.5], (20.0, 10.0), "bracket_mm: got (20.0, 10.0); allowed: 0 < low < high")])
def test_psf_fit_equivalent_fwhms_refusals_word_for_word(measured, bracket, words):
    """One recovery per sphere (one sphere here; its grid is 7 voxels along z, 7 along y),
    and a bracket with 0 < low < high, else a refusal naming the value and what is allowed.
    Bugs caught: a message emptied or naming another axis of the occupancies (their z
    size, 7, for the sphere count), a bracket from 0 mm or of zero width accepted (a
    Gaussian of FWHM 0, or brentq on one point)."""
    scene = _lone_scene([10.0], (2.0, 2.0, 2.0))
    assert scene.spheres.shape[0] == 1 and scene.spheres.shape[1] != 1
    with pytest.raises(ValueError) as error:
        equivalent_fwhms(scene, measured, bracket)
    assert str(error.value) == words


def _eq(values):
    return [EquivalentFwhm(v, "found" if v is not None else "above", 0.5, (0.9, 0.1))
            for v in values]


def test_fwhm_spread_is_the_sample_standard_deviation_of_the_found_ones():
    """Bug caught: the population sd (n) instead of the sample's (n - 1), a missing
    sphere counted as 0 mm or as the bracket's end, a spread claimed from one sphere.
    By hand: 10, 12, 14 mm -> mean 12, squares 4 + 0 + 4 = 8, / (3 - 1) = 4, sd 2.0 mm."""
    got = fwhm_spread([10, 13, 17, 22], _eq([10.0, None, 12.0, 14.0]))
    assert got["fwhm_spread_mm"] == pytest.approx(2.0, rel=1e-12)
    assert "3 spheres" in got["fwhm_spread"] and "without one: 13 mm" in got["fwhm_spread"]
    lone = fwhm_spread([10, 13], _eq([10.0, None]))
    assert lone["fwhm_spread_mm"] is None and "fewer than two" in lone["fwhm_spread"]


@pytest.mark.parametrize("model, warned", [(0.375, False), (0.37, True), (0.38, False),
                                           (0.625, False), (0.63, True)])
def test_spread_written_only_with_the_misfit_warning(model, warned):
    """Bug caught: the spread written (and so carried) for a camera whose spheres follow
    its PSF, or missing at the misfit warning; the edge taken as a warning. Limit 0.125
    (binary-exact): measured 0.5 against a model 0.375 or 0.625 differs by exactly 0.125
    (no warning, no spread), 0.37 and 0.63 by 0.13 (warning and spread), 0.38 by 0.12
    (neither). The spread of 9 and 13 mm by hand: mean 11, (4 + 4) / 1 = 8, sd 2.828 mm."""
    warning, keys = misfit_and_spread([10.0, 37.0], [0.5, 0.9], [model, 0.9],
                                      _eq([9.0, 13.0]), 0.125)
    assert (warning is not None) is warned
    if warned:
        assert warning["code"] == "camera-recovery-misfit"
        assert keys["fwhm_spread_mm"] == pytest.approx(math.sqrt(8.0), rel=1e-12)
    else:
        assert keys == {}


GAUSS = [(1.0, 16.0)]


@pytest.mark.parametrize("spread, misfit, sd, basis", [
    (0.5, True, 0.5, FIT),                 # a tie keeps the fit's
    (0.4921875, True, 0.5, FIT),           # just under
    (0.5078125, True, 0.5078125, SPREAD),  # just over
    (3.0, False, 0.5, FIT),                # no warning: the spread is not used
    (None, True, 0.5, FIT),                # a warning but no spread (older file)
])
def test_larger_of_fit_and_spread_only_with_the_misfit_warning(spread, misfit, sd, basis):
    """Bug caught: the spread used without the misfit warning, the smaller of the two
    carried, the fit's used where the spread is larger, or the record not saying which
    (binary-exact edges around a fit sd of 0.5 mm: +/- 1/128 mm)."""
    got = fwhm_uncertainty(0.5, spread, misfit, 16.0, GAUSS)
    assert got["fwhm_sd_mm"] == sd and got["fwhm_sd_basis"] == basis
    assert got["fwhm_fit_sd_mm"] == 0.5 and got["fwhm_spread_mm"] == spread
    assert got["fwhm_sd_reason"]


def test_spread_of_a_tailed_psf_is_scaled_to_its_core():
    """Bug caught: a Gaussian-equivalent spread applied as is to the core FWHM of a
    core-plus-tail PSF, whose components the Monte Carlo scales together (a 2 mm spread
    of ~21 mm equivalent FWHMs is a 10 % change, not 14 % of a 14 mm core). By hand:
    85 % 14 mm + 15 % 42 mm has the second moment 0.85 * 196 + 0.15 * 1764 = 431.2, the
    effective FWHM sqrt(431.2) = 20.7654 mm; 2 mm * 14 / 20.7654 = 1.3484 mm."""
    got = fwhm_uncertainty(0.5, 2.0, True, 14.0, [(0.85, 14.0), (0.15, 42.0)])
    assert got["fwhm_sd_mm"] == pytest.approx(1.3484, abs=1e-4)
    assert got["fwhm_sd_basis"] == SPREAD and "1.35 mm of the core FWHM" in got[
        "fwhm_sd_reason"]


# --- the camera file: written, read, refused ---------------------------------------------

@pytest.fixture(scope="module")
def iec10(tmp_path_factory):
    d = tmp_path_factory.mktemp("iec") / "iec10"
    assert main(["phantom", str(d), "--iec", "--fwhm-mm", "10"]) == 0
    return d


def _calibrate(d, out, sphere_kbq_ml="40", *extra):
    assert main(["calibrate", "--ct", str(d / "ct.nii.gz"), "--image",
                 str(d / "image.nii.gz"), "--nuclide", "Tc-99m", "--sphere-kbq-ml",
                 sphere_kbq_ml, "--background-kbq-ml", "5", "-o", str(out), *extra]) == 0
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def camera_doc(iec10):
    return _calibrate(iec10, iec10.parent / "camera.json")


def test_calibrate_writes_the_spread_of_a_misfit_camera(iec10, tmp_path):
    """Bug caught: a calibration with the misfit warning that writes no spread, a spread
    that is not the standard deviation of the spheres' equivalent FWHMs it writes, a warning
    that does not say the spread is carried, or a camera file that then reads with the fit's
    0.5 mm. The misfit is made by stating the spheres 3 times hotter than they were filled
    (120 kBq/mL for 40) and forcing one Gaussian: the small spheres then recover twice what
    the model gives (0.21 against 0.10 at 10 mm). Truth for the spread: numpy's sample
    standard deviation (ddof=1) of the six values in the file."""
    doc = _calibrate(iec10, tmp_path / "misfit.json", "120", "--model", "gaussian")
    (warning,) = doc["warnings"]
    assert warning["code"] == "camera-recovery-misfit"
    values = [s["equivalent_fwhm_mm"] for s in doc["spheres"]]
    assert None not in values
    spread = doc["psf"]["fwhm_spread_mm"]
    assert spread == pytest.approx(float(np.std(values, ddof=1)), rel=1e-12)
    assert spread > doc["psf"]["fwhm_sd_mm"]
    assert f"spread by {spread:.2f} mm" in warning["message"]
    assert "6 spheres" in doc["psf"]["fwhm_spread"]
    import jsonschema
    from conftest import REPO
    jsonschema.validate(doc, json.loads((REPO / "docs" / "schemas" /
                                         "camera-1.schema.json").read_text()))
    read = camera_resolution(doc, "misfit.json")
    assert (read["fwhm_sd_mm"], read["fwhm_sd_basis"]) == (spread, SPREAD)


def test_calibrate_writes_each_spheres_equivalent_fwhm(camera_doc):
    """Bug caught: equivalent FWHMs missing from the camera file, computed against the
    wrong recovery (the truth is the 10 mm Gaussian the synthetic IEC phantom was imaged
    with; Poisson noise moves them by up to 0.2 mm), or a spread written without the misfit
    warning. The file still matches its schema."""
    assert camera_doc["warnings"] == []
    for sphere in camera_doc["spheres"]:
        assert sphere["equivalent_fwhm_mm"] == pytest.approx(10.0, abs=0.4), sphere
    assert "fwhm_spread_mm" not in camera_doc["psf"]
    import jsonschema
    from conftest import REPO
    jsonschema.validate(camera_doc, json.loads((REPO / "docs" / "schemas" /
                                                "camera-1.schema.json").read_text()))
    read = camera_resolution(camera_doc, "camera.json")
    assert read["fwhm_sd_basis"] == FIT
    assert read["fwhm_sd_mm"] == camera_doc["psf"]["fwhm_sd_mm"]


def test_an_older_camera_file_without_the_new_keys_is_read(camera_doc):
    """Bug caught: camera files written before the equivalent FWHMs refused, or read with
    another uncertainty than their fit's; with a misfit warning but no spread, the fit's is
    carried and the record says why."""
    old = json.loads(json.dumps(camera_doc))
    old.pop("equivalent_fwhm")
    for sphere in old["spheres"]:
        sphere.pop("equivalent_fwhm_mm")
    for warnings in ([], [MISFIT]):
        old["warnings"] = warnings
        read = camera_resolution(old, "old.json")
        assert read["fwhm_sd_mm"] == old["psf"]["fwhm_sd_mm"]
        assert read["fwhm_sd_basis"] == FIT and read["fwhm_spread_mm"] is None
    assert "holds no spread" in read["fwhm_sd_reason"]


@pytest.mark.parametrize("key", ["fwhm_spread_mm", "fwhm_sd_mm"])
@pytest.mark.parametrize("value, shown", [(float("nan"), "nan"), (-0.5, "-0.5"),
                                          ("2", "'2'"), (True, "True"),
                                          (float("inf"), "inf"), (50.0001, "50.0001"),
                                          (1e6, "1000000.0")])
def test_a_bad_spread_is_refused_by_name(camera_doc, key, value, shown):
    """Bug caught: a NaN, negative, infinite, non-number or huge spread (or fit sd) read
    (and carried, or ignored) instead of refused naming the field; a huge one would make
    the correction blur with a FWHM of kilometres (the grid is +/- 2.5 sd). The limit is
    the widest FWHM a camera file may give, 50 mm: 50 is read, 50.0001 refused."""
    bad = json.loads(json.dumps(camera_doc))
    bad["psf"][key] = value
    bad["warnings"] = [MISFIT]
    with pytest.raises(FieldValueError) as err:
        camera_resolution(bad, "bad.json")
    assert f"psf:{key}: got {shown}" in str(err.value)
    bad["psf"][key] = 50.0
    assert camera_resolution(bad, "bad.json")["fwhm_sd_mm"] == 50.0


def _measure_args(d, out, camera):
    return ["measure", "--ct", str(d / "nifti" / "ct.nii.gz"),
            "--spect", str(d / "dicom" / "spect_maa"),
            "--liver", str(d / "labels" / "liver.nii.gz"),
            "--tumours", str(d / "labels" / "tumours.nii.gz"), "--tumour-names", "T1,T2,T3",
            "--territories", str(d / "labels" / "territories.nii.gz"),
            "--territory-names", "right hepatic,left hepatic", "--goal", "tumour_dose_gy=250",
            "--product", "therasphere", "-o", str(out / "case.json"),
            "--measurement-output", str(out / "measurement.json"), "--quiet",
            "--camera", str(camera)]


def test_measure_refuses_a_nan_spread_with_exit_2(camera_doc, phantom_dir, tmp_path,
                                                  capsys):
    """Bug caught: a camera file with a NaN spread accepted by the command line, or a
    traceback, or a case or measurement written anyway."""
    bad = json.loads(json.dumps(camera_doc))
    bad["psf"]["fwhm_spread_mm"] = float("nan")
    bad["warnings"] = [MISFIT]
    camera = tmp_path / "bad.json"
    camera.write_text(json.dumps(bad))       # NaN, as Python writes it
    out = tmp_path / "out"
    out.mkdir()
    capsys.readouterr()
    assert main(_measure_args(phantom_dir, out, camera)) == 2
    err = capsys.readouterr().err
    assert "psf:fwhm_spread_mm: got nan" in err and "Traceback" not in err
    assert not (out / "case.json").exists() and not (out / "measurement.json").exists()


@pytest.mark.parametrize("warned", [True, False])
def test_the_spread_reaches_the_plans_uncertainty(camera_doc, phantom_dir, tmp_path, capsys,
                                                  warned):
    """Bug caught: the spread of a misfit camera kept in the camera file while the Monte
    Carlo still draws the FWHM with the fit's standard uncertainty (the realistic Ho-166
    scout: 0.52 mm while its corrected TNRs are 8-33 % off), or the plan's record and text
    not saying which uncertainty it is; or the spread used for a camera without the
    warning. A 2 mm spread (4 times the fit's 0.50 mm) written in by hand: with the warning
    the case's sensitivity grid is the nominal FWHM +/- 2.5 * 2 mm, the plan's Monte Carlo
    input is sd 2 mm and both say 'spread'; without it, the fit's."""
    doc = json.loads(json.dumps(camera_doc))
    doc["psf"]["fwhm_spread_mm"] = 2.0
    doc["psf"]["fwhm_spread"] = "written in by hand"
    doc["warnings"] = [MISFIT] if warned else []
    camera = tmp_path / "camera.json"
    camera.write_text(json.dumps(doc))
    out = tmp_path / "m"
    out.mkdir()
    assert main(_measure_args(phantom_dir, out, camera)) == 0
    fit_sd = doc["psf"]["fwhm_sd_mm"]
    sd, basis = (2.0, SPREAD) if warned else (fit_sd, FIT)
    m = json.loads((out / "measurement.json").read_text())
    res = m["partial_volume_correction"]["resolution"]
    assert (res["fwhm_sd_mm"], res["fwhm_sd_basis"], res["fwhm_fit_sd_mm"]) == (
        sd, basis, fit_sd)
    case = json.loads((out / "case.json").read_text())
    unc = case["uncertainty"]["resolution"]
    f0 = unc["fwhm_mm"]
    assert (unc["distribution"], unc["sd_mm"], unc["sd_basis"]) == ("normal", sd, basis)
    assert unc["grid_fwhm_mm"] == pytest.approx([f0 - 2.5 * sd, f0, f0 + 2.5 * sd])
    assert unc["source"].startswith(f"the camera file's {basis}")
    plan = out / "plan.json"
    assert main(["plan", str(out / "case.json"), "-o", str(plan)]) == 0
    record = json.loads(plan.read_text())
    inputs = record["uncertainty"]["inputs"]["resolution"]
    assert (inputs["distribution"], inputs["sd_mm"], inputs["sd_basis"]) == ("normal", sd,
                                                                             basis)
    from tareplanner.records.plan_text import plan_summary, resolution_words
    assert f"sd {sd:.2f} mm in the uncertainty, the {basis})" in plan_summary(record)
    from tareplanner.records.report_tables import overview_pairs      # the PDF's overview
    assert f"in the uncertainty, the {basis})" in dict(overview_pairs(record))[
        "Imaging resolution"]
    words = resolution_words(res)
    assert f"{res['fwhm_mm']:.2f} +/- {sd:.2f} mm FWHM (+/- the {basis}" in words
    assert (f"fit uncertainty {fit_sd:.2f} mm" in words) is warned


@pytest.mark.parametrize("basis, ok", [(FIT, True), (SPREAD, True), ("a guess", False),
                                       (None, False)])
def test_a_case_names_its_resolution_sd_basis_or_is_refused(base_case, basis, ok):
    """Bug caught: a case's statement of what its FWHM sd is accepted whatever it says, so a
    plan could claim a basis no calibration gave. Only the two bases a camera file can give
    are read; a case without one (written by hand, or before the key) is read as before."""
    from tareplanner.records.case import parse_case
    base_case["uncertainty"] = {"resolution": {
        "fwhm_mm": 14.0, "grid_fwhm_mm": [10.0, 14.0, 18.0], "tnr": {},
        "distribution": "normal", "sd_mm": 2.0, "sd_basis": basis}}
    if ok:
        assert parse_case(base_case).uncertainty["resolution"]["sd_basis"] == basis
    else:
        with pytest.raises(FieldValueError, match="uncertainty.resolution.sd_basis"):
            parse_case(base_case)
    del base_case["uncertainty"]["resolution"]["sd_basis"]
    assert "sd_basis" not in parse_case(base_case).uncertainty["resolution"]
