"""The record chain on treatment day: a directive change is a re-plan, records refuse parents
they do not belong to, implausible readings are questioned, the lung-dose medical-event
criterion.

Hand calculations use the case of conftest.BASE_CASE (TheraSphere, partition model, one
position): CF = 49.67 J/GBq for Y-90 (EANM 2022; Dutch TvNG 2023), LSF 0.06, R 0, density
1.03 g/mL, normal liver 900 mL, tumour T1 120 mL with TNR 3.1, lung 1 kg, whole liver
1800 mL of which 150 mL tumour. Partition model (Ho et al. 1996; EANM 2022):
D_N = CF A (1 - LSF) / (M_N + r M_T), D_T = r D_N, lung D_L = CF A LSF (1 - R) / M_L.
"""

import copy
import json
import math
import re

import pytest

from conftest import BASE_CASE
from tareplanner.cli.main import main
from tareplanner.errors import FieldValueError
from tareplanner.planning import plan_case
from tareplanner.physics.administration import exceeds_organ_dose_criterion, likely_slip
from tareplanner.records.administration import administration_record, replay_administration
from tareplanner.records.case import parse_case
from tareplanner.records.chain import RecordChainError, check_parent
from tareplanner.records.directive import directive_from_plan
from tareplanner.replan import change_directive, replay_directive

CF = 49.67                      # J/GBq, Y-90
LSF, RHO = 0.06, 1.03
M_N = 900 * RHO / 1000          # 0.927 kg
M_T = 120 * RHO / 1000          # 0.1236 kg
TNR = 3.1
M_LIVER = 1800 * RHO / 1000     # 1.854 kg
M_NORMAL_LIVER = (1800 - 150) * RHO / 1000   # 1.6995 kg
T_Y90 = 64.1
SITE = "right hepatic"


def _decay(a, hours):
    return a * math.exp(-math.log(2) * hours / T_Y90)


@pytest.fixture
def plan():
    return plan_case(parse_case(copy.deepcopy(BASE_CASE)))


@pytest.fixture
def directive(plan):
    return directive_from_plan(plan)


def _readings(vial_gbq, residual_gbq=None):
    entry = {"treatment_site": SITE,
             "vial": [{"activity_gbq": vial_gbq, "time": "2026-12-01T08:00:00+01:00"}],
             "administration_time": "2026-12-01T10:00:00+01:00"}
    if residual_gbq is not None:
        entry["residual"] = [{"activity_gbq": residual_gbq, "time": "2026-12-01T11:00:00+01:00"}]
    return [entry]


# --- a change is a re-plan -------------------------------------------------------------

def test_change_recomputes_every_dose_by_hand(plan, directive):
    """Bug caught: a change that only rescales the site's doses, or not at all, keeps the
    old lung dose (reported: 15.15 Gy kept where about 18 was due), the old whole-liver
    doses and the normal-liver dose of the old activity. At 3.24 GBq, by hand:
    D_N = 49.67 * 3.24 * 0.94 / (0.927 + 3.1 * 0.1236) = 115.463 Gy, D_T = 3.1 D_N,
    lung 49.67 * 3.24 * 0.06 / 1 = 9.656 Gy, whole liver 49.67 * 3.24 * 0.94 / 1.854 =
    81.594 Gy, whole normal liver D_N * 0.927 / 1.6995 = 62.980 Gy."""
    changed = change_directive(directive, plan, SITE, 3.24, "larger lobe", "Dr A")
    d_n = CF * 3.24 * (1 - LSF) / (M_N + TNR * M_T)
    assert d_n == pytest.approx(115.463, abs=1e-3)
    (pos,) = changed["positions"]
    assert pos["planned_doses_gy"]["normal_liver"] == pytest.approx(d_n, rel=1e-9)
    assert pos["planned_doses_gy"]["tumours"]["T1"] == pytest.approx(TNR * d_n, rel=1e-9)
    assert changed["lung_dose_gy"] == pytest.approx(CF * 3.24 * LSF / 1.0, rel=1e-9)
    assert changed["lung_dose_cumulative_gy"] == pytest.approx(CF * 3.24 * LSF, rel=1e-9)
    assert changed["whole_liver_dose_gy"] == pytest.approx(CF * 3.24 * (1 - LSF) / M_LIVER,
                                                           rel=1e-9)
    assert changed["whole_normal_liver_dose_gy"] == pytest.approx(d_n * M_N / M_NORMAL_LIVER,
                                                                  rel=1e-9)
    assert pos["limited_by"] == "changed-activity"
    assert directive["positions"][0]["limited_by"] != "changed-activity"


