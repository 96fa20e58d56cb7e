"""Hostile JSON and CSV documents: case files (plan, validate), site limits, plan records
(replay, report, dose), measurement records (dose), dose folders (report --dose), the
cohort CSV (batch).

Expected outcomes come from the JSON standard (RFC 8259: no NaN or Infinity, numbers a
reader may limit to IEEE doubles, keys that should be unique) and from the documented
ranges of each field (docs/case-format.md), never from the code under test.
"""

from __future__ import annotations

import copy
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .hostile import FUZZ, assert_named_error, assert_refused, snapshot
from tareplanner.errors import TarePlannerInputError

BASE = {
    "schema": "tareplanner.case/1", "product": "therasphere", "method": "partition",
    "lung_shunt_fraction": 0.06, "lsf_method": "spect-whole-lung",
    "patient": {"height_cm": 172, "weight_kg": 80},
    "whole_liver_volume_ml": 1800, "whole_liver_tumour_volume_ml": 150,
    "treatment_time": "2026-12-01T10:00:00+01:00",
    "positions": [{"name": "right hepatic", "normal_volume_ml": 900,
                   "tumours": [{"name": "T1", "volume_ml": 120, "tnr": 3.1}],
                   "goal": {"tumour_dose_gy": 250}}],
}

#: values no field of a case accepts in every place, and values that are legal somewhere
HOSTILE_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**30, 10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 1e308, -1e308, 5e-324, 1e-308, 2 ** 63, "", " ", "0", "NaN",
                     "1e400", "\x00", "a\nb", "../..", "x" * 500, [], {}, [1], {"a": 1}]),
    st.text(max_size=80))


def _paths(document, prefix=()):
    """Every (path) to a value inside a JSON document."""
    yield prefix
    if isinstance(document, dict):
        for key, value in document.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(document, list):
        for i, value in enumerate(document):
            yield from _paths(value, prefix + (i,))


def _set(document, path, value):
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def _all_finite(document) -> bool:
    if isinstance(document, float):
        return math.isfinite(document)
    if isinstance(document, dict):
        return all(_all_finite(v) for v in document.values())
    if isinstance(document, list):
        return all(_all_finite(v) for v in document)
    return True


@st.composite
def mutated_cases(draw):
    document = copy.deepcopy(BASE)
    paths = [p for p in _paths(document) if p]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        try:
            _set(document, path, draw(HOSTILE_VALUES))
        except (KeyError, IndexError, TypeError):
            pass
        paths = [p for p in _paths(document) if p]
    if draw(st.booleans()):
        document[draw(st.text(min_size=1, max_size=12))] = draw(HOSTILE_VALUES)
    return document


@FUZZ
@given(document=mutated_cases())
def test_mutated_case_is_planned_or_refused_by_name(sandbox, document):
    """A case with any field replaced by a value of another type or range is planned (a
    finite record is written) or refused with the field's name; the bugs this catches:
    a traceback (TypeError on a list where a number was expected), a boolean taken as the
    number 1, a record written with NaN, a partial output file."""
    case = sandbox.write("case.json", document)
    output = sandbox.out / "plan.json"
    outcome = sandbox.run(["plan", case, "-o", output])
    if outcome.code == 0:
        record = json.loads(output.read_text(), parse_constant=pytest.fail)
        assert _all_finite(record)
        output.unlink()
    else:
        assert_named_error(outcome, out=sandbox.out)


@pytest.mark.parametrize("text, field", [
    ('{"schema": "tareplanner.case/1", "lung_shunt_fraction": NaN}', "NaN is not JSON"),
    ('{"schema": "tareplanner.case/1", "lung_shunt_fraction": Infinity}',
     "Infinity is not JSON"),
    ('{"schema": "tareplanner.case/1", "lung_shunt_fraction": 1e400}', "1e400 overflows"),
    ('{"schema": "tareplanner.case/1", "product": "therasphere", "product": "sir-spheres"}',
     "duplicate key 'product'"),
    ("[" * 5000 + "]" * 5000, "levels of nested"),
    ('{"case_id": "\\ud800"}', "unpaired surrogate"),
    ('{"schema": "tareplanner.case/1", "lung_mass_kg": ' + "9" * 5000 + "}", "case file"),
    ("", "valid JSON"),
    ('{"schema": "tareplanner.case/1", "positions": [', "valid JSON"),
    (b"\xff\xfe{\x00}\x00", "UTF-8"),
])
def test_malformed_case_json_is_refused(sandbox, text, field):
    """JSON that RFC 8259 does not allow, or that Python's reader turns into something else
    (NaN, inf for 1e400, the last of duplicate keys wins, RecursionError on deep nesting),
    is refused naming the case file; before, NaN and 1e400 passed through as numbers, a
    duplicate key silently chose a product and deep nesting gave a traceback."""
    case = sandbox.write("case.json", text)
    for command in (["validate", case], ["plan", case, "-o", sandbox.out / "plan.json"]):
        assert_refused(sandbox.run(command), "case file", field, out=sandbox.out)


