"""The camera file's reader on hand-built files: what it gives back, and every refusal.

A camera file (``tareplanner.camera/1``) is an input a site may have edited, copied from
another camera or truncated: every key the correction and the Monte Carlo use is checked,
and a bad one refused naming the key, the value and what is allowed. The expected values
are the file's own numbers (by hand), not another run of the code.
"""

import copy
import json
import math

import pytest

from tareplanner.errors import FieldValueError, SchemaError
from tareplanner.imaging.camera_file import (camera_resolution, camera_warnings,
                                             read_camera_file, roi_noise_of)

BASE = {
    "schema": "tareplanner.camera/1", "name": "room 2", "modality": "SPECT",
    "nuclide": "Tc-99m", "reconstruction": "OSEM 4i10s", "date": "2026-12-01",
    "psf": {"model": "core-plus-tail",
            "components": [{"weight": 0.85, "fwhm_mm": 10.0}, {"weight": 0.15, "fwhm_mm": 30.0}],
            "fwhm_mm": 10.0, "fwhm_sd_mm": 0.5},
    "roi_noise": {"model": {"coefficient": 0.1, "exponent": 0.3,
                            "volume_range_ml": [0.52, 26.5]},
                  "reference_total": 4.0e6, "total_units": "counts", "acquisition_s": 2400.0},
    "warnings": [{"code": "no-acquisition-time", "message": "as given"}],
}


def _doc(**changes):
    doc = copy.deepcopy(BASE)
    for path, value in changes.items():
        *parents, key = path.split("__")
        target = doc
        for p in parents:
            target = target[p]
        if value is _DROP:
            target.pop(key, None)
        else:
            target[key] = value
    return doc


_DROP = object()


def test_a_good_file_gives_its_own_numbers():
    """Bug caught: a value read from the wrong key, a component lost or reordered, the noise
    law's numbers changed on the way, the file's warnings not passed on with its name."""
    read = camera_resolution(_doc(), "cam.json", nuclide="Tc-99m", modality="SPECT",
                             sha256="ab" * 32)
    assert read["fwhm_mm"] == 10.0 and read["fwhm_sd_mm"] == 0.5
    assert read["psf_components"] == [[0.85, 10.0], [0.15, 30.0]]
    assert read["psf_model"] == "core-plus-tail" and read["assumed"] is False
    assert read["roi_noise"] == {"coefficient": 0.1, "exponent": 0.3,
                                 "reference_total": 4.0e6, "total_units": "counts",
                                 "acquisition_s": 2400.0, "volume_range_ml": [0.52, 26.5]}
    assert read["camera"]["sha256"] == "ab" * 32 and read["camera"]["name"] == "room 2"
    assert read["camera"]["reconstruction"] == "OSEM 4i10s"
    assert (read["camera"]["modality"], read["camera"]["nuclide"], read["camera"]["date"]) == (
        "SPECT", "Tc-99m", "2026-12-01")
    assert read["camera"]["file"] == "cam.json"
    assert read["source"] == ("camera file room 2 (SPECT Tc-99m, IEC phantom calibration of "
                              "2026-12-01)")
    assert read["chosen_by"] == "camera file cam.json"
    assert camera_warnings(read) == [{"code": "no-acquisition-time",
                                      "message": "camera file cam.json: as given"}]
    assert camera_warnings(None) == []


def test_the_name_falls_back_to_the_reconstruction_then_the_path():
    """Bug caught: a camera file without a name shown as None in the records."""
    assert camera_resolution(_doc(name=None), "c.json")["source"].startswith(
        "camera file OSEM 4i10s (")
    assert camera_resolution(_doc(name=None, reconstruction=None), "c.json")[
        "source"].startswith("camera file c.json (")


def test_a_file_without_noise_is_read_without_it():
    """Bug caught: a camera file written before the background variability refused, or
    given a made-up noise law."""
    read = camera_resolution(_doc(roi_noise=_DROP), "c.json")
    assert "roi_noise" not in read
    assert roi_noise_of(_doc(roi_noise__acquisition_s=None), "w")["acquisition_s"] is None