def test_normal_liver_dose_is_rescaled_after_a_change(plan, directive):
    """Bug caught: the directive's normal-liver dose not rescaled after a change (the
    mutation the suite let through). 2.263 -> 2.0 GBq: D_N = 49.67 * 2.0 * 0.94 /
    1.31016 = 71.273 Gy, not the plan's 80.6 Gy."""
    changed = change_directive(directive, plan, SITE, 2.0, "smaller lobe", "Dr A")
    expected = CF * 2.0 * (1 - LSF) / (M_N + TNR * M_T)
    assert expected == pytest.approx(71.273, abs=1e-3)
    assert changed["positions"][0]["planned_doses_gy"]["normal_liver"] == pytest.approx(
        expected, rel=1e-9)
    assert replay_directive(changed, plan)["identical"]


def test_change_beyond_a_hard_limit_needs_an_override(tmp_path):
    """A site's hard normal-liver limit of 120 Gy (the TheraSphere package insert gives
    none; EANM 2022's < 120 Gy is a recommendation, so the site sets it): the activity at the
    limit is A = 120 * 1.31016 / (49.67 * 0.94) = 3.36732 GBq. Just below: accepted; just
    above: refused by name unless an override with its reason is recorded, which then shows
    on the administration record."""
    site = {"schema": "tareplanner.site-limits/1", "site": "test site",
            "products": {"therasphere": {"normal_liver_gy": 120}}}
    plan = plan_case(parse_case(copy.deepcopy(BASE_CASE)), site, "test site")
    directive = directive_from_plan(plan)
    a_limit = 120 * (M_N + TNR * M_T) / (CF * (1 - LSF))
    assert a_limit == pytest.approx(3.36732, abs=1e-5)
    below = change_directive(directive, plan, SITE, a_limit * (1 - 1e-6), "r", "Dr A")
    assert below["violations"] == [] and below["overrides"] == []
    with pytest.raises(FieldValueError, match=r"--activity-gbq.*--override-limits"):
        change_directive(directive, plan, SITE, a_limit * (1 + 1e-4), "r", "Dr A")
    over = change_directive(directive, plan, SITE, a_limit * (1 + 1e-4), "r", "Dr A",
                            override_reason="tumour board decision")
    (o,) = over["overrides"]
    assert o["reason"] == "tumour board decision" and "normal-liver-limit" in o["exceeded"]
    assert over["changes"][0]["override"]["reason"] == "tumour board decision"
    vial = a_limit * (1 + 1e-4) / _decay(1.0, 2)
    record = administration_record(over, _readings(vial))
    assert "limit-override" in [w["code"] for w in record["warnings"]]
    assert record["overrides"] == over["overrides"]


def test_change_refuses_another_plan(plan, directive):
    """A change re-plans from the plan the directive names; another plan (same case,
    planned again) is refused by name."""
    again = plan_case(parse_case(copy.deepcopy(BASE_CASE)))
    again["created"] = "2000-01-01T00:00:00+00:00"
    with pytest.raises(RecordChainError, match="parents.plan"):
        change_directive(directive, again, SITE, 2.0, "r", "Dr A")


# --- the administration record ---------------------------------------------------------

def test_residual_fraction_is_of_the_vial_activity(directive):
    """Bug caught: the residual fraction computed on the wrong base (over the delivered
    instead of the vial activity). Vial 3.0 GBq at 08:00, residual 0.10 GBq at 11:00,
    administered 10:00: at 10:00 the vial held 3.0 * 2^(-2/64.1) = 2.935815 GBq and the
    residual 0.10 * 2^(1/64.1) = 0.101087 GBq; fraction 0.101087 / 2.935815 = 0.034432
    (over the delivered 2.834728 it would be 0.035660)."""
    record = administration_record(directive, _readings(3.0, 0.10))
    vial = 3.0 * 2 ** (-2 / 64.1)
    residual = 0.10 * 2 ** (1 / 64.1)
    assert vial == pytest.approx(2.935815, abs=1e-6)
    assert residual == pytest.approx(0.101087, abs=1e-6)
    assert record["sites"][0]["residual_fraction"] == pytest.approx(residual / vial, rel=1e-12)
    assert residual / vial == pytest.approx(0.034432, abs=1e-6)
    assert not record["sites"][0]["residual_fraction"] == pytest.approx(
        residual / (vial - residual), rel=1e-3)