@pytest.mark.parametrize("mutate, fragment", [
    (lambda d: d["positions"][0].update(name="a/b"), "positions[0].name"),
    (lambda d: d["positions"][0].update(name=".."), "positions[0].name"),
    (lambda d: d["positions"][0].update(name="right\nhepatic"), "positions[0].name"),
    (lambda d: d["positions"][0].update(name="x" * 65), "positions[0].name"),
    (lambda d: d["positions"][0]["tumours"][0].update(name="T\x001"),
     "positions[0].tumours[0].name"),
    (lambda d: d.update(case_id="../../etc/passwd"), "case_id"),
    (lambda d: d.update(case_id="A\u202eB"), "case_id"),
    (lambda d: d["patient"].update(id="\t"), "patient.id"),
    (lambda d: d.update(treatment_time="9999-12-31T23:59:59-12:00"), "treatment_time"),
    (lambda d: d.update(treatment_time="0001-01-01T00:00:00+00:00"), "treatment_time"),
    (lambda d: d["positions"][0]["goal"].update(tumour_dose_gy=True),
     "positions[0].goal.tumour_dose_gy"),
    (lambda d: d.update(measurement={"manual_entries": [{"quantity": "tnr", "entered": True}]}),
     "measurement.manual_entries"),
])
def test_hostile_case_fields_are_refused(sandbox, mutate, fragment):
    """Names that reach file names, the PDF or DICOM labels (path separators, '..',
    control characters, newlines, more than 64 characters: the DICOM LO length, past which
    SEG labels were cut silently), dates near years 1 and 9999 (OverflowError in the decay
    arithmetic before), booleans for numbers (JSON true is an int in Python)."""
    document = copy.deepcopy(BASE)
    mutate(document)
    case = sandbox.write("case.json", document)
    assert_refused(sandbox.run(["plan", case, "-o", sandbox.out / "p.json"]), fragment,
                   out=sandbox.out)


def test_unicode_names_are_accepted(sandbox):
    """Names are not limited to ASCII: accents and CJK are kept as written."""
    document = copy.deepcopy(BASE)
    document["positions"][0]["name"] = "segment IV – gauche 左"
    document["case_id"] = "CHU-Lyon é-12"
    case = sandbox.write("case.json", document)
    outcome = sandbox.run(["plan", case, "-o", sandbox.out / "p.json"])
    assert outcome.code == 0, outcome.err
    record = json.loads((sandbox.out / "p.json").read_text(encoding="utf-8"))
    assert record["positions"][0]["name"] == "segment IV – gauche 左"


SITE = {"schema": "tareplanner.site-limits/1", "site": "Hospital X",
        "products": {"therasphere": {"normal_liver_gy": 100}}}


@FUZZ
@given(value=HOSTILE_VALUES, where=st.sampled_from(["limit", "site", "product", "schema"]))
def test_site_limits_are_used_or_refused(sandbox, records, value, where):
    """Site limits with any value in a limit, the site's name, a product or the schema: the
    plan runs or the file is refused by name (a NaN limit made every comparison false, so
    no limit applied; a non-text site name reached the report)."""
    document = copy.deepcopy(SITE)
    if where == "limit":
        document["products"]["therasphere"]["normal_liver_gy"] = value
    elif where == "site":
        document["site"] = value
    elif where == "product":
        document["products"] = {str(value)[:20]: {"normal_liver_gy": 100}}
    else:
        document["schema"] = value
    limits = sandbox.write("site.json", document)
    outcome = sandbox.run(["plan", records["case"], "--site-limits", limits, "-o",
                           sandbox.out / "p.json"])
    if outcome.code == 0:
        (sandbox.out / "p.json").unlink()
    else:
        assert_named_error(outcome, out=sandbox.out)
        assert "site limits" in outcome.err


@pytest.mark.parametrize("text", [
    '{"schema": "tareplanner.site-limits/1", "products": {"therasphere": '
    '{"normal_liver_gy": NaN}}}',
    '{"schema": "tareplanner.site-limits/1", "products": {"therasphere": '
    '{"normal_liver_gy": 1e400}}}',
    '{"schema": "tareplanner.site-limits/1", "products": {"therasphere": '
    '{"normal_liver_gy": 40, "normal_liver_gy": 400}}}',
])
def test_site_limits_nan_overflow_and_duplicates_refused(sandbox, records, text):
    """NaN and 1e400 (inf) limits passed the check `value <= 0` and switched the limit off;
    a duplicated limit kept the last value without a word."""
    limits = sandbox.write("site.json", text)
    assert_refused(sandbox.run(["plan", records["case"], "--site-limits", limits]),
                   "site limits file")