@pytest.mark.parametrize("changes, field, shown, allowed", [
    ({"schema": "tareplanner.camera/2"}, "c.json:schema", "'tareplanner.camera/2'",
     "tareplanner.camera/1"),
    ({"modality": "CT"}, "c.json:modality", "'CT'",
     "SPECT or PET"),
    ({"nuclide": 99}, "c.json:nuclide", "99",
     "the nuclide's name"),
    ({"psf": "12 mm"}, "c.json:psf", "'12 mm'",
     "an object with components, fwhm_mm and fwhm_sd_mm"),
    ({"psf__fwhm_mm": float("nan")}, "c.json:psf.fwhm_mm", "nan",
     "a FWHM in mm, > 0 and <= 50"),
    ({"psf__fwhm_mm": 0.0}, "c.json:psf.fwhm_mm", "0.0",
     "a FWHM in mm, > 0 and <= 50"),
    ({"psf__fwhm_mm": 50.5}, "c.json:psf.fwhm_mm", "50.5",
     "a FWHM in mm, > 0 and <= 50"),
    ({"psf__fwhm_sd_mm": -0.1}, "c.json:psf:fwhm_sd_mm", "-0.1",
     "a finite number >= 0 and <= 50 mm (at most the widest FWHM a camera gives)"),
    ({"psf__fwhm_sd_mm": 50.5}, "c.json:psf:fwhm_sd_mm", "50.5",
     "a finite number >= 0 and <= 50 mm (at most the widest FWHM a camera gives)"),
    ({"psf__fwhm_sd_mm": _DROP}, "c.json:psf:fwhm_sd_mm", "None",
     "a finite number >= 0 and <= 50 mm (at most the widest FWHM a camera gives)"),
    ({"psf__components": []}, "c.json:psf.components", "[]",
     "a list of {weight, fwhm_mm}"),
    ({"psf__components": "10 mm"}, "c.json:psf.components", "'10 mm'",
     "a list of {weight, fwhm_mm}"),
    ({"psf__components": [{"weight": 0.0, "fwhm_mm": 10.0}, {"weight": 1.0, "fwhm_mm": 30.0}]},
     "c.json:psf.components[0]:weight", "0.0",
     "a finite number > 0"),
    ({"psf__components": [{"weight": 0.85, "fwhm_mm": -1.0}, {"weight": 0.15, "fwhm_mm": 30.0}]},
     "c.json:psf.components[0]:fwhm_mm", "-1.0",
     "a finite number > 0"),
    ({"psf__components": [{"weight": 0.85, "fwhm_mm": 10.0}, {"weight": 0.15, "fwhm_mm": 400.5}]},
     "c.json:psf.components[1]:fwhm_mm", "400.5",
     "a FWHM > 0 and <= 400 mm"),
    ({"psf__components": [{"weight": 0.85, "fwhm_mm": 10.0}, {"weight": 0.16, "fwhm_mm": 30.0}]},
     "c.json:psf.components", "[0.85, 0.16]",
     "weights summing to 1"),
    ({"warnings": "none"}, "c.json:warnings", "'none'",
     "a list of {code, message} (the calibration's warnings)"),
    ({"warnings": [{"code": "x"}]}, "c.json:warnings", "[{'code': 'x'}]",
     "a list of {code, message} (the calibration's warnings)"),
    ({"warnings": [{"code": 1, "message": "m"}]}, "c.json:warnings",
     "[{'code': 1, 'message': 'm'}]",
     "a list of {code, message} (the calibration's warnings)"),
    ({"roi_noise": "0.1"}, "c.json:roi_noise", "'0.1'",
     "an object with model and reference_total"),
    ({"roi_noise__model": None}, "c.json:roi_noise",
     "{'model': None, 'reference_total': 4000000.0, 'total_units': 'counts', "
     "'acquisition_s': 2400.0}",
     "an object with model and reference_total"),
    ({"roi_noise__model__coefficient": 0.0}, "c.json:roi_noise.model:coefficient", "0.0",
     "a finite number > 0 and <= 10 (a relative SD)"),
    ({"roi_noise__model__coefficient": 10.5}, "c.json:roi_noise.model:coefficient", "10.5",
     "a finite number > 0 and <= 10 (a relative SD)"),
    ({"roi_noise__model__exponent": -0.01}, "c.json:roi_noise.model:exponent", "-0.01",
     "a finite number >= 0 and <= 1"),
    ({"roi_noise__model__exponent": 1.01}, "c.json:roi_noise.model:exponent", "1.01",
     "a finite number >= 0 and <= 1"),
    ({"roi_noise__reference_total": 0.0}, "c.json:roi_noise:reference_total", "0.0",
     "a finite number > 0"),
    ({"roi_noise__total_units": "kBq"}, "c.json:roi_noise:total_units", "'kBq'",
     "counts or Bq"),
    ({"roi_noise__model__volume_range_ml": [26.5, 0.52]},
     "c.json:roi_noise.model:volume_range_ml", "[26.5, 0.52]",
     "[smallest, largest] sphere volume in mL, both > 0"),
    ({"roi_noise__model__volume_range_ml": [0.0, 26.5]},
     "c.json:roi_noise.model:volume_range_ml", "[0.0, 26.5]",
     "[smallest, largest] sphere volume in mL, both > 0"),
    ({"roi_noise__model__volume_range_ml": [0.52]}, "c.json:roi_noise.model:volume_range_ml",
     "[0.52]",
     "[smallest, largest] sphere volume in mL, both > 0"),
    ({"roi_noise__model__volume_range_ml": [True, 26.5]},
     "c.json:roi_noise.model:volume_range_ml", "[True, 26.5]",
     "[smallest, largest] sphere volume in mL, both > 0"),
    ({"roi_noise__model__volume_range_ml": [0.52, float("inf")]},
     "c.json:roi_noise.model:volume_range_ml", "[0.52, inf]",
     "[smallest, largest] sphere volume in mL, both > 0"),
    ({"roi_noise__acquisition_s": 0.0}, "c.json:roi_noise:acquisition_s", "0.0",
     "a finite number > 0 and <= 86400 s"),
    ({"roi_noise__acquisition_s": 86400.5}, "c.json:roi_noise:acquisition_s", "86400.5",
     "a finite number > 0 and <= 86400 s"),
])
def test_every_bad_key_is_refused_by_name(changes, field, shown, allowed):
    """Bug caught: a camera file with a NaN, zero, negative, too wide or missing value, a
    list of the wrong shape, or weights not summing to 1 read into the correction or the
    noise: refused, naming the key, the value and what is allowed."""
    with pytest.raises((FieldValueError, SchemaError)) as caught:
        camera_resolution(_doc(**changes), "c.json")
    message = str(caught.value)
    assert message == f"--camera {field}: got {shown}; allowed: {allowed}"