@pytest.mark.parametrize("ratio, questioned", [
    (0.5 * (1 - 1e-6), True), (0.5, False), (0.5 * (1 + 1e-6), False),
    (2.0 * (1 - 1e-6), False), (2.0, False), (2.0 * (1 + 1e-6), True)])
def test_plausibility_edges(directive, ratio, questioned):
    """A delivered activity within 0.5 x to 2 x the prescription (both included) is
    recorded; beyond either edge it is refused unless confirmed."""
    prescribed = directive["positions"][0]["prescribed_activity_gbq"]
    readings = _readings(prescribed * ratio / _decay(1.0, 2))
    if questioned:
        with pytest.raises(FieldValueError, match="--confirm-readings"):
            administration_record(directive, readings)
        record = administration_record(directive, readings, confirm_reason="second vial")
        assert record["plausibility"]["confirmed_reason"] == "second vial"
        assert "reading-confirmed" in [w["code"] for w in record["warnings"]]
        assert replay_administration(json.loads(json.dumps(record)))["identical"]
    else:
        record = administration_record(directive, readings)
        assert record["plausibility"]["questioned"] == []


def test_decimal_slip_is_named(directive):
    """A x10 slip: prescribed 2.263 GBq, vial read 26.2 GBq at 08:00 (about 2.62 due). The
    message names the likely slip (decimal point) and the value meant: 26.2 / 10 = 2.62."""
    with pytest.raises(FieldValueError, match=r"decimal point.*did you mean 2\.62 GBq"):
        administration_record(directive, _readings(26.2))


def test_reading_above_the_largest_vial(directive):
    """TheraSphere's largest vial is 20 GBq (package insert): with 15 GBq prescribed,
    a 20.0 GBq reading is recorded, 20.001 GBq is questioned as above the largest vial."""
    d = copy.deepcopy(directive)
    d["positions"][0]["prescribed_activity_gbq"] = 15.0
    administration_record(d, _readings(20.0))
    with pytest.raises(FieldValueError, match="largest vial"):
        administration_record(d, _readings(20.001))


@pytest.mark.parametrize("ratio, slip", [(10, "one place to the right"),
                                         (1000, "MBq typed as GBq"),
                                         (27.027, "mCi typed as GBq"),
                                         (0.1, "one place to the left"),
                                         (3.0, None)])
def test_likely_slip(ratio, slip):
    """1 mCi = 0.037 GBq (so mCi typed as GBq is 1/0.037 = 27.03 x too large); 1 GBq =
    1000 MBq; a ratio of 3 is no known slip."""
    slips = [(10, "decimal point one place to the right"), (0.1, "decimal point one place "
             "to the left"), (1000, "MBq typed as GBq"), (1 / 0.037, "mCi typed as GBq")]
    found = likely_slip(ratio, slips, 0.25)
    assert (found is None) if slip is None else (slip in found[1])


@pytest.mark.parametrize("dose, expected, event", [
    (0.9, 0.6, False),          # +50 % but only +0.3 Gy
    (1.1 - 1e-9, 0.6, False),   # +0.5 Gy less a hair
    (1.1, 0.6, True),           # +0.5 Gy and +83 %
    (3.0 - 1e-6, 2.0, False),   # +1 Gy but under +50 %
    (3.0, 2.0, True),           # +1 Gy and +50 %
    (10.0, 10.0, False)])
def test_organ_dose_criterion_edges(dose, expected, event):
    """10 CFR 35.3045(a)(3): a dose outside the treatment site exceeding the expected by
    0.5 Sv and by 50 % (both needed, each edge included); for beta 1 Gy = 1 Sv."""
    assert exceeds_organ_dose_criterion(dose, expected, 0.5, 0.5) is event


def test_lung_medical_event_in_the_administration(directive):
    """Expected lung dose 49.67 * 2.2630 * 0.06 / 1 = 6.744 Gy; delivering 1.6 x the
    prescription gives 49.67 * 0.06 * 1.6 * 2.2630 = 10.79 Gy: +60 % and +4.05 Gy, a lung
    medical event besides the activity one."""
    prescribed = directive["positions"][0]["prescribed_activity_gbq"]
    record = administration_record(directive, _readings(1.6 * prescribed / _decay(1.0, 2)))
    lung = record["lung_criterion"]
    assert lung["expected_dose_gy"] == pytest.approx(CF * prescribed * LSF, rel=1e-9)
    assert lung["estimated_dose_gy"] == pytest.approx(CF * LSF * 1.6 * prescribed, rel=1e-9)
    assert lung["medical_event"] and "35.3045(a)(3)" in lung["source"]
    assert "medical-event-lung" in [w["code"] for w in record["warnings"]]
    within = administration_record(directive, _readings(1.1 * prescribed / _decay(1.0, 2)))
    assert not within["lung_criterion"]["medical_event"]


