"""Convergence of the phantom's reconstruction (``calibrate --more-iterations-image``).

OSEM converges more slowly in the IEC phantom's warm background than in a patient whose
activity is concentrated in the liver (docs/imaging.md, 'Convergence'): a camera file
fitted on a phantom that had not converged over-corrects the patient. The check fits the
same phantom reconstructed with more iterations; the truth here is the FWHM each synthetic
image was blurred with (scipy-independent of the fit: phantom --fwhm-mm).
"""

import json
import math

import numpy as np
import pytest

from conftest import REPO
from tareplanner.cli.main import main
from tareplanner.imaging.camera_file import (CONVERGENCE_BASIS, FIT_BASIS, SPREAD_BASIS,
                                             camera_resolution, fwhm_uncertainty)
from tareplanner.imaging.calibration import calibration_data


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """The IEC phantom imaged with 12 mm, 9 mm and (another noise seed) 12 mm Gaussians."""
    root = tmp_path_factory.mktemp("iec")
    out = {}
    for key, fwhm, seed in (("12", "12", "1"), ("9", "9", "2"), ("12b", "12", "3")):
        out[key] = root / key
        assert main(["phantom", str(out[key]), "--iec", "--fwhm-mm", fwhm,
                     "--seed", seed]) == 0
    return out


def _calibrate(images, protocol, more, out, *extra):
    args = ["calibrate", "--ct", str(images[protocol] / "ct.nii.gz"),
            "--image", str(images[protocol] / "image.nii.gz"), "--nuclide", "Tc-99m",
            "--sphere-kbq-ml", "40", "--background-kbq-ml", "5", "-o", str(out),
            "--model", "gaussian", *extra]
    if more:
        args += ["--more-iterations-image", str(images[more] / "image.nii.gz")]
    return main(args)


@pytest.fixture(scope="module")
def not_converged(images, tmp_path_factory):
    out = tmp_path_factory.mktemp("cam") / "not_converged.json"
    assert _calibrate(images, "12", "9", out) == 0
    return json.loads(out.read_text()), out


def _schema():
    return json.loads((REPO / "docs" / "schemas" / "camera-1.schema.json").read_text())


def test_a_converged_reconstruction_passes(images, tmp_path):
    """Bug caught: a reconstruction that has converged (the same 12 mm, another noise
    realisation) flagged, or its check not recorded. Truth: 12 and 12 mm; the noise moves
    each fit by about 0.1 mm."""
    import jsonschema
    out = tmp_path / "cam.json"
    assert _calibrate(images, "12", "12b", out) == 0
    doc = json.loads(out.read_text())
    c = doc["convergence"]
    assert c["effective_fwhm_mm"] == pytest.approx(12.0, abs=0.3)
    assert c["more_iterations_effective_fwhm_mm"] == pytest.approx(12.0, abs=0.3)
    assert abs(c["change_mm"]) < 0.3 and c["converged"] is True
    assert c["limit_mm"] == 1.0
    assert "camera-not-converged" not in {w["code"] for w in doc["warnings"]}
    assert "fwhm_convergence_mm" not in doc["psf"]
    assert doc["inputs"]["more_iterations_image"]["source"].endswith("12b/image.nii.gz")
    assert len(doc["inputs"]["more_iterations_image"]["sha256"]) == 64
    jsonschema.validate(doc, _schema())
    assert camera_resolution(doc, "cam.json")["fwhm_sd_basis"] == FIT_BASIS


def test_a_reconstruction_still_changing_is_flagged_and_carried(not_converged):
    """Bug caught: a phantom whose fitted FWHM still changes with more iterations (here 12
    against 9 mm: a change of 3 mm, by hand) passed without a warning, the change lost, or
    not carried into the Monte Carlo. The 9 mm image's recovery of the 37 mm sphere is
    higher than the 12 mm image's."""
    import jsonschema
    doc, _ = not_converged
    c = doc["convergence"]
    assert c["change_mm"] == pytest.approx(3.0, abs=0.3)
    assert c["converged"] is False
    (warning,) = [w for w in doc["warnings"] if w["code"] == "camera-not-converged"]
    assert f"{c['effective_fwhm_mm']:.2f} mm with the protocol's iterations" in \
        warning["message"]
    assert f"{c['more_iterations_effective_fwhm_mm']:.2f} mm with more" in warning["message"]
    assert "above 1 mm" in warning["message"]
    assert doc["psf"]["fwhm_convergence_mm"] == pytest.approx(abs(c["change_mm"]), rel=1e-12)
    assert c["recovery_more_iterations"][-1] > doc["spheres"][-1]["recovery_measured"]
    jsonschema.validate(doc, _schema())
    read = camera_resolution(doc, "cam.json")
    assert read["fwhm_sd_basis"] == CONVERGENCE_BASIS
    assert read["fwhm_sd_mm"] == pytest.approx(abs(c["change_mm"]), rel=1e-12)
    assert read["fwhm_fit_sd_mm"] == doc["psf"]["fwhm_sd_mm"]
    assert "the change is carried" in read["fwhm_sd_reason"]
    assert any(w["code"] == "camera-not-converged" for w in read["camera"]["warnings"])


