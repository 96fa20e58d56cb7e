"""Bad cases: a clear message naming field, value and what is allowed; exit 2; nothing written."""

import json

import pytest

from tareplanner.cli.main import main
from tareplanner.errors import (ClinicalCutoffError, FieldValueError, MissingFieldError,
                                SchemaError, UnknownNameError, UnsupportedMethodError)
from tareplanner.planning import plan_case
from tareplanner.records.case import parse_case


def _mutate(case, path, value):
    target = case
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return case


CASES = [
    # (path, value, error type, words the message must contain)
    (("product",), "sirspheres", UnknownNameError, ["product", "'sirspheres'", "therasphere"]),
    (("method",), "bsa", UnsupportedMethodError, ["method", "'bsa'", "single-compartment"]),
    (("method",), "voxel", UnknownNameError, ["method", "'voxel'", "partition"]),
    (("lung_shunt_fraction",), 1.0, FieldValueError, ["lung_shunt_fraction", "1.0", "< 1"]),
    (("lung_shunt_fraction",), -0.01, FieldValueError, ["lung_shunt_fraction", ">= 0"]),
    (("lung_shunt_fraction",), "6%", FieldValueError, ["lung_shunt_fraction", "'6%'"]),
    (("positions", 0, "normal_volume_ml"), -5, FieldValueError,
     ["positions[0].normal_volume_ml", "-5", "> 0"]),
    (("positions", 0, "normal_volume_ml"), 0, FieldValueError, ["normal_volume_ml", "> 0"]),
    (("positions", 0, "tumours", 0, "volume_ml"), 0, FieldValueError,
     ["positions[0].tumours[0].volume_ml"]),
    (("positions", 0, "tumours", 0, "tnr"), 0, FieldValueError,
     ["positions[0].tumours[0].tnr", "> 0"]),
    (("positions", 0, "tumours", 0, "tnr"), KeyError, MissingFieldError,
     ["positions[0].tumours[0].tnr", "<missing>"]),
    (("positions", 0, "goal"), KeyError, MissingFieldError, ["positions[0].goal", "tumour_dose_gy"]),
    (("positions", 0, "goal"), {"dose": 100}, UnknownNameError,
     ["positions[0].goal: unknown field 'dose'", "tumour_dose_gy"]),
    (("positions", 0, "goal"), {"tumour_dose_gy": -1}, FieldValueError, ["tumour_dose_gy", "-1"]),
    (("positions",), [], FieldValueError, ["positions", "non-empty"]),
    (("lung_mass_kg",), 0, FieldValueError, ["lung_mass_kg", "> 0"]),
    (("tissue_density_g_per_ml",), 0, FieldValueError, ["tissue_density_g_per_ml"]),
    (("residual_fraction",), 1, FieldValueError, ["residual_fraction", "< 1"]),
    (("prior_lung_dose_gy",), -1, FieldValueError, ["prior_lung_dose_gy", ">= 0"]),
    (("treatment_time",), "2026-12-01 10:00", FieldValueError, ["treatment_time", "UTC offset"]),
    (("schema",), "tareplanner.case/2", SchemaError, ["schema", "tareplanner.case/1"]),
    (("lung_shunt_fracton",), 0.05, UnknownNameError, ["lung_shunt_fracton", "allowed"]),
]


@pytest.mark.parametrize("path, value, error, words", CASES)
def test_bad_case_is_named(base_case, path, value, error, words):
    with pytest.raises(error) as info:
        parse_case(_mutate(base_case, path, value))
    for word in words:
        assert word in str(info.value)


def test_lsf_above_sir_cutoff_is_refused(base_case):
    base_case.update(product="sir-spheres", lung_shunt_fraction=0.25)
    with pytest.raises(ClinicalCutoffError, match=r"lung_shunt_fraction: got 0.25; allowed: <= 0.2"):
        plan_case(parse_case(base_case))


def test_bsa_needs_patient_size(base_case):
    base_case.update(product="sir-spheres", method="bsa")
    del base_case["positions"][0]["goal"]
    del base_case["patient"]["weight_kg"]
    with pytest.raises(MissingFieldError, match=r"patient.weight_kg"):
        parse_case(base_case)


def test_bsa_refuses_a_goal(base_case):
    base_case.update(product="sir-spheres", method="bsa")
    with pytest.raises(FieldValueError, match=r"positions\[0\].goal.*bsa"):
        parse_case(base_case)


@pytest.mark.parametrize("text, words", [
    ("{not json", ["case file", "valid JSON", "line 1"]),
    ("[1, 2]", ["case", "JSON object"]),
])
def test_malformed_files(write_case, tmp_path, capsys, text, words):
    path = write_case(text)
    out = tmp_path / "plan.json"
    assert main(["plan", str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    for word in words:
        assert word in err
    assert not out.exists()


def test_cli_exit_2_and_nothing_written(base_case, write_case, tmp_path, capsys):
    base_case["positions"][0]["tumours"][0]["tnr"] = -1
    out = tmp_path / "plan.json"
    assert main(["plan", str(write_case(base_case)), "-o", str(out)]) == 2
    assert "positions[0].tumours[0].tnr: got -1" in capsys.readouterr().err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "case.json"]  # no temporary files left


def test_missing_case_file(tmp_path, capsys):
    assert main(["plan", str(tmp_path / "nope.json")]) == 2
    assert "nope.json" in capsys.readouterr().err


def test_bad_site_limits(base_case, write_case, tmp_path, capsys):
    site = tmp_path / "site.json"
    site.write_text(json.dumps({"schema": "tareplanner.site-limits/1",
                                "products": {"therasphere": {"normal_liver_gy": -3}}}))
    assert main(["plan", str(write_case(base_case)), "--site-limits", str(site)]) == 2
    assert "site limits.products.therasphere.normal_liver_gy: got -3" in capsys.readouterr().err


@pytest.mark.parametrize("basis", ["", "   ", 3, ["x"], "x" * 1001])
def test_counting_basis_must_be_a_text(base_case, basis):
    """Bug caught: an empty, non-text or unbounded counting basis carried into the plan's
    uncertainty sources and its PDF."""
    from tareplanner.errors import FieldValueError
    from tareplanner.records.case import parse_case
    doc = dict(base_case, uncertainty={"counting_basis": basis})
    with pytest.raises(FieldValueError, match=r"uncertainty\.counting_basis: got .*allowed: a "
                                              r"text of 1 to 1000 characters"):
        parse_case(doc)
    assert parse_case(dict(base_case, uncertainty={"counting_basis": "x" * 1000}))