# --- the chain on the command line -----------------------------------------------------

@pytest.fixture
def chain(tmp_path):
    case = tmp_path / "case.json"
    case.write_text(json.dumps(BASE_CASE))
    paths = {n: tmp_path / f"{n}.json" for n in ("plan", "directive", "admin")}
    assert main(["plan", str(case), "-o", str(paths["plan"])]) == 0
    assert main(["directive", str(paths["plan"]), "-o", str(paths["directive"])]) == 0
    assert main(["administer", str(paths["directive"]),
                 "--vial", f"{SITE}=2.4@2026-12-01T08:00+01:00",
                 "--residual", f"{SITE}=0.05@2026-12-01T11:00+01:00",
                 "--administered-at", f"{SITE}=2026-12-01T10:00+01:00",
                 "-o", str(paths["admin"])]) == 0
    paths["case"] = case
    return paths


def test_replay_verifies_the_whole_chain(chain, capsys):
    args = ["replay"] + [str(chain[n]) for n in ("case", "plan", "directive", "admin")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "chain verified" in out and "reproduced exactly" in out


def test_tampered_record_is_named_with_its_child(chain, tmp_path, capsys):
    """A directive edited after its administration was written: exit 2, both named."""
    d = json.loads(chain["directive"].read_text())
    d["positions"][0]["prescribed_activity_gbq"] = 3.0
    chain["directive"].write_text(json.dumps(d))
    assert main(["replay", str(chain["plan"]), str(chain["directive"]),
                 str(chain["admin"])]) == 2
    err = capsys.readouterr().err
    assert "admin.json parents.directive" in err and "directive.json is" in err


def test_missing_parent_and_two_administrations(chain, tmp_path, capsys):
    assert main(["replay", str(chain["directive"]), str(chain["admin"])]) == 2
    assert "its plan among the records given" in capsys.readouterr().err
    second = tmp_path / "admin2.json"
    doc = json.loads(chain["admin"].read_text())
    doc["created"] = "2026-12-01T12:00:00+00:00"
    second.write_text(json.dumps(doc))
    assert main(["replay", str(chain["plan"]), str(chain["directive"]), str(chain["admin"]),
                 str(second)]) == 2
    err = capsys.readouterr().err
    assert re.search(r"admin\.json and \S*admin2\.json both name", err)


def test_dose_folder_of_another_plan_is_refused(chain, tmp_path, capsys):
    folder = tmp_path / "dose"
    folder.mkdir()
    (folder / "dose.json").write_text(json.dumps({
        "schema": "tareplanner.dose/1", "parents": {"plan": {
            "schema": "tareplanner.plan/1", "sha256": "ab" * 32}}}))
    assert main(["replay", str(chain["plan"]), str(folder)]) == 2
    err = capsys.readouterr().err
    assert "dose parents.plan" in err and "plan.json is" in err


def test_report_refuses_an_administration_of_another_directive(chain, tmp_path, capsys):
    """The reported inconsistency: a report with a directive and the administration of
    another (changed) directive. Exit 2, both named, no PDF."""
    changed = tmp_path / "changed.json"
    assert main(["directive", str(chain["plan"]), "--change", str(chain["directive"]),
                 "--site", SITE, "--activity-gbq", "2.0", "--reason", "r", "--by", "Dr A",
                 "-o", str(changed)]) == 0
    pdf = tmp_path / "r.pdf"
    assert main(["report", str(chain["plan"]), "--directive", str(changed),
                 "--administration", str(chain["admin"]), "-o", str(pdf)]) == 2
    err = capsys.readouterr().err
    assert "admin.json parents.directive" in err and "changed.json" in err
    assert not pdf.exists()


def test_check_parent_accepts_the_file_bytes_hash():
    """An input file named by the SHA-256 of its bytes (a measurement in its case, a
    camera or site-limits file) is accepted by that hash: sha256(b'{"schema": "x"}')."""
    import hashlib
    raw = b'{"schema": "x"}'
    child = {"camera": {"file": "camera.json", "sha256": hashlib.sha256(raw).hexdigest()}}
    check_parent(child, "measurement", "camera", {"schema": "x"}, "camera.json", raw)
    with pytest.raises(RecordChainError, match="camera"):
        check_parent(child, "measurement", "camera", {"schema": "y"}, "camera.json",
                     b'{"schema": "y"}')


# --- options named as typed, with units ------------------------------------------------

def test_reading_errors_name_the_option_and_units(chain, tmp_path, capsys):
    out = tmp_path / "a.json"
    base = ["administer", str(chain["directive"]), "--residual",
            f"{SITE}=0.05@2026-12-01T11:00+01:00", "--administered-at",
            f"{SITE}=2026-12-01T10:00+01:00", "-o", str(out)]
    assert main(base + ["--vial", f"{SITE}=26.2@2026-12-01T08:00+01:00"]) == 2
    err = capsys.readouterr().err
    assert f"--vial '{SITE}=26.2@2026-12-01T08:00+01:00'" in err and "GBq" in err
    assert "readings[0]" not in err and "decimal point" in err
    assert main(base + ["--vial", f"{SITE}=260@2026-12-01T08:00+01:00"]) == 2
    err = capsys.readouterr().err
    assert "--vial" in err and "activity (GBq)" in err and "readings[0]" not in err
    assert not out.exists()
    assert main(base + ["--vial", f"{SITE}=26.2@2026-12-01T08:00+01:00",
                        "--confirm-readings", "two vials in one syringe"]) == 0
    record = json.loads(out.read_text())
    assert record["plausibility"]["confirmed_reason"] == "two vials in one syringe"


@pytest.mark.parametrize("counts, warned", [((100, 100, 100, 100), False),
                                            ((101, 100, 100, 100), True)])
def test_lsf_flags_swapped_counts(counts, warned, capsys):
    """LSF = GM_lung / (GM_lung + GM_liver): equal counts give exactly 50 % (no warning);
    lung anterior 101 gives sqrt(101 * 100) / (sqrt(101 * 100) + 100) = 50.12 %."""
    la, lp, va, vp = counts
    assert main(["lsf", "--lung-anterior", str(la), "--lung-posterior", str(lp),
                 "--liver-anterior", str(va), "--liver-posterior", str(vp), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    gm = math.sqrt(la * lp)
    assert result["lung_shunt_fraction"] == pytest.approx(gm / (gm + math.sqrt(va * vp)))
    assert bool(result["warnings"]) is warned
    if warned:
        assert "swapped" in result["warnings"][0]["message"]


def test_negative_counts_in_exponent_notation_are_refused_by_name(capsys):
    assert main(["lsf", "--lung-anterior", "-1.2e4", "--lung-posterior", "1",
                 "--liver-anterior", "1", "--liver-posterior", "1"]) == 2
    err = capsys.readouterr().err
    assert "--lung-anterior: got -12000.0" in err and "expected one argument" not in err


@pytest.mark.parametrize("content, words", [
    (b"{not json", "record"),
    (b'{"no": "schema"}', "a tareplanner record"),
    (b"\xff\xfe", "UTF-8"),
    (b"[1, 2]", "a tareplanner record")])
def test_replay_chain_refuses_what_is_no_record(chain, tmp_path, capsys, content, words):
    """Truncated, non-UTF-8 or schema-less files among the chain: exit 2, named."""
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    assert main(["replay", str(chain["plan"]), str(bad)]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_replay_chain_refuses_a_folder_without_dose_record(chain, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["replay", str(chain["plan"]), str(empty)]) == 2
    assert "folder written by tareplanner dose" in capsys.readouterr().err


def test_the_same_record_twice_is_named(chain, tmp_path, capsys):
    copy_ = tmp_path / "plan-copy.json"
    copy_.write_text(chain["plan"].read_text())
    assert main(["replay", str(chain["plan"]), str(copy_)]) == 2
    assert "the same record" in capsys.readouterr().err


@pytest.mark.parametrize("image_gy, event", [(10.0, False), (10.116 - 1e-6, False),
                                             (10.116, True), (10.2, True)])
def test_lung_criterion_on_the_post_treatment_image(image_gy, event):
    """Directive lung dose 6.744 Gy: +50 % is 10.116 Gy (+3.37 Gy, beyond 0.5 Gy), so the
    50 % edge decides: 10.116 Gy is an event, a hair less is not."""
    from tareplanner.records.dose_record import with_lung_criterion

    record = {"post_treatment": {"structures": {"lungs": {"mean_gy": image_gy}}},
              "warnings": []}
    out = with_lung_criterion(record, {"lung_dose_gy": 6.744})
    assert out["lung_criterion"]["medical_event"] is event
    assert ("medical-event-lung" in [w["code"] for w in out["warnings"]]) is event
    assert with_lung_criterion({"warnings": []}, {"lung_dose_gy": 6.744}) == {"warnings": []}