@pytest.mark.parametrize("changes", [
    {"psf__fwhm_mm": 50.0}, {"psf__fwhm_sd_mm": 0.0}, {"psf__fwhm_sd_mm": 50.0},
    {"psf__components": [{"weight": 0.85, "fwhm_mm": 10.0}, {"weight": 0.15, "fwhm_mm": 400.0}]},
    {"roi_noise__model__coefficient": 10.0}, {"roi_noise__model__exponent": 0.0},
    {"roi_noise__model__exponent": 1.0}, {"roi_noise__acquisition_s": 86400.0},
    {"roi_noise__model__volume_range_ml": [5.0, 5.0]}, {"roi_noise__total_units": "Bq"},
])
def test_the_edges_of_what_is_allowed_are_read(changes):
    """Bug caught: a limit applied one step too strictly (a 50 mm FWHM, a zero fit
    uncertainty, a 400 mm tail, exponents 0 and 1, a day-long scan, one volume)."""
    camera_resolution(_doc(**changes), "c.json")


def test_another_nuclide_or_modality_is_refused_by_name():
    """Bug caught: a camera file of another radionuclide or modality used to correct an
    image, the refusal not saying which it should have been."""
    with pytest.raises(FieldValueError, match=r"c.json:nuclide: got 'Tc-99m'.*Ho-166"):
        camera_resolution(_doc(), "c.json", nuclide="Ho-166")
    with pytest.raises(FieldValueError, match=r"c.json:modality: got 'SPECT'.*PET"):
        camera_resolution(_doc(), "c.json", modality="PET")


