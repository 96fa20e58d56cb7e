"""The command line: plan (table, JSON, file), validate, demo, products, lsf."""

import json
import subprocess
import sys

import pytest

from tareplanner.cli.main import main


def test_plan_json_output(base_case, write_case, capsys):
    assert main(["plan", str(write_case(base_case)), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["positions"][0]["limited_by"] == "goal"
    assert record["positions"][0]["tumours"][0]["dose_gy"] == pytest.approx(250)


def test_plan_table_output(base_case, write_case, capsys):
    assert main(["plan", str(write_case(base_case))]) == 0
    out = capsys.readouterr().out
    assert "right hepatic" in out and "2.263" in out and "250.0 Gy" in out


def test_plan_writes_record_and_refuses_to_overwrite(base_case, write_case, tmp_path, capsys):
    out = tmp_path / "plan.json"
    case = str(write_case(base_case))
    assert main(["plan", case, "-o", str(out)]) == 0
    first = out.read_text()
    assert json.loads(first)["schema"] == "tareplanner.plan/1"
    assert main(["plan", case, "-o", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert out.read_text() == first
    assert main(["plan", case, "-o", str(out), "--force"]) == 0


def test_validate(base_case, write_case, capsys):
    assert main(["validate", str(write_case(base_case))]) == 0
    assert "valid tareplanner.case/1" in capsys.readouterr().out


def test_demo_runs_images_to_plan(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--size", "small"]) == 0
    truth = json.loads((out / "phantom" / "truth.json").read_text())
    case = json.loads((out / "case.json").read_text())
    record = json.loads((out / "plan.json").read_text())
    measurement = json.loads((out / "measurement.json").read_text())
    assert [p["name"] for p in record["positions"]] == [p["name"] for p in truth["positions"]]
    assert record["input_sha256"] and case["measurement"]["warnings"] == measurement["warnings"]
    for pos in record["positions"]:
        assert min(t["dose_gy"] for t in pos["tumours"]) == pytest.approx(250) or \
            pos["limited_by"] != "goal"
    assert (out / "plan.txt").read_text().startswith("TAREPlanner plan")
    # the demo's scenario (bilobar HCC, bilirubin 0.8 mg/dL < 1.1) selects the EANM 2022
    # Table 2 whole-normal-liver recommendation < 90 Gy; its check is the plan's whole
    # normal liver dose by hand: the energy each position gives its normal liver
    # (D_N x M_N) over the whole normal liver mass
    assert case["scenario"] == {"intent": "bilobar", "histology": "hcc", "bilirubin_mg_dl": 0.8}
    [row] = [c for c in record["guideline_check"]["rows"]
             if c["quantity"] == "whole_normal_liver" and c["kind"] == "recommendation"]
    assert row["value"] == 90
    by_hand = sum(p["normal_dose_gy"] * p["normal_mass_kg"] for p in record["positions"]) \
        / record["whole_liver"]["whole_normal_liver_mass_kg"]
    assert row["plan_value"] == pytest.approx(by_hand, rel=1e-9)
    assert row["met"] is (by_hand <= 90)
    codes = [w["code"] for w in record["warnings"]]
    assert "no-scenario" not in codes
    assert (out / "phantom" / "dicom" / "pet_y90").is_dir()
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")
    assert (out / "dose" / "dose_planned_gy.nii.gz").is_file()
    for name in ("rtdose_planned.dcm", "rtdose_delivered.dcm", "structures_seg.dcm",
                 "structures_rtstruct.dcm"):
        assert (out / "dose" / name).is_file()
    # every path the demo prints is where the file is once the run has ended, never the
    # generation folder it was built in (swapped in at the end, then named by a link)
    printed = capsys.readouterr().out
    assert ".generation." not in printed
    assert f"written to {out / 'dose'}\n" in printed


def test_products_lists_sources(capsys):
    assert main(["products"]) == 0
    out = capsys.readouterr().out
    assert "sir-spheres" in out and "TvNG 2023" in out and "quiremspheres" in out


def test_lsf_command(capsys):
    assert main(["lsf", "--lung-anterior", "100", "--lung-posterior", "400",
                 "--liver-anterior", "1600", "--liver-posterior", "2500", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["lung_shunt_fraction"] == pytest.approx(200 / 2200)
    assert main(["lsf", "--lung-anterior", "-1", "--lung-posterior", "400",
                 "--liver-anterior", "1600", "--liver-posterior", "2500"]) == 2


def test_console_script_is_installed(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tareplanner", "--version"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.startswith("tareplanner ")


def test_report_without_dosimetry(base_case, write_case, tmp_path, capsys):
    import pypdf

    record = tmp_path / "plan.json"
    assert main(["plan", str(write_case(base_case)), "-o", str(record)]) == 0
    pdf = tmp_path / "plan.pdf"
    assert main(["report", str(record), "-o", str(pdf)]) == 0
    reader = pypdf.PdfReader(pdf)
    assert len(reader.pages) >= 1               # plan pages only: no dosimetry pages
    assert not any("Voxel dosimetry" in page.extract_text() for page in reader.pages)
    assert "2.263" in reader.pages[0].extract_text()
    assert main(["report", str(write_case(base_case, "c2.json")), "-o",
                 str(tmp_path / "x.pdf")]) == 2
    assert not (tmp_path / "x.pdf").exists()


def test_dose_table_header_gives_the_units():
    """Bug caught: the voxel-dose table printed by `tareplanner dose` (and the demo) with
    'mean D70 max' and no unit. Units under each column: volume mL, doses Gy, the change of
    the mean dose %. Hand calculation of the change: delivered 90 Gy against planned 120 Gy
    is 90 / 120 - 1 = -25.0 %."""
    from tareplanner.cli.dose_commands import _summary

    record = {"predictive": {"structures": {
        "T1": {"volume_ml": 57.7, "mean_gy": 120.0, "D70": 100.0, "max_gy": 200.0}}},
        "post_treatment": {"structures": {"T1": {"mean_gy": 90.0, "D70": 80.0}}},
        "comparison": {"T1": {"mean_gy": {"planned": 120.0, "delivered": 90.0,
                                          "relative": 90.0 / 120.0 - 1}}}}
    names, units, row = _summary(record).splitlines()
    columns = names.split()
    assert columns == ["structure", "volume", "mean", "D70", "max", "delivered", "mean", "D70",
                       "change"]
    assert units.split() == ["(mL)", "(Gy)", "(Gy)", "(Gy)", "(Gy)", "(Gy)", "(%)"]
    assert row.split() == ["T1", "57.7", "120.0", "100.0", "200.0", "90.0", "80.0", "-25.0"]
    # each unit stands right under its column's name (right-aligned columns end together)
    for name, unit in (("volume", "(mL)"), ("change", "(%)")):
        assert names.index(name) + len(name) == units.index(unit) + len(unit)
    predictive_only = _summary({"predictive": record["predictive"]}).splitlines()
    assert predictive_only[1].split() == ["(mL)", "(Gy)", "(Gy)", "(Gy)"]