def test_a_change_either_way_counts(images, tmp_path):
    """Bug caught: only a narrowing FWHM checked (the change's sign kept): a protocol image
    sharper than the one with more iterations (9 against 12 mm, -3 mm) is as unconverged."""
    out = tmp_path / "cam.json"
    assert _calibrate(images, "9", "12", out) == 0
    doc = json.loads(out.read_text())
    assert doc["convergence"]["change_mm"] == pytest.approx(-3.0, abs=0.3)
    assert doc["convergence"]["converged"] is False
    assert doc["psf"]["fwhm_convergence_mm"] == pytest.approx(3.0, abs=0.3)


@pytest.mark.parametrize("offset, converged", [(0.0, True), (-1e-9, False), (1e-9, True)])
def test_the_limit_at_and_either_side(images, not_converged, monkeypatch, tmp_path, offset,
                                      converged):
    """Bug caught: the limit taken as < instead of <=, or off by any amount: with the limit
    set to the measured change itself the reconstruction passes, just below it fails."""
    change = abs(not_converged[0]["convergence"]["change_mm"])
    monkeypatch.setitem(calibration_data()["convergence_change_max_mm"], "value",
                        change + offset)
    out = tmp_path / "cam.json"
    assert _calibrate(images, "12", "9", out) == 0
    doc = json.loads(out.read_text())
    assert doc["convergence"]["converged"] is converged
    assert ("camera-not-converged" in {w["code"] for w in doc["warnings"]}) is not converged


def test_the_change_is_carried_only_where_larger_by_hand():
    """Bug caught: the change carried without the warning, when smaller than the spread or
    the fit's, on a tie, or unscaled for a core-plus-tail PSF. By hand: 80 % 10 mm + 20 %
    30 mm has an effective FWHM sqrt(0.8 x 100 + 0.2 x 900) = 16.125 mm, so a 2.5 mm change
    of it is 2.5 x 10 / 16.125 = 1.5504 mm of the core."""
    gaussian = [(1.0, 10.0)]
    plain = fwhm_uncertainty(0.5, None, False, 10.0, gaussian)
    assert "fwhm_convergence_mm" not in plain and plain["fwhm_sd_mm"] == 0.5
    over = fwhm_uncertainty(0.5, None, False, 10.0, gaussian, convergence_mm=2.5)
    assert (over["fwhm_sd_mm"], over["fwhm_sd_basis"]) == (2.5, CONVERGENCE_BASIS)
    assert over["fwhm_fit_sd_mm"] == 0.5
    under = fwhm_uncertainty(0.5, 3.0, True, 10.0, gaussian, convergence_mm=2.5)
    assert (under["fwhm_sd_mm"], under["fwhm_sd_basis"]) == (3.0, SPREAD_BASIS)
    assert "is not larger" in under["fwhm_sd_reason"]
    tie = fwhm_uncertainty(0.5, None, False, 10.0, gaussian, convergence_mm=0.5)
    assert (tie["fwhm_sd_mm"], tie["fwhm_sd_basis"]) == (0.5, FIT_BASIS)
    tailed = fwhm_uncertainty(0.5, None, False, 10.0, [(0.8, 10.0), (0.2, 30.0)],
                              convergence_mm=2.5)
    assert tailed["fwhm_sd_mm"] == pytest.approx(2.5 * 10.0 / math.sqrt(260.0), rel=1e-12)
    assert tailed["fwhm_sd_mm"] == pytest.approx(1.5504, abs=1e-4)
    assert "1.55 mm of the core FWHM" in tailed["fwhm_sd_reason"]


def _hand_built(change_mm, warned=True, fit_sd_mm=0.5):
    """A camera file by hand: a 12 mm Gaussian, its fit uncertainty ``fit_sd_mm`` and a
    convergence change of ``change_mm`` (with its warning when ``warned``)."""
    return {"schema": "tareplanner.camera/1", "modality": "SPECT", "nuclide": "Tc-99m",
            "psf": {"model": "gaussian", "components": [{"weight": 1.0, "fwhm_mm": 12.0}],
                    "fwhm_mm": 12.0, "fwhm_sd_mm": fit_sd_mm,
                    "fwhm_convergence_mm": change_mm},
            "warnings": [{"code": "camera-not-converged", "message": "m"}] if warned else []}