def test_the_file_on_disk_its_hash_and_its_hostile_forms(tmp_path):
    """Bug caught: the hash of another text than the file's bytes in the record; an empty,
    truncated, non-UTF-8, non-object or missing file failing with a traceback. Truth:
    hashlib of the bytes written."""
    import hashlib
    path = tmp_path / "cam.json"
    raw = json.dumps(_doc()).encode()
    path.write_bytes(raw)
    read = read_camera_file(str(path))
    assert read["camera"]["sha256"] == hashlib.sha256(raw).hexdigest()
    for name, content, allowed in (
            ("empty.json", b"", "a JSON camera file (Expecting value"),
            ("cut.json", raw[:40], "a JSON camera file ("),
            ("latin.json", b"\xff\xfe{", "a JSON camera file ('utf-8' codec can't decode"),
            ("list.json", b"[1, 2]", "a JSON object")):
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(SchemaError) as caught:
            read_camera_file(str(bad))
        shown = "'list'" if name == "list.json" else repr(str(bad))
        assert str(caught.value).startswith(f"--camera: got {shown}; allowed: {allowed}")
    missing = str(tmp_path / "missing.json")
    with pytest.raises(FieldValueError) as caught:
        read_camera_file(missing)
    assert str(caught.value) == (f"--camera: got {missing!r}; allowed: a readable camera file "
                                 "(No such file or directory)")
    nan = tmp_path / "nan.json"
    nan.write_text(json.dumps(_doc()).replace('"fwhm_mm": 10.0, "fwhm_sd_mm"',
                                              '"fwhm_mm": NaN, "fwhm_sd_mm"'))
    with pytest.raises(FieldValueError, match="psf.fwhm_mm"):
        read_camera_file(str(nan))
    assert math.isfinite(read["fwhm_mm"])


def test_a_component_that_is_not_an_object_is_refused_by_name():
    """Bug caught: a component written as a bare number failing with an AttributeError
    (a traceback) instead of a refusal naming it."""
    with pytest.raises(FieldValueError) as caught:
        camera_resolution(_doc(psf__components=[5, {"weight": 1.0, "fwhm_mm": 10.0}]), "c.json")
    assert str(caught.value) == ("--camera c.json:psf.components[0]:weight: got None; "
                                 "allowed: a finite number > 0")


def test_the_psf_a_resolution_stands_for_and_its_scaling_by_hand():
    """Bug caught: the tail lost (a Gaussian of the core used), the weights and FWHMs
    swapped, or the Monte Carlo's scaling applied to the core only. By hand: 85 % 10 mm +
    15 % 30 mm scaled to a 12 mm core is 85 % 12 mm + 15 % 36 mm; a plain FWHM is one
    Gaussian."""
    from tareplanner.imaging.camera_file import psf_of, scaled_psf
    read = camera_resolution(_doc(), "c.json")
    assert psf_of(read).components == ((0.85, 10.0), (0.15, 30.0))
    (w1, f1), (w2, f2) = scaled_psf(read, 12.0).components
    assert (w1, w2) == (0.85, 0.15)
    assert (f1, f2) == (pytest.approx(12.0, rel=1e-12), pytest.approx(36.0, rel=1e-12))
    plain = {"fwhm_mm": 14.0}
    assert psf_of(plain).components == ((1.0, 14.0),)
    assert scaled_psf(plain, 7.0).components == ((1.0, 7.0),)