@st.composite
def mutated_records(draw, base):
    record = copy.deepcopy(base)
    paths = [p for p in _paths(record) if p and p[0] != "case"]
    for _ in range(draw(st.integers(1, 2))):
        path = draw(st.sampled_from(paths))
        parent = record
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(HOSTILE_VALUES)
        paths = [p for p in _paths(record) if p and p[0] != "case"]
    return record


def test_mutated_plan_records_are_checked_or_refused(records):
    """A plan record with any field dropped or replaced is accepted by the record check or
    refused by name; nothing else escapes (replay and report read these fields: before, a
    missing 'software' or a string in 'positions' gave KeyError/TypeError tracebacks)."""
    from hypothesis import given as given_

    from tareplanner.records.record_checks import check_plan_record
    base = json.loads(records["plan"].read_text())

    @FUZZ
    @given_(record=mutated_records(base))
    def check(record):
        try:
            check_plan_record(record)
        except TarePlannerInputError as exc:
            assert exc.field.startswith("record")
    check()


@pytest.mark.parametrize("mutate, fragment", [
    (lambda r: r.pop("case"), "record.case"),
    (lambda r: r.pop("software"), "record.software"),
    (lambda r: r.update(limits=5), "record.limits"),
    (lambda r: r.update(product=[]), "record.product"),
    (lambda r: r.update(positions="x"), "record.positions"),
    (lambda r: r["positions"][0].update(name="a\x1b[31m\n"), "record.positions[0].name"),
    (lambda r: r.update(case_id="x" * 5000), "record.case_id"),
    (lambda r: r["positions"][0].update(activity_gbq=-1), "record.positions[0].activity_gbq"),
    (lambda r: r["warnings"].append({"code": 1, "message": "m"}), "record.warnings"),
])
def test_replay_and_report_refuse_broken_records(sandbox, records, mutate, fragment):
    """replay and report of a hand-edited record: exit 2 naming the field, no PDF."""
    record = json.loads(records["plan"].read_text())
    mutate(record)
    path = sandbox.write("plan.json", record)
    assert_refused(sandbox.run(["replay", path]), fragment)
    assert_refused(sandbox.run(["report", path, "-o", sandbox.out / "r.pdf"]), fragment,
                   out=sandbox.out)


def test_mutated_measurement_records_are_checked_or_refused(records):
    """The measurement record the dose command reads: any field dropped or replaced is
    accepted or refused by name (before: KeyError on 'inputs', AttributeError on a number
    for territory_labels, a string label number used as a voxel value)."""
    from hypothesis import given as given_

    from tareplanner.records.record_checks import check_measurement_record
    base = json.loads(records["measurement"].read_text())

    @FUZZ
    @given_(record=mutated_records(base))
    def check(record):
        try:
            check_measurement_record(record)
        except TarePlannerInputError as exc:
            assert exc.field.startswith("measurement")
    check()


@pytest.mark.parametrize("which, mutate, fragment", [
    ("measurement", lambda m: m.pop("inputs"), "measurement.inputs"),
    ("measurement", lambda m: m["label_outputs"].update(territory_labels=5),
     "measurement.label_outputs.territory_labels"),
    ("measurement", lambda m: m.update(tumour_labels={"T1": "x"}),
     "measurement.tumour_labels.T1"),
    ("measurement", lambda m: m["inputs"]["ct"].update(source="/nonexistent"),
     "--measurement"),
    ("plan", lambda p: p.pop("product"), "plan.product"),
    ("plan", lambda p: p["positions"][0].update(activity_gbq="x"),
     "plan.positions[0].activity_gbq"),
    ("plan", lambda p: p["positions"][0].update(activity_gbq=1e308),
     "plan.positions[0].activity_gbq"),
    ("plan", lambda p: p.update(lung_shunt_fraction=2), "plan.lung_shunt_fraction"),
])
def test_dose_refuses_broken_records(sandbox, records, which, mutate, fragment):
    """dose with a broken measurement or plan record: exit 2 naming the field, the output
    folder not made (before: tracebacks, or a dose computed from a negative activity)."""
    documents = {k: json.loads(records[k].read_text()) for k in ("measurement", "plan")}
    mutate(documents[which])
    paths = {k: sandbox.write(f"{k}.json", v) for k, v in documents.items()}
    out = sandbox.out / "dose"
    outcome = sandbox.run(["dose", "--measurement", paths["measurement"], "--plan",
                           paths["plan"], "--method", "ldm", "--out", out])
    assert_refused(outcome, fragment, out=sandbox.out)


