"""The count-limited tumour flag (imaging/region_noise.py ``count_limited``): a tumour whose
measured mean is noisier, at the image's counts, than the level at which OSEM was measured
to read a small hot region without bias is named in a warning that reaches the plan.

Bugs these must catch: normal liver, lungs or the body flagged as tumours; the corrected SD
(the correction's noise amplification) compared instead of the measured one; the limit's
edge taken the wrong way; NaN or missing SDs crashing or flagging; the warning lost between
``measure`` and the plan. Expected values: the law by hand (as in
test_reconstruction_noise.py), the limit read here from the documented measurement."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tareplanner.cli.main import main
from tareplanner.imaging.region_noise import (COUNT_LIMITED_CODE, count_limit, count_limited,
                                              count_limited_warnings)

#: the limit stated in docs/imaging.md ("Convergence": the count-level table) and the data file
LIMIT = 0.06
DOCS = Path(__file__).resolve().parents[1] / "docs" / "imaging.md"


def _regions(**sds) -> dict:
    return {"regions": {k.replace("__", ":").replace("_", " "): {"measured_relative_sd": v,
                                                                 "corrected_relative_sd": 1.0}
                        for k, v in sds.items()}}


def test_the_limit_is_the_documented_one():
    limit = count_limit()
    assert limit["value"] == LIMIT
    assert "scout_count_bias.py" in limit["source"]
    text = DOCS.read_text()
    assert re.search(r"count-limited-tumour.{0,400}6 %", text, re.S)


def test_only_tumours_above_the_limit_are_flagged():
    record = _regions(tumour__T3=0.0934, tumour__T1=0.055, normal__right=0.5, lungs=0.9,
                      **{"rest_of_body": 0.7})
    assert count_limited(record, LIMIT) == {"T3": 0.0934}


@pytest.mark.parametrize("sd, flagged", [(LIMIT, False), (LIMIT * (1 + 1e-9), True),
                                         (LIMIT * (1 - 1e-9), False), (0.0, False)])
def test_the_limit_edge(sd, flagged):
    assert ("T" in count_limited(_regions(tumour__T=sd), LIMIT)) is flagged


@pytest.mark.parametrize("sd", [None, float("nan"), float("inf")])
def test_unmeasured_sds_are_not_flagged(sd):
    assert count_limited(_regions(tumour__T=sd), LIMIT) == {}


def test_the_measured_sd_is_compared_not_the_corrected_one():
    record = {"regions": {"tumour:T": {"measured_relative_sd": 0.05,
                                       "corrected_relative_sd": 0.2}}}
    assert count_limited(record, LIMIT) == {}


def test_a_tumour_named_with_colons_keeps_its_name():
    record = {"regions": {"tumour:seg 4:a:b": {"measured_relative_sd": 0.2}}}
    assert count_limited(record, LIMIT) == {"seg 4:a:b": 0.2}


def test_warnings_and_record_entry():
    record = _regions(tumour__T3=0.11, tumour__T2=0.03)
    warnings = count_limited_warnings(record)
    assert warnings == [{"code": "count-limited-tumour", "message": (
        "T3: its measured mean has a relative noise SD of 11.0% at this image's counts (the "
        "camera file's background variability), above 6%: at such counts OSEM reads a small "
        "hot region low (measured on the realistic Ho-166 scout, docs/imaging.md), so its TNR "
        "and dose may be underestimated by more than the noise says; more counts (longer "
        "views, more activity) reduce it")}]
    assert record["count_limited"] == {"relative_sd_max": LIMIT,
                                       "source": count_limit()["source"],
                                       "tumours": {"T3": 0.11}}
    assert count_limited_warnings(None) == [] and count_limited_warnings({}) == []


@pytest.fixture(scope="module")
def camera(tmp_path_factory):
    d = tmp_path_factory.mktemp("iec") / "iec10"
    assert main(["phantom", str(d), "--iec", "--fwhm-mm", "10"]) == 0
    out = d.parent / "camera.json"
    assert main(["calibrate", "--ct", str(d / "ct.nii.gz"), "--image",
                 str(d / "image.nii.gz"), "--nuclide", "Tc-99m", "--sphere-kbq-ml", "40",
                 "--background-kbq-ml", "5", "-o", str(out)]) == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("coefficient, expected", [(0.06, {"T3"}), (0.001, set())])
def test_measure_flags_the_noisy_tumour_and_the_plan_says_so(camera, phantom_dir, tmp_path,
                                                              coefficient, expected):
    """By hand: the law c V^-0.3 up to 26.5 mL (V^-1/2 beyond) over a total 4 times the
    SPECT's (factor sqrt(4) = 2). c = 0.06: T3 (7.3 mL) 2 x 0.06 x 7.3^-0.3 = 6.6 %, T2
    (20.4 mL) 4.9 %, T1 (57.7 mL) 2 x 0.06 x 26.5^-0.3 x (57.7 / 26.5)^-0.5 = 3.0 %: only T3
    is over 6 %. c = 0.001: none."""
    import numpy as np
    import SimpleITK as sitk
    from conftest import measure_small_patient

    spect = sitk.ReadImage(str(phantom_dir / "nifti" / "spect_maa.nii.gz"))
    total = float(sitk.GetArrayFromImage(spect).astype(np.float64).sum())
    doc = json.loads(json.dumps(camera))
    doc["roi_noise"]["model"].update(coefficient=coefficient, exponent=0.3,
                                     volume_range_ml=[0.5, 26.5])
    doc["roi_noise"]["reference_total"] = 4.0 * total
    path = tmp_path / "camera.json"
    path.write_text(json.dumps(doc))
    assert measure_small_patient(phantom_dir, tmp_path / "m", "--camera", str(path)) == 0
    m = json.loads((tmp_path / "m" / "measurement.json").read_text())
    hand = {}
    for name, v in m["volumes_ml"]["tumours"].items():
        law = (coefficient * v ** -0.3 if v <= 26.5
               else coefficient * 26.5 ** -0.3 * (v / 26.5) ** -0.5)
        hand[name] = 2.0 * law
    assert {n for n, sd in hand.items() if sd > LIMIT} == expected
    codes = [w for w in m["warnings"] if w["code"] == COUNT_LIMITED_CODE]
    assert {w["message"].split(":")[0] for w in codes} == expected
    flagged = m["partial_volume_correction"]["noise"]["count_limited"]["tumours"]
    assert set(flagged) == expected
    for name in expected:
        assert flagged[name] == pytest.approx(hand[name], rel=1e-9)
    assert main(["plan", str(tmp_path / "m" / "case.json"), "-o",
                 str(tmp_path / "plan.json")]) == 0
    plan = json.loads((tmp_path / "plan.json").read_text())
    codes = {w["code"] for w in plan["warnings"]}
    assert (f"measurement:{COUNT_LIMITED_CODE}" in codes) is bool(expected)
    from tareplanner.records.plan_text import plan_summary
    text = plan_summary(plan)
    assert ("T3: its measured mean has a relative noise SD" in text) is bool(expected)