def test_a_hand_built_change_is_read_and_carried():
    """Bug caught: the reader dropping the change, reading another key, or carrying it
    without comparing it with the fit's uncertainty. By hand: 2.5 mm against 0.5 mm: 2.5;
    0.4 against 0.5: 0.5; 0 (allowed) against 0.5: 0.5; 50 mm (the top) allowed."""
    read = camera_resolution(_hand_built(2.5), "cam.json")
    assert (read["fwhm_sd_mm"], read["fwhm_sd_basis"]) == (2.5, CONVERGENCE_BASIS)
    assert read["fwhm_convergence_mm"] == 2.5 and read["fwhm_fit_sd_mm"] == 0.5
    small = camera_resolution(_hand_built(0.4), "cam.json")
    assert (small["fwhm_sd_mm"], small["fwhm_sd_basis"]) == (0.5, FIT_BASIS)
    zero = camera_resolution(_hand_built(0.0), "cam.json")
    assert (zero["fwhm_sd_mm"], zero["fwhm_sd_basis"]) == (0.5, FIT_BASIS)
    assert camera_resolution(_hand_built(50.0), "cam.json")["fwhm_sd_mm"] == 50.0


def test_a_hand_built_change_without_the_warning_is_not_carried():
    """Bug caught: the reader carrying a change the calibration did not warn about (a file
    edited, or the limit raised later), or another warning taken for it."""
    read = camera_resolution(_hand_built(2.5, warned=False), "cam.json")
    assert (read["fwhm_sd_mm"], read["fwhm_sd_basis"]) == (0.5, FIT_BASIS)
    assert "fwhm_convergence_mm" not in read
    doc = _hand_built(2.5, warned=False)
    doc["warnings"] = [{"code": "camera-recovery-misfit", "message": "m"}]
    assert camera_resolution(doc, "cam.json")["fwhm_sd_basis"] != CONVERGENCE_BASIS


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.5, 50.5, "3 mm", True])
def test_a_hand_built_impossible_change_is_refused(value):
    """Bug caught: a NaN, infinite, negative, above-50 mm or non-number change read into
    the Monte Carlo's FWHM uncertainty; the field not named."""
    from tareplanner.errors import FieldValueError
    with pytest.raises(FieldValueError) as caught:
        camera_resolution(_hand_built(value), "cam.json")
    assert str(caught.value) == (
        f"--camera cam.json:psf:fwhm_convergence_mm: got {value!r}; allowed: a finite number "
        ">= 0 and <= 50 mm (at most the widest FWHM a camera gives)")


def test_a_bad_more_iterations_image_is_refused(images, tmp_path, capsys):
    """Bug caught: a missing second image, or one that does not lie on the phantom's CT,
    read anyway or failing with a traceback; anything written."""
    import SimpleITK as sitk
    far = sitk.ReadImage(str(images["9"] / "image.nii.gz"))
    far.SetOrigin(tuple(v + 5000.0 for v in far.GetOrigin()))
    sitk.WriteImage(far, str(tmp_path / "far.nii.gz"))
    out = tmp_path / "cam.json"
    for bad in ("missing.nii.gz", "far.nii.gz"):
        code = main(["calibrate", "--ct", str(images["12"] / "ct.nii.gz"), "--image",
                     str(images["12"] / "image.nii.gz"), "--nuclide", "Tc-99m",
                     "--sphere-kbq-ml", "40", "--background-kbq-ml", "5", "-o", str(out),
                     "--more-iterations-image", str(tmp_path / bad)])
        assert code == 2 and not out.exists()
        assert "--more-iterations-image" in capsys.readouterr().err


def test_measure_repeats_the_warning_and_carries_the_change(not_converged, phantom_dir,
                                                            tmp_path):
    """Bug caught: a measurement corrected with an unconverged camera file without its
    warning, or its case's resolution uncertainty still the fit's."""
    from tareplanner.records.case import parse_case
    doc, path = not_converged
    from conftest import measure_small_patient
    out = tmp_path / "m"
    assert measure_small_patient(phantom_dir, out, "--camera", str(path)) == 0
    measurement = json.loads((out / "measurement.json").read_text())
    (warning,) = [w for w in measurement["warnings"] if w["code"] == "camera-not-converged"]
    assert str(path) in warning["message"]
    case = json.loads((out / "case.json").read_text())
    resolution = case["uncertainty"]["resolution"]
    assert resolution["sd_basis"] == CONVERGENCE_BASIS
    assert resolution["sd_mm"] == pytest.approx(doc["psf"]["fwhm_convergence_mm"], rel=1e-6)
    assert parse_case(case).uncertainty["resolution"]["sd_basis"] == CONVERGENCE_BASIS
    assert np.isfinite(resolution["sd_mm"])


