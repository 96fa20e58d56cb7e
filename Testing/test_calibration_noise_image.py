"""``calibrate --noise-image``: the PSF from one reconstruction of the phantom scan (e.g. to
convergence), the background variability (the noise law a patient's TNRs, LSF and doses are
scaled from) from the reconstruction the patients get.

Bugs these must catch: the noise image ignored (the law measured on --image), the PSF or the
recoveries taken from the noise image, the noise image not recorded by its hash, and a noise
image that is missing or not on the phantom's CT accepted. Expected values come from
calibrating each image alone (the background variability itself is checked against Poisson
statistics by hand in test_reconstruction_noise.py) and from hashlib."""

from __future__ import annotations

import hashlib
import json

import pytest
import SimpleITK as sitk

from tareplanner.cli.main import main

CONCENTRATIONS = ["--nuclide", "Tc-99m", "--sphere-kbq-ml", "40", "--background-kbq-ml", "5"]


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    root = tmp_path_factory.mktemp("iec")
    assert main(["phantom", str(root / "noisy"), "--iec", "--fwhm-mm", "10"]) == 0
    assert main(["phantom", str(root / "clean"), "--iec", "--fwhm-mm", "10", "--no-noise"]) == 0
    return root


def _calibrate(root, out, image, *extra) -> int:
    """Calibrate on the noisy phantom's CT, the spheres at their true centres (truth.json), so
    that every calibration places the same background regions."""
    spheres = json.loads((root / "noisy" / "truth.json").read_text())["spheres"]
    centres = ";".join(",".join(f"{c:.3f}" for c in s["centre_mm"]) for s in spheres)
    return main(["calibrate", "--ct", str(root / "noisy" / "ct.nii.gz"), "--image",
                 str(root / image / "image.nii.gz"), *CONCENTRATIONS,
                 "--sphere-centres-mm", centres, *extra, "-o", str(out)])


@pytest.fixture(scope="module")
def cameras(phantoms, tmp_path_factory):
    out = tmp_path_factory.mktemp("cameras")
    noise = str(phantoms / "noisy" / "image.nii.gz")
    assert _calibrate(phantoms, out / "both.json", "clean", "--noise-image", noise) == 0
    assert _calibrate(phantoms, out / "noisy.json", "noisy") == 0
    assert _calibrate(phantoms, out / "clean.json", "clean") == 0
    return {k: json.loads((out / f"{k}.json").read_text()) for k in ("both", "noisy", "clean")}


def test_noise_law_from_the_noise_image_psf_from_the_image(cameras):
    both, noisy, clean = cameras["both"], cameras["noisy"], cameras["clean"]
    law = dict(both["roi_noise"])
    assert law.pop("measured_on").startswith("--noise-image")
    assert noisy["roi_noise"].pop("measured_on") == "--image"
    assert law == noisy["roi_noise"]
    assert both["psf"] == clean["psf"]
    assert both["spheres"] == clean["spheres"]
    # the noise-free image's own background variability is far smaller than the noisy one's
    assert clean["roi_noise"]["model"]["coefficient"] < 0.5 * law["model"]["coefficient"]


def test_the_noise_image_is_recorded_by_its_hash(cameras, phantoms):
    path = phantoms / "noisy" / "image.nii.gz"
    recorded = cameras["both"]["inputs"]["noise_image"]
    assert recorded["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert recorded["units"] == "counts"
    assert "noise_image" not in cameras["noisy"]["inputs"]


def test_a_missing_noise_image_is_refused_by_name(phantoms, tmp_path, capsys):
    out = tmp_path / "camera.json"
    assert _calibrate(phantoms, out, "clean", "--noise-image",
                      str(tmp_path / "absent.nii.gz")) == 2
    assert "--noise-image" in capsys.readouterr().err
    assert not out.exists()


def test_a_noise_image_off_the_ct_is_refused_by_name(phantoms, tmp_path, capsys):
    image = sitk.ReadImage(str(phantoms / "noisy" / "image.nii.gz"))
    image.SetOrigin(tuple(o + 2000.0 for o in image.GetOrigin()))
    moved = tmp_path / "moved.nii.gz"
    sitk.WriteImage(image, str(moved))
    out = tmp_path / "camera.json"
    assert _calibrate(phantoms, out, "clean", "--noise-image", str(moved)) == 2
    assert "--noise-image" in capsys.readouterr().err
    assert not out.exists()


def test_a_noise_free_phantom_calibrates(cameras):
    """Bug caught: a noise-free Gaussian image (whose core-plus-tail fit cannot determine a
    tail) refused with 'a value that is not JSON' (NaN standard uncertainties). Truth: the
    phantom's 10 mm Gaussian blur."""
    clean = cameras["clean"]
    assert clean["psf"]["model"] == "gaussian"
    assert clean["psf"]["fwhm_mm"] == pytest.approx(10.0, abs=0.1)
    tail = clean["fits"]["core-plus-tail"]["standard_uncertainties"]
    assert all(v is None or v >= 0 for v in tail.values())


def test_a_psf_without_uncertainty_is_refused_by_name(phantoms, tmp_path, capsys,
                                                     monkeypatch):
    """Bug caught: a camera file whose PSF has no uncertainty (NaN: a singular information
    matrix) written, or refused with a message that names no field. The fit is made to
    return NaN for every standard uncertainty, as numpy's inverse does for a singular
    matrix."""
    import dataclasses

    from tareplanner.imaging import calibration

    real = calibration.fit_psf

    def singular(*args, **kwargs):
        fit = real(*args, **kwargs)
        return dataclasses.replace(fit, standard_uncertainties={
            k: float("nan") for k in fit.standard_uncertainties})

    monkeypatch.setattr(calibration, "fit_psf", singular)
    out = tmp_path / "camera.json"
    assert _calibrate(phantoms, out, "clean") == 2
    err = capsys.readouterr().err
    assert "--image" in err and "fwhm_mm has no standard uncertainty" in err
    assert "--model gaussian" in err
    assert not out.exists()