@pytest.mark.parametrize("option, value, fragment", [
    ("--bin-gy", "0", "--bin-gy"), ("--bin-gy", "nan", "--bin-gy"),
    ("--bin-gy", "-1", "--bin-gy"), ("--administration-time", "yesterday",
                                     "--administration-time"),
    ("--administration-time", "2026-11-24T10:00:00", "--administration-time"),
    ("--administered-gbq", "-3", "--administered-gbq"),
    ("--residual-fraction", "5", "--residual-fraction"),
    ("--bin-gy", "x", "--bin-gy"),
])
def test_dose_options_refused_before_computing(sandbox, records, option, value, fragment):
    """Numeric and time options of dose: before, --bin-gy 0 divided by zero (traceback) and
    nan gave "cannot convert float NaN to integer" without naming the option."""
    outcome = sandbox.run(["dose", "--measurement", records["measurement"], "--plan",
                           records["plan"], "--method", "ldm", "--out", sandbox.out / "d",
                           option, value])
    assert_refused(outcome, fragment, out=sandbox.out)


@pytest.mark.parametrize("breaks, fragment", [
    (lambda d: (d / "dose.json").write_text("{bad"), "--dose dose.json"),
    (lambda d: (d / "dose.json").write_text("{}"), "--dose dose.json.schema"),
    (lambda d: (d / "dvh_planned.csv").write_text("dose,x\n1,abc\n"), "--dose dvh_planned"),
    (lambda d: (d / "dose_planned_gy.nii.gz").write_bytes(b"\x1f\x8b\x08"), "--dose"),
    (lambda d: (d / "dose.json").unlink(), "--dose"),
])
def test_report_refuses_broken_dose_folders(sandbox, records, breaks, fragment):
    """report --dose with a damaged dose folder: before, a bad dose.json gave a message
    without a field, a damaged NIfTI a SimpleITK traceback after part of the PDF was made."""
    import shutil
    dose = sandbox.inputs / "dose"
    shutil.copytree(records["dose"], dose)
    breaks(dose)
    outcome = sandbox.run(["report", records["plan"], "--dose", dose, "-o",
                           sandbox.out / "r.pdf"])
    assert_refused(outcome, fragment, out=sandbox.out)


@FUZZ
@given(cells=st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12),
                                 st.text(max_size=12)), min_size=1, max_size=4))
def test_cohort_csv_rows_or_named_refusal(tmp_path_factory, cells):
    """Any cohort CSV is read into rows whose patient folders lie inside the output folder,
    or refused by name (a patient id of '..' made the dose command replace the whole output
    folder: OUT/patients/.. is OUT)."""
    import csv
    import io

    from tareplanner.cli.batch import read_cohort
    folder = tmp_path_factory.mktemp("cohort")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["patient_id", "measurement", "plan"])
    writer.writerows(cells)
    path = folder / "cohort.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8", errors="surrogatepass")
    try:
        rows = read_cohort(path)
    except TarePlannerInputError as exc:
        assert "cohort" in exc.field
        return
    patients = (folder / "out" / "patients").resolve()
    for row in rows:
        assert (patients / row.patient_id).resolve().parent == patients


@pytest.mark.parametrize("text, fragment", [
    ("patient_id,measurement,plan\n..,m.json,p.json\n", "patient_id"),
    ("patient_id,measurement,plan\n.,m.json,p.json\n", "patient_id"),
    ("patient_id,measurement,plan\na/b,m.json,p.json\n", "patient_id"),
    ("patient_id,measurement,plan\nP1,,p.json\n", "measurement"),
    ("patient_id,plan\nP1,p.json\n", "measurement"),
    (b"\xff\xfe\x00p", "cohort"),
])
def test_batch_refuses_hostile_cohorts(sandbox, text, fragment):
    """The batch command refuses these before any worker starts, exit 2, output folder
    untouched."""
    pytest.importorskip("dask.distributed")
    cohort = sandbox.write("cohort.csv", text)
    before = snapshot(sandbox.out)
    outcome = sandbox.run(["batch", cohort, "--out", sandbox.out / "b", "--quiet"])
    assert_refused(outcome, fragment, out=sandbox.out, out_before=before)


def test_batch_workers_out_of_range(sandbox):
    """--workers 0 silently became 1; a negative count reached Dask."""
    pytest.importorskip("dask.distributed")
    cohort = sandbox.write("cohort.csv", "patient_id,measurement,plan\nP1,m.json,p.json\n")
    for workers in ("0", "-2"):
        assert_refused(sandbox.run(["batch", cohort, "--out", sandbox.out / "b",
                                    "--workers", workers]), "--workers", out=sandbox.out)
