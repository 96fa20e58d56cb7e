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


@pytest.mark.parametrize("changes, field", [
    ({"schema": "tareplanner.camera/2"}, "c.json:schema"),
    ({"modality": "CT"}, "c.json:modality"),
    ({"nuclide": 99}, "c.json:nuclide"),
    ({"psf": "12 mm"}, "c.json:psf"),
    ({"psf__fwhm_mm": float("nan")}, "c.json:psf.fwhm_mm"),
    ({"psf__fwhm_mm": 0.0}, "c.json:psf.fwhm_mm"),
    ({"psf__fwhm_mm": 50.5}, "c.json:psf.fwhm_mm"),
    ({"psf__fwhm_sd_mm": -0.1}, "c.json:psf:fwhm_sd_mm"),
    ({"psf__fwhm_sd_mm": 50.5}, "c.json:psf:fwhm_sd_mm"),
    ({"psf__fwhm_sd_mm": _DROP}, "c.json:psf:fwhm_sd_mm"),
    ({"psf__components": []}, "c.json:psf.components"),
    ({"psf__components": "10 mm"}, "c.json:psf.components"),
    ({"psf__components": [{"weight": 0.0, "fwhm_mm": 10.0}, {"weight": 1.0, "fwhm_mm": 30.0}]},
     "c.json:psf.components[0]:weight"),
    ({"psf__components": [{"weight": 0.85, "fwhm_mm": -1.0}, {"weight": 0.15, "fwhm_mm": 30.0}]},
     "c.json:psf.components[0]:fwhm_mm"),
    ({"psf__components": [{"weight": 0.85, "fwhm_mm": 10.0}, {"weight": 0.15, "fwhm_mm": 400.5}]},
     "c.json:psf.components[1]:fwhm_mm"),
    ({"psf__components": [{"weight": 0.85, "fwhm_mm": 10.0}, {"weight": 0.16, "fwhm_mm": 30.0}]},
     "c.json:psf.components"),
    ({"warnings": "none"}, "c.json:warnings"),
    ({"warnings": [{"code": "x"}]}, "c.json:warnings"),
    ({"warnings": [{"code": 1, "message": "m"}]}, "c.json:warnings"),
    ({"roi_noise": "0.1"}, "c.json:roi_noise"),
    ({"roi_noise__model": None}, "c.json:roi_noise"),
    ({"roi_noise__model__coefficient": 0.0}, "c.json:roi_noise.model:coefficient"),
    ({"roi_noise__model__coefficient": 10.5}, "c.json:roi_noise.model:coefficient"),
    ({"roi_noise__model__exponent": -0.01}, "c.json:roi_noise.model:exponent"),
    ({"roi_noise__model__exponent": 1.01}, "c.json:roi_noise.model:exponent"),
    ({"roi_noise__reference_total": 0.0}, "c.json:roi_noise:reference_total"),
    ({"roi_noise__total_units": "kBq"}, "c.json:roi_noise:total_units"),
    ({"roi_noise__model__volume_range_ml": [26.5, 0.52]},
     "c.json:roi_noise.model:volume_range_ml"),
    ({"roi_noise__model__volume_range_ml": [0.0, 26.5]},
     "c.json:roi_noise.model:volume_range_ml"),
    ({"roi_noise__model__volume_range_ml": [0.52]}, "c.json:roi_noise.model:volume_range_ml"),
    ({"roi_noise__model__volume_range_ml": [True, 26.5]},
     "c.json:roi_noise.model:volume_range_ml"),
    ({"roi_noise__model__volume_range_ml": [0.52, float("inf")]},
     "c.json:roi_noise.model:volume_range_ml"),
    ({"roi_noise__acquisition_s": 0.0}, "c.json:roi_noise:acquisition_s"),
    ({"roi_noise__acquisition_s": 86400.5}, "c.json:roi_noise:acquisition_s"),
])
def test_every_bad_key_is_refused_by_name(changes, field):
    """Bug caught: a camera file with a NaN, zero, negative, too wide or missing value, a
    list of the wrong shape, or weights not summing to 1 read into the correction or the
    noise: refused, naming the key."""
    with pytest.raises((FieldValueError, SchemaError)) as caught:
        camera_resolution(_doc(**changes), "c.json")
    message = str(caught.value)
    assert message.startswith(f"--camera {field}: got ") and "; allowed: " in message, message


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
    for name, content in (("empty.json", b""), ("cut.json", raw[:40]),
                          ("latin.json", b"\xff\xfe{"), ("list.json", b"[1, 2]")):
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises((FieldValueError, SchemaError)) as caught:
            read_camera_file(str(bad))
        assert "--camera" in str(caught.value)
    with pytest.raises(FieldValueError, match="--camera"):
        read_camera_file(str(tmp_path / "missing.json"))
    nan = tmp_path / "nan.json"
    nan.write_text(json.dumps(_doc()).replace('"fwhm_mm": 10.0, "fwhm_sd_mm"',
                                              '"fwhm_mm": NaN, "fwhm_sd_mm"'))
    with pytest.raises(FieldValueError, match="psf.fwhm_mm"):
        read_camera_file(str(nan))
    assert math.isfinite(read["fwhm_mm"])