@pytest.mark.parametrize("args", [["--iec"], ["--size", "small"]])
def test_iterations_without_a_realistic_model_are_refused(tmp_path, capsys, args):
    """Bug caught: ``phantom --iterations`` given to the Gaussian model (which has no
    reconstruction) silently ignored: exit 2, the option named, nothing written."""
    out = tmp_path / "out"
    assert main(["phantom", str(out), *args, "--iterations", "8"]) == 2
    err = capsys.readouterr().err
    assert "--iterations" in err and "only with the realistic model" in err
    assert not out.exists()


@pytest.mark.parametrize("spread, misfit, change, components, reason", [
    (None, False, None, [(1.0, 10.0)],
     "no recovery-misfit warning: the spheres follow the fitted PSF "
     "(data/camera_calibration.json recovery_misfit_max), so its fit uncertainty is carried"),
    (None, True, None, [(1.0, 10.0)],
     "recovery-misfit warning, but the camera file holds no spread of the spheres' equivalent "
     "FWHMs (written before it was computed, or fewer than two spheres have one): the fit "
     "uncertainty is carried, and may understate the resolution's"),
    (3.0, True, None, [(1.0, 10.0)],
     "recovery-misfit warning: the spheres' equivalent FWHMs spread by 3.00 mm (sd), more "
     "than the fit uncertainty 0.50 mm; the spread is carried"),
    (0.25, True, None, [(1.0, 10.0)],
     "recovery-misfit warning, but the spheres' equivalent FWHMs spread by only 0.25 mm (sd), "
     "not more than the fit uncertainty 0.50 mm; the fit uncertainty is carried"),
    (None, False, 2.5, [(1.0, 10.0)],
     "camera-not-converged warning: the phantom's effective FWHM changed by 2.50 mm with more "
     "iterations, more than the 0.50 mm otherwise carried (fit uncertainty); the change is "
     "carried"),
    (None, False, 2.5, [(0.8, 10.0), (0.2, 30.0)],
     "camera-not-converged warning: the phantom's effective FWHM changed by 2.50 mm with more "
     "iterations, 1.55 mm of the core FWHM, more than the 0.50 mm otherwise carried (fit "
     "uncertainty); the change is carried"),
    (3.0, True, 2.5, [(1.0, 10.0)],
     "recovery-misfit warning: the spheres' equivalent FWHMs spread by 3.00 mm (sd), more "
     "than the fit uncertainty 0.50 mm; the spread is carried; camera-not-converged warning, "
     "but the FWHM's change with more iterations (2.50 mm) is not larger"),
])
def test_the_carried_uncertainty_says_why_word_for_word(spread, misfit, change, components,
                                                        reason):
    """Bug caught: the record's reason for the carried FWHM uncertainty saying another rule
    than the one applied (the plan text and the panels quote it), a Gaussian's change
    described as scaled to a core, or the convergence sentence replacing the spread's
    instead of adding to it."""
    got = fwhm_uncertainty(0.5, spread, misfit, 10.0, components, convergence_mm=change)
    assert got["fwhm_sd_reason"] == reason


def test_a_hand_built_file_with_spread_change_or_tail_is_read_by_its_rules():
    """Bug caught: the reader passing the camera's misfit, spread or core FWHM wrongly to
    the carrying rule, or failing on a file written without a convergence check. By hand:
    a misfit spread of 3 mm beats a 2.5 mm change; without the misfit warning the change is
    carried; a core-plus-tail PSF 80 % 10 mm + 20 % 30 mm carries 2.5 x 10 / sqrt(260)."""
    both = _hand_built(2.5)
    both["psf"]["fwhm_spread_mm"] = 3.0
    both["warnings"].append({"code": "camera-recovery-misfit", "message": "m"})
    read = camera_resolution(both, "cam.json")
    assert (read["fwhm_sd_mm"], read["fwhm_sd_basis"]) == (3.0, SPREAD_BASIS)
    assert read["fwhm_convergence_mm"] == 2.5
    no_misfit = _hand_built(2.5)
    no_misfit["psf"]["fwhm_spread_mm"] = 3.0
    assert camera_resolution(no_misfit, "cam.json")["fwhm_sd_mm"] == 2.5
    tailed = _hand_built(2.5)
    tailed["psf"].update(model="core-plus-tail", fwhm_mm=10.0,
                         components=[{"weight": 0.8, "fwhm_mm": 10.0},
                                     {"weight": 0.2, "fwhm_mm": 30.0}])
    assert camera_resolution(tailed, "cam.json")["fwhm_sd_mm"] == pytest.approx(
        2.5 * 10.0 / math.sqrt(260.0), rel=1e-12)
    older = _hand_built(None, warned=False)
    del older["psf"]["fwhm_convergence_mm"]
    read = camera_resolution(older, "cam.json")
    assert (read["fwhm_sd_mm"], read["fwhm_sd_basis"]) == (0.5, FIT_BASIS)
