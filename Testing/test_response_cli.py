"""``tareplanner response`` and the probabilities on a plan: bad input refused (exit 2,
field named, nothing written), the record and its schema, the plan's probabilities against
a hand calculation, replay, the published relations against their source, the report figure
(the plan's marks lie on the curves)."""

import json
import math

import numpy as np
import pytest

pytest.importorskip("statsmodels")

from conftest import REPO  # noqa: E402
from tareplanner.cli.main import main  # noqa: E402
from tareplanner.planning import plan_case  # noqa: E402
from tareplanner.records.case import parse_case  # noqa: E402
from tareplanner.records.response_record import (fit_for_plan, plan_response,  # noqa: E402
                                                 published_fits)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """A synthetic cohort (200 patients, 600 lesions) written by ``response synthetic``."""
    out = tmp_path_factory.mktemp("cohort") / "c"
    assert main(["response", "synthetic", "--patients", "200", "--seed", "4",
                 "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def fit_file(cohort, tmp_path_factory):
    path = tmp_path_factory.mktemp("fit") / "fit.json"
    assert main(["response", "fit", "--indices", str(cohort / "cohort_indices.csv"),
                 "--lesions", str(cohort / "lesion_outcomes.csv"),
                 "--toxicity", str(cohort / "toxicity.csv"), "-o", str(path)]) == 0
    return path


def _fit_args(cohort, out, **tables):
    args = ["response", "fit", "--indices", str(tables.get("indices",
                                                            cohort / "cohort_indices.csv")),
            "--lesions", str(tables.get("lesions", cohort / "lesion_outcomes.csv")),
            "-o", str(out)]
    if "toxicity" in tables:
        args += ["--toxicity", str(tables["toxicity"])]
    return args


def _edited(cohort, tmp_path, name, edit):
    lines = (cohort / name).read_text().splitlines()
    lines = edit(lines)
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return {{"lesion_outcomes.csv": "lesions", "toxicity.csv": "toxicity",
             "cohort_indices.csv": "indices"}[name]: path}


def _first(old, new, *alternatives):
    """Replace ``old`` and each of ``alternatives`` by ``new`` in the first data row."""
    def edit(lines):
        row = lines[1]
        for a in (old, *alternatives):
            row = row.replace(a, new)
        return lines[:1] + [row] + lines[2:]
    return edit


def _append(line):
    return lambda lines: lines + [line]


def _dose(value):
    return lambda ls: ls[:1] + [",".join(ls[1].split(",")[:4] + [value])] + ls[2:]


BAD = {
    "unknown category": ("lesion_outcomes.csv", _first(",SD,", ",PRR,", ",PR,"),
                         ["--lesions line 2 category", "'PRR'", "did you mean 'PR'?"]),
    "unknown criteria": ("lesion_outcomes.csv", _first("mRECIST", "mRECST"),
                         ["--lesions line 2 criteria", "did you mean 'mRECIST'?"]),
    "lesion not in table": ("lesion_outcomes.csv", _append("S0001,T9,mRECIST,PR,2026-03-01"),
                            ["--lesions line 602 structure", "'T9'",
                             "a tumour of patient S0001"]),
    "patient not in table": ("lesion_outcomes.csv",
                             _append("S9999,T1,mRECIST,PR,2026-03-01"),
                             ["--lesions line 602 patient_id", "'S9999'"]),
    "outcome of a non-tumour": ("lesion_outcomes.csv",
                                _append("S0001,normal liver,mRECIST,PR,2026-03-01"),
                                ["--lesions line 602 structure", "'normal liver'",
                                 "the index table has it as normal"]),
    "duplicate lesion": ("lesion_outcomes.csv", lambda ls: ls + [ls[1]],
                         ["--lesions line 602 structure", "one outcome per lesion"]),
    "bad date": ("lesion_outcomes.csv", _first("2026-03-01", "2026-13-01"),
                 ["--lesions line 2 date", "YYYY-MM-DD"]),
    "missing column": ("lesion_outcomes.csv",
                       lambda ls: [ls[0].replace("category", "categroy")] + ls[1:],
                       ["--lesions column category", "did you mean 'categroy'?"]),
    "header only": ("lesion_outcomes.csv", lambda ls: ls[:1], ["--lesions", "header only"]),
    "ragged row": ("lesion_outcomes.csv", lambda ls: ls[:1] + [ls[1] + ",extra"] + ls[2:],
                   ["--lesions line 2", "5 cells"]),
    "NaN dose": ("cohort_indices.csv", _dose("nan"),
                 ["--indices line 2 mean_gy", "'nan'", "a finite dose"]),
    "negative dose": ("cohort_indices.csv", _dose("-1"), ["--indices line 2 mean_gy", "'-1'"]),
    "unknown toxicity grade": ("toxicity.csv", _first("CTCAE,3", "CTCAE,6", "CTCAE,1"),
                               ["--toxicity line 2 grade", "'6'",
                                "CTCAE grades: 0, 1, 2, 3, 4, 5"]),
    "unknown toxicity scale": ("toxicity.csv", _first("CTCAE", "ctcae"),
                               ["--toxicity line 2 scale", "did you mean 'CTCAE'?"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_refused_with_the_field_named_and_nothing_written(case, cohort, tmp_path,
                                                                        capsys):
    """Catches a bad table read as if it were good, or a record written after an error:
    each bad value is named (field, value, what is allowed, a suggestion where one is close),
    exit status 2, no traceback, no output file."""
    name, edit, expected = BAD[case]
    tables = _edited(cohort, tmp_path, name, edit)
    if "toxicity" not in tables:
        tables["toxicity"] = cohort / "toxicity.csv"
    out = tmp_path / "fit.json"
    code = main(_fit_args(cohort, out, **tables) + ["--figure", str(tmp_path / "fit.png")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err
    assert not out.exists() and not (tmp_path / "fit.png").exists()


def test_cohort_without_both_outcomes_or_too_small_is_refused(cohort, tmp_path, capsys):
    """Catches a fit that cannot be trusted being written: every lesion a responder (no
    non-responder), and a cohort of 5 patients; the reason is given, exit 2, nothing
    written."""
    tables = _edited(cohort, tmp_path, "lesion_outcomes.csv",
                     lambda ls: [ls[0]] + [line.replace(",SD,", ",PR,") for line in ls[1:]])
    out = tmp_path / "fit.json"
    assert main(_fit_args(cohort, out, **tables)) == 2
    assert "a dose–response needs both outcomes" in capsys.readouterr().err
    small = _edited(cohort, tmp_path, "lesion_outcomes.csv", lambda ls: ls[:16])
    assert main(_fit_args(cohort, out, **small)) == 2
    err = capsys.readouterr().err
    assert "--lesions" in err and "at least" in err
    assert not out.exists()


def test_unreadable_and_binary_tables(cohort, tmp_path, capsys):
    """Catches a traceback on a missing file or on bytes that are not UTF-8 text."""
    out = tmp_path / "fit.json"
    assert main(_fit_args(cohort, out, lesions=tmp_path / "missing.csv")) == 2
    assert "--lesions" in capsys.readouterr().err
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert main(_fit_args(cohort, out, lesions=binary)) == 2
    assert "UTF-8" in capsys.readouterr().err
    assert not out.exists()


def test_record_validates_and_names_its_inputs(fit_file, cohort):
    """Catches a record without its inputs' hashes or software versions, or one the
    published schema does not describe."""
    import hashlib

    import jsonschema
    record = json.loads(fit_file.read_text())
    schema = json.loads((REPO / "docs" / "schemas" / "response-1.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(record, schema)
    assert record["inputs"]["lesions"]["sha256"] == hashlib.sha256(
        (cohort / "lesion_outcomes.csv").read_bytes()).hexdigest()
    assert record["software"]["statsmodels"]
    assert record["tumour"]["n"] == 600 and record["tumour"]["patients"] == 200
    assert record["liver"]["n"] == 200 and "lyman" in record["liver"]
    truth = json.loads((cohort / "truth.json").read_text())
    d50 = next(d for d in record["tumour"]["doses"] if d["p"] == 0.5)
    assert d50["low_gy"] <= truth["d50_gy"] <= d50["high_gy"]


def test_plan_probabilities_by_hand(fit_file, base_case):
    """Catches a probability taken at the wrong dose, with the wrong link, or an interval of
    the Monte Carlo that is not the probability at the ends of the dose interval. Hand
    calculation from the record's coefficients: P = 1/(1 + exp(-(b0 + b1 D))) at the plan's
    tumour dose; NTCP = Phi(b0 + b1 D) at its whole-normal-liver dose."""
    from scipy.stats import norm
    record = json.loads(fit_file.read_text())
    fit = fit_for_plan(str(fit_file), lambda path, option: json.loads(open(path).read()))
    plain = plan_case(parse_case(base_case))
    plan = plan_case(parse_case(base_case), response=fit)
    part = plan["dose_response"]
    b0, b1 = record["tumour"]["params"]
    dose = plan["positions"][0]["tumours"][0]["dose_gy"]
    row = part["tumours"][0]
    assert row["planned_value_gy"] == dose
    assert row["probability"] == pytest.approx(1 / (1 + math.exp(-(b0 + b1 * dose))))
    mc = plan["uncertainty"]["figures"]["right hepatic/T1"]
    assert row["monte_carlo"]["probability_low"] == pytest.approx(
        1 / (1 + math.exp(-(b0 + b1 * mc["low"]))))
    assert row["monte_carlo"]["probability_high"] == pytest.approx(
        1 / (1 + math.exp(-(b0 + b1 * mc["high"]))))
    assert row["low"] < row["probability"] < row["high"]
    c0, c1 = record["liver"]["params"]
    liver_dose = plan["whole_liver"]["whole_normal_liver_dose_gy"]
    assert part["liver"]["probability"] == pytest.approx(norm.cdf(c0 + c1 * liver_dose))
    # information only: nothing else in the plan changes
    without = {k: v for k, v in plan.items() if k not in ("dose_response", "created")}
    assert without == {k: v for k, v in plain.items() if k != "created"}


def test_plan_command_text_replay_and_schema(fit_file, base_case, tmp_path, capsys):
    """Catches a plan that names its fit without keeping what replays it, or text that
    omits the probabilities."""
    import jsonschema
    case = tmp_path / "case.json"
    case.write_text(json.dumps(base_case))
    out = tmp_path / "plan.json"
    assert main(["plan", str(case), "--response", str(fit_file), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "P(response) right hepatic/T1" in text and "P(liver toxicity)" in text
    assert "information, never limits" in text
    record = json.loads(out.read_text())
    jsonschema.validate(record, json.loads(
        (REPO / "docs" / "schemas" / "plan-1.schema.json").read_text()))
    assert main(["replay", str(out)]) == 0
    assert "reproduced exactly" in capsys.readouterr().out


def test_plan_refuses_a_bad_fit(base_case, tmp_path, capsys):
    """Catches a mistyped published key or a file of another kind used as a fit."""
    case = tmp_path / "case.json"
    case.write_text(json.dumps(base_case))
    assert main(["plan", str(case), "--response", "published:glass-tcp-mean-202"]) == 2
    assert "did you mean 'glass-tcp-mean-2020'?" in capsys.readouterr().err
    assert main(["plan", str(case), "--response", str(case)]) == 2
    assert "tareplanner.response/1" in capsys.readouterr().err


def test_published_relations_match_their_source(base_case):
    """Catches a published value that is not the source's, or a slope invented for it. The
    source (J Nucl Med 2020;61(1):104, abstract): "The AD and BED metrics yielding 50% TCP
    were 292 and 441 Gy"; it gives no slope there, so no probability is computed, and the
    plan says on which side of the 50 % dose it lies."""
    fits = published_fits()
    assert fits["glass-tcp-mean-2020"]["tumour"]["d50_gy"] == 292
    assert fits["glass-tcp-bed-2020"]["tumour"]["d50_gy"] == 441
    for entry in fits.values():
        assert "J Nucl Med 2020;61(1):104" in entry["source"]
        assert entry["tumour"]["params"] is None
    fit = fit_for_plan("published:glass-tcp-mean-2020", None)
    plan = plan_case(parse_case(base_case), response=fit)
    row = plan["dose_response"]["tumours"][0]
    assert not row["available"] and "slope" in row["reason"]
    assert row["relative_to_d50"] == ("below" if row["planned_value_gy"] < 292 else "above")


def test_bed_metric_on_a_plan_by_hand(base_case):
    """Catches a BED fit applied to the absorbed dose: the plan's value is the BED of its
    mean tumour dose, D (1 + D lambda / ((mu + lambda) alpha/beta)), with Y-90 T1/2 64.1 h,
    tumour repair half-time 1.5 h and alpha/beta 10 Gy (data/radiobiology.json's sources)."""
    fit = {"kind": "published", "sha256": "0" * 64, "label": "test",
           "tumour": {"metric": "bed_mean", "model": "logit", "params": [-4.0, 0.01],
                      "covariance": [[0.1, 0.0], [0.0, 1e-7]]}, "liver": None}
    plan = plan_case(parse_case(base_case), response=fit)
    dose = plan["positions"][0]["tumours"][0]["dose_gy"]
    lam, mu = math.log(2) / plan["nuclide"]["half_life_h"], math.log(2) / 1.5
    assert plan["nuclide"]["half_life_h"] == pytest.approx(64.1, abs=0.1)
    row = plan["dose_response"]["tumours"][0]
    assert row["planned_value_gy"] == pytest.approx(dose * (1 + dose * lam / ((mu + lam) * 10)))


def test_report_marks_lie_on_the_curves(fit_file, base_case):
    """Catches a figure whose marks are not at the plan's doses or not on the curve: each
    mark's x is the planned value and its y the curve's value there (the plotted line
    interpolated at the mark, within the line's sampling error)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tareplanner.records.response_report import plan_response_axes
    fit = fit_for_plan(str(fit_file), lambda path, option: json.loads(open(path).read()))
    plan = plan_case(parse_case(base_case), response=fit)
    fig, (a, b) = plt.subplots(1, 2)
    lines = plan_response_axes(a, b, plan["dose_response"])
    expected = {"tumour": plan["positions"][0]["tumours"][0]["dose_gy"],
                "liver": plan["whole_liver"]["whole_normal_liver_dose_gy"]}
    for name, ax in (("tumour", a), ("liver", b)):
        x, y = lines[name].get_data()
        marks = [line for line in ax.lines if (line.get_gid() or "").startswith("mark:")]
        assert len(marks) == 1
        mx, my = marks[0].get_data()
        assert mx[0] == pytest.approx(expected[name])
        assert my[0] == pytest.approx(np.interp(mx[0], x, y), abs=2e-3)
    plt.close(fig)


def test_report_has_the_section(fit_file, base_case, tmp_path):
    """Catches a PDF that drops the plan's dose–response section."""
    pypdf = pytest.importorskip("pypdf")
    from tareplanner.records.report import write_report
    fit = fit_for_plan(str(fit_file), lambda path, option: json.loads(open(path).read()))
    plan = plan_case(parse_case(base_case), response=fit)
    pdf = write_report(plan, tmp_path / "r.pdf")
    text = "".join(page.extract_text() for page in pypdf.PdfReader(pdf).pages)
    assert "Dose-response (information, not limits)" in text
    assert "P(response)" in text


def test_fit_command_is_fast_enough(cohort, tmp_path):
    """Catches a slow path around the fit (reading, joining, writing) for 600 lesions and
    200 patients: the whole command within 5 s."""
    import time
    start = time.perf_counter()
    assert main(_fit_args(cohort, tmp_path / "f.json",
                          toxicity=cohort / "toxicity.csv")) == 0
    assert time.perf_counter() - start <= 5.0


def test_plan_response_without_whole_liver(base_case, fit_file):
    """Catches a liver probability computed without a whole-normal-liver dose."""
    del base_case["whole_liver_volume_ml"]
    fit = fit_for_plan(str(fit_file), lambda path, option: json.loads(open(path).read()))
    plan = plan_case(parse_case(base_case), response=fit)
    assert plan["dose_response"]["liver"]["available"] is False
    assert plan_response(plan, fit)["liver"]["available"] is False


def test_module_and_web_plans_get_the_same_probabilities(fit_file, base_case):
    """Catches the shared workflow (Slicer module, web page) adding the probabilities
    differently from ``tareplanner plan --response``: ``with_response`` on a plan equals
    the plan made with the fit."""
    from tareplanner.records.response_record import with_response
    fit = fit_for_plan(str(fit_file), lambda path, option: json.loads(open(path).read()))
    direct = plan_case(parse_case(base_case), response=fit)
    added = with_response(plan_case(parse_case(base_case)), str(fit_file))
    assert added["dose_response"] == direct["dose_response"]


def test_guided_plan_step_names_the_fit():
    """Catches a plan step that is not marked outdated when its dose-response fit changes."""
    pytest.importorskip("slicer")
    from tareplanner.mrml import guided
    p = guided.Parameters()
    before = guided.step_inputs(p, "plan")
    p.responseFit = "published:glass-tcp-mean-2020"
    after = guided.step_inputs(p, "plan")
    assert before["response fit"] != after["response fit"]
    assert after["response fit"] == "published:glass-tcp-mean-2020"


def test_batch_table_gets_the_eud_of_each_structure(tmp_path):
    """Catches an EUD column read from the wrong DVH table (phase) or the wrong structure's
    column: a patient folder as tareplanner dose writes it, whose planned DVH holds T1 at a
    uniform 100 Gy and the delivered one at 200 Gy (1 Gy bins: EUD at the bin centre, so
    100.5 and 200.5 Gy by hand), with "normal liver" at 30 Gy in both."""
    from tareplanner.cli.batch import CohortRow, cohort_table
    folder = tmp_path / "patients" / "P1"
    folder.mkdir(parents=True)
    structure = {"kind": "tumour", "mean_gy": 1.0, "bed": {"mean_gy": 1.0, "D70": 1.0}}
    normal = {**structure, "kind": "normal"}
    (folder / "dose.json").write_text(json.dumps({
        "schema": "tareplanner.dose/1", "created": "2026-01-01T00:00:00+00:00",
        "plan_input_sha256": "0" * 64, "dose": {}, "warnings": [],
        "predictive": {"structures": {"T1": structure, "normal liver": normal}},
        "post_treatment": {"structures": {"T1": structure, "normal liver": normal}}}))

    def dvh(t1):
        rows = ['dose_gy,"T1 (%)","normal liver (%)"']
        rows += [f"{e},{100.0 if e <= t1 else 0.0},{100.0 if e <= 30 else 0.0}"
                 for e in range(0, 260)]
        return "\n".join(rows) + "\n"
    (folder / "dvh_planned.csv").write_text(dvh(100))
    (folder / "dvh_delivered.csv").write_text(dvh(200))
    row = CohortRow("P1", "m.json", "p.json", None, None)
    table = {(r["phase"], r["structure"]): r
             for r in cohort_table([row], tmp_path, eud_alpha_per_gy=0.01)}
    assert table[("planned", "T1")]["eud_gy"] == pytest.approx(100.5)
    assert table[("delivered", "T1")]["eud_gy"] == pytest.approx(200.5)
    assert table[("delivered", "normal liver")]["eud_gy"] == pytest.approx(30.5)
    assert "eud_gy" not in cohort_table([row], tmp_path)[0]


@pytest.mark.parametrize("alpha", ["0", "-0.1", "nan", "10.001"])
def test_batch_refuses_a_bad_eud_alpha(alpha, tmp_path, capsys):
    """Catches an EUD radiosensitivity outside (0, 10] per Gy accepted (0 divides by zero,
    NaN poisons every EUD); nothing is written."""
    pytest.importorskip("dask")
    cohort = tmp_path / "cohort.csv"
    cohort.write_text("patient_id,measurement,plan\nP1,m.json,p.json\n")
    code = main(["batch", str(cohort), "--out", str(tmp_path / "out"),
                 "--eud-alpha-per-gy", alpha, "--quiet"])
    assert code == 2
    assert "--eud-alpha-per-gy" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_huge_table_refused_before_reading(cohort, tmp_path, capsys):
    """Catches a table read whole whatever its size: a 65 MiB file (sparse) is refused by
    its size, naming the option."""
    huge = tmp_path / "huge.csv"
    with huge.open("wb") as handle:
        handle.truncate(65 * 2 ** 20)
    assert main(_fit_args(cohort, tmp_path / "f.json", lesions=huge)) == 2
    err = capsys.readouterr().err
    assert "--lesions" in err and "at most 64 MiB" in err


def test_outputs_checked_before_anything_is_read(cohort, tmp_path, capsys):
    """Catches a fit computed and then lost (or written where nobody looks): -o into a
    missing folder, and --figure the same file as -o, are refused first."""
    assert main(_fit_args(cohort, tmp_path / "missing" / "f.json")) == 2
    assert "-o" in capsys.readouterr().err
    same = tmp_path / "f.json"
    assert main(_fit_args(cohort, same) + ["--figure", str(same)]) == 2
    assert "--figure" in capsys.readouterr().err
    assert not same.exists()


@pytest.mark.parametrize("option, value", [("--patients", "0"), ("--lesions-per-patient", "51"),
                                           ("--patient-sd", "-1"), ("--patient-sd", "nan")])
def test_synthetic_refuses_bad_options(option, value, tmp_path, capsys):
    """Catches a synthetic cohort of no patients or absurd settings written anyway."""
    assert main(["response", "synthetic", option, value, "--out", str(tmp_path / "c")]) == 2
    assert option in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("edit", [
    lambda r: r["tumour"].update(params=[1.0, 2.0, 3.0]),
    lambda r: r["tumour"].update(covariance=[[1.0, 0.0]]),
    lambda r: r["tumour"].update(model="cloglog"),
    lambda r: r.update(schema="tareplanner.response/2"),
    lambda r: r.pop("liver"),
])
def test_plan_refuses_a_malformed_fit_record(edit, fit_file, base_case, tmp_path, capsys):
    """Catches a damaged or foreign fit record used by a plan: a coefficient too many, a
    covariance that is not 2x2, an unknown link, another schema version, a missing part;
    exit 2, nothing written."""
    record = json.loads(fit_file.read_text())
    edit(record)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(record))
    case = tmp_path / "case.json"
    case.write_text(json.dumps(base_case))
    out = tmp_path / "plan.json"
    assert main(["plan", str(case), "--response", str(bad), "-o", str(out)]) == 2
    assert str(bad) in capsys.readouterr().err
    assert not out.exists()


def test_a_fit_of_another_product_is_warned_about_in_the_plan(base_case):
    """Catches a published glass relation silently applied to a resin plan: the plan's
    warnings (record, text, report) say so."""
    base_case["product"] = "sir-spheres"
    base_case["positions"][0]["goal"] = {"tumour_dose_gy": 120}
    fit = fit_for_plan("published:glass-tcp-mean-2020", None)
    plan = plan_case(parse_case(base_case), response=fit)
    codes = [w["code"] for w in plan["warnings"]]
    assert "response-fit-other-product" in codes
    from tareplanner.records.plan_text import plan_summary
    assert "[response-fit-other-product]" in plan_summary(plan)


def test_module_chart_marks_the_plan_on_the_curves(fit_file, base_case):
    """Catches a Slicer chart whose plan points are not on the curves, or a dose-response
    chart taken for the DVH chart: the plan's tables hold its doses and the probabilities
    the curve tables give there (interpolated, within their sampling), and the DVH chart
    lookup skips the dose-response chart."""
    slicer = pytest.importorskip("slicer")
    from tareplanner.mrml import guided
    from tareplanner.mrml.response_nodes import response_chart_nodes
    fit = fit_for_plan(str(fit_file), lambda path, option: json.loads(open(path).read()))
    plan = plan_case(parse_case(base_case), response=fit)
    scene = slicer.vtkMRMLScene()
    nodes = response_chart_nodes(scene, plan["dose_response"])
    guided._replace_step_nodes(scene, "plan", nodes)
    tables = {n.GetName(): n for n in nodes if n.IsA("vtkMRMLTableNode")}

    def column(table, name):
        array = table.GetTable().GetColumnByName(name)
        return np.array([array.GetValue(i) for i in range(array.GetNumberOfTuples())])
    expected = {"tumour": plan["positions"][0]["tumours"][0]["dose_gy"],
                "liver": plan["whole_liver"]["whole_normal_liver_dose_gy"]}
    for name, dose in expected.items():
        curve, marks = tables[f"Dose-response {name} curve"], tables[f"Dose-response {name} plan"]
        assert column(marks, "dose_gy")[0] == pytest.approx(dose)
        assert column(marks, "p")[0] == pytest.approx(
            np.interp(dose, column(curve, "dose_gy"), column(curve, "p")), abs=2e-3)
        assert np.all(column(curve, "low") <= column(curve, "p"))
    assert guided.dvh_chart_node(scene, "plan") is None
    assert guided.response_chart_node(scene).GetName() == "Dose-response chart"
