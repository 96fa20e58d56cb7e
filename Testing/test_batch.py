"""Cohort batch on a local Dask cluster: several synthetic patients, one failing; resumable."""

import csv
import json

import pytest

from tareplanner.cli.batch import read_cohort, run_cohort
from tareplanner.cli.main import main
from tareplanner.errors import FieldValueError, MissingFieldError


def _patient(root, seed, pet=True):
    d = root / f"p{seed}"
    args = ["phantom", str(d / "img"), "--size", "small", "--seed", str(seed)]
    assert main(args + ([] if pet else ["--no-pet"])) == 0
    img = d / "img"
    assert main(["measure", "--ct", str(img / "nifti/ct.nii.gz"),
                 "--spect", str(img / "nifti/spect_maa.nii.gz"),
                 "--liver", str(img / "labels/liver.nii.gz"),
                 "--tumours", str(img / "labels/tumours.nii.gz"), "--tumour-names", "T1,T2,T3",
                 "--territories", str(img / "labels/territories.nii.gz"),
                 "--territory-names", "right hepatic,left hepatic",
                 "--goal", "tumour_dose_gy=200", "--product", "therasphere",
                 "-o", str(d / "case.json"), "--measurement-output",
                 str(d / "measurement.json")]) == 0
    assert main(["plan", str(d / "case.json"), "-o", str(d / "plan.json")]) == 0
    return d


def test_cohort_runs_records_failures_and_resumes(tmp_path, capsys):
    p1 = _patient(tmp_path, 11)
    p2 = _patient(tmp_path, 12, pet=False)
    cohort = tmp_path / "cohort.csv"
    cohort.write_text(
        "patient_id,measurement,plan,pet,administration_time\n"
        f"P1,{p1 / 'measurement.json'},{p1 / 'plan.json'},{p1 / 'img/dicom/pet_y90'},\n"
        "P2,p12/measurement.json,p12/plan.json,,\n"
        f"P3,{p1 / 'measurement.json'},{p1 / 'missing_plan.json'},,\n")
    out = tmp_path / "out"
    summary = run_cohort(cohort, out, workers=1, progress=True)
    status = {s["patient_id"]: s for s in summary["statuses"]}
    assert status["P1"]["status"] == status["P2"]["status"] == "done"
    assert status["P3"]["status"] == "failed" and "missing_plan.json" in status["P3"]["error"]
    assert (out / "patients" / "P3" / "error.txt").is_file()
    rows = list(csv.DictReader(open(out / "cohort_indices.csv")))
    phases = {(r["patient_id"], r["phase"]) for r in rows}
    assert phases == {("P1", "planned"), ("P1", "delivered"), ("P2", "planned")}
    t1 = next(r for r in rows if r["patient_id"] == "P1" and r["phase"] == "planned"
              and r["structure"] == "T1")
    record = json.loads((out / "patients" / "P1" / "dose.json").read_text())
    assert float(t1["D70"]) == pytest.approx(record["predictive"]["structures"]["T1"]["D70"])
    assert {"mean_gy", "min_gy", "max_gy", "median_gy", "D70", "V100", "bed_mean_gy"} <= set(t1)
    # resumable: done patients are skipped, the failed one is tried again
    again = {s["patient_id"]: s["status"] for s in
             run_cohort(cohort, out, workers=1, progress=False)["statuses"]}
    assert again == {"P1": "skipped (done)", "P2": "skipped (done)", "P3": "failed"}
    assert main(["batch", str(cohort), "--out", str(out), "--quiet"]) == 1
    assert "P3" in capsys.readouterr().out


def test_cohort_csv_errors(tmp_path):
    bad = tmp_path / "c.csv"
    bad.write_text("patient,measurement,plan\nA,m.json,p.json\n")
    with pytest.raises(MissingFieldError, match="patient_id"):
        read_cohort(bad)
    bad.write_text("patient_id,measurement,plan\nA,m.json,p.json\nA,m.json,p.json\n")
    with pytest.raises(FieldValueError, match="unique"):
        read_cohort(bad)
    bad.write_text("patient_id,measurement,plan\nA/B,m.json,p.json\n")
    with pytest.raises(FieldValueError, match="patient_id"):
        read_cohort(bad)


def test_cohort_on_an_existing_scheduler(tmp_path):
    # a centre's scheduler: here a local one started by the test, reached by its address
    from dask.distributed import LocalCluster

    p1 = _patient(tmp_path, 21, pet=False)
    cohort = tmp_path / "cohort.csv"
    cohort.write_text("patient_id,measurement,plan\n"
                      f"Q1,{p1 / 'measurement.json'},{p1 / 'plan.json'}\n")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        summary = run_cohort(cohort, tmp_path / "out", scheduler=cluster.scheduler_address,
                             progress=False)
    assert summary["statuses"] == [{"patient_id": "Q1", "status": "done"}]
    assert summary["rows"] > 0