def test_either_kind_of_camera_file_is_read_by_its_own_reader(tmp_path):
    """Bug caught: a calibration file read as a plain FWHM file (its PSF, uncertainty and
    checks lost) or the other way round, or another nuclide's calibration accepted."""
    from tareplanner.imaging.camera_file import read_resolution_file
    calibrated = tmp_path / "camera.json"
    calibrated.write_text(json.dumps(_doc()))
    read = read_resolution_file(str(calibrated), nuclide="Tc-99m", modality="SPECT")
    assert read["psf_components"] == [[0.85, 10.0], [0.15, 30.0]]
    with pytest.raises(FieldValueError) as caught:
        read_resolution_file(str(calibrated), nuclide="Ho-166")
    assert str(caught.value) == (f"--camera {calibrated}:nuclide: got 'Tc-99m'; allowed: "
                                 "Ho-166 (the image's radionuclide)")
    with pytest.raises(FieldValueError) as caught:
        read_resolution_file(str(calibrated), "--post-camera", modality="PET")
    assert str(caught.value).startswith(f"--post-camera {calibrated}:modality: got 'SPECT'")
    plain = tmp_path / "fwhm.json"
    plain.write_text(json.dumps({"fwhm_mm": 12.5, "source": "measured 2026-11-30"}))
    read = read_resolution_file(str(plain), "--spect-camera")
    assert read["fwhm_mm"] == 12.5 and "psf_components" not in read
    assert read["chosen_by"] == f"camera file {plain}"
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises((FieldValueError, SchemaError), match="--spect-camera"):
        read_resolution_file(str(broken), "--spect-camera")


@pytest.mark.parametrize("spread, ok", [(-0.1, False), (0.0, True), (50.0, True),
                                        (50.5, False), (float("nan"), False)])
def test_the_spread_at_and_beyond_its_range(spread, ok):
    """Bug caught: the spread's range applied one step off (0 and 50 mm are allowed), or a
    bad spread refused without its name, value and range."""
    doc = _doc(psf__fwhm_spread_mm=spread)
    if ok:
        assert camera_resolution(doc, "c.json")["fwhm_spread_mm"] == spread
        return
    with pytest.raises(FieldValueError) as caught:
        camera_resolution(doc, "c.json")
    assert str(caught.value) == (
        f"--camera c.json:psf:fwhm_spread_mm: got {spread!r}; allowed: a finite number >= 0 "
        "and <= 50 mm (at most the widest FWHM a camera gives)")


def test_a_psf_without_its_model_name_is_a_gaussian_and_names_pass_through(tmp_path):
    """Bug caught: a file without ``psf.model`` shown with another model; the reader of a
    file on disk losing the option's name, the path or the modality it must match."""
    assert camera_resolution(_doc(psf__model=_DROP), "c.json")["psf_model"] == "gaussian"
    path = tmp_path / "spect.json"
    path.write_text(json.dumps(_doc()))
    with pytest.raises(FieldValueError) as caught:
        read_camera_file(str(path), "post-treatment camera file", modality="PET")
    assert str(caught.value) == (
        f"post-treatment camera file {path}:modality: got 'SPECT'; allowed: PET (the camera "
        "file of the image it corrects)")
    nan = tmp_path / "nan.json"
    nan.write_text(json.dumps(_doc()).replace('"fwhm_sd_mm": 0.5', '"fwhm_sd_mm": NaN'))
    with pytest.raises(FieldValueError) as caught:
        read_camera_file(str(nan))
    assert str(caught.value).startswith(f"--camera {nan}:psf:fwhm_sd_mm: got nan; allowed: ")
