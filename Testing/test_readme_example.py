"""The README's worked example runs as written, top to bottom, in an empty folder, and gives
the numbers the README states.

Catches a README that names files that do not exist in a fresh folder, commands that refuse
to overwrite what an earlier line wrote, and numbers in the text that the program no longer
gives. The expected numbers are hand calculations (see test_safety_edges and test_planning):
TheraSphere partition, LSF 6 %, 900 mL normal + 120 mL tumour (TNR 3.1) at 1.03 g/mL:
D_N per GBq = 49.67 * 0.94 / (0.927 + 3.1 * 0.1236) = 35.637 Gy/GBq; 250 Gy tumour at
250 / (3.1 * 35.637) = 2.263 GBq; D_N = 80.6 Gy; lung 49.67 * 0.06 * 2.263 = 6.74 Gy;
with the site's 75 Gy normal-liver limit: 75 / 35.637 = 2.105 GBq.
"""

import json
import re
import shutil
import subprocess

import pytest

from conftest import REPO


def _worked_example() -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Worked example"):]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


@pytest.mark.skipif(shutil.which("tareplanner") is None, reason="tareplanner not installed")
def test_readme_worked_example_runs_in_an_empty_folder(tmp_path):
    script = "set -eu\n" + _worked_example()   # as a user types it: no pipefail
    run = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    readme = (REPO / "README.md").read_text()
    # the numbers the README states, against the hand calculation above
    assert "**2.263 GBq**" in readme and "80.6 Gy" in readme and "6.7 Gy" in readme
    assert "right hepatic" in run.stdout and "2.263" in run.stdout
    site_plan = json.loads((tmp_path / "my-plan.json").read_text())
    assert site_plan["positions"][0]["activity_gbq"] == pytest.approx(75 / 35.637, abs=1e-3)
    assert "2.105 GBq" in readme
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["lung_mass"]["source"] == "ct-densitovolumetry"
    assert plan["lung_mass"]["kg"] == pytest.approx(0.72, abs=0.01)   # phantom truth 0.72 kg
    # the site's 75 Gy normal-liver limit binds both lobes; the promoted EANM 2022 Table 2
    # row (bilobar HCC, bilirubin < 1.1 mg/dL: whole normal liver < 90 Gy) is then met
    assert plan["scenario"]["intent"] == "bilobar"
    assert all(p["normal_dose_gy"] == pytest.approx(75.0) for p in plan["positions"])
    (row,) = [c for c in plan["guideline_check"]["rows"] if c["quantity"] == "whole_normal_liver"]
    assert (row["value"], row["kind"], row["status"]) == (90, "hard", "met")
    stated = re.search(r"scales both positions\s+\(([\d.]+) GBq in all, lung ([\d.]+) Gy\)",
                       readme)
    assert plan["total_activity_gbq"] == pytest.approx(float(stated.group(1)), abs=0.05)
    assert plan["lung_dose_gy"] == pytest.approx(float(stated.group(2)), abs=0.05)
    for name in ("plan.pdf", "dose/dose.json", "measurement.json", "case.json"):
        assert (tmp_path / name).is_file()
