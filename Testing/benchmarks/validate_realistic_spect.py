"""TNR and LSF of the synthetic patient measured on its two SPECT models.

    python Testing/benchmarks/validate_realistic_spect.py [--workdir DIR] [--seed N] [--ho166]

Builds the small synthetic patient twice, with the default Gaussian SPECT model and with the
realistic one (``--spect-model realistic``: attenuation, collimator-detector response,
scatter, Poisson noise, OSEM; needs the extra ``realistic-spect``), through the command line
(``tareplanner phantom``), runs the README's ``tareplanner measure`` line on each, and prints
the LSF and the TNR of every tumour against truth.json, both as measured on the image
(``*_uncorrected`` in the measurement record) and as written into the case (after measure's
partial-volume correction), with the time the SPECT simulation took (the phantom with the
realistic model less the phantom with the Gaussian one). With ``--ho166`` the Ho-166 scout
SPECT is measured too (truth: the scout's TNRs). Not a test: the figures go into
docs/imaging.md and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tareplanner.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"tareplanner {' '.join(args)} failed ({done.returncode}):\n"
                         f"{done.stdout}\n{done.stderr}")
    return time.perf_counter() - start


def measure(patient: str, spect: str, cwd: Path, tag: str) -> tuple[dict, dict]:
    case, record = f"case-{tag}.json", f"measurement-{tag}.json"
    run(["measure", "--ct", f"{patient}/dicom/ct", "--spect", f"{patient}/dicom/{spect}",
         "--liver", f"{patient}/labels/liver.nii.gz",
         "--tumours", f"{patient}/labels/tumours.nii.gz", "--tumour-names", "T1,T2,T3",
         "--position", f"right hepatic={patient}/dicom/cbct_right_hepatic",
         "--position", f"left hepatic={patient}/dicom/cbct_left_hepatic",
         "--goal", "tumour_dose_gy=250", "--product", "therasphere", "-o", case,
         "--measurement-output", record], cwd)
    return (json.loads((cwd / case).read_text(encoding="utf-8")),
            json.loads((cwd / record).read_text(encoding="utf-8")))


def values(case: dict, record: dict) -> dict[str, tuple[float, float]]:
    """(measured on the image, written into the case) for LSF and each tumour's TNR; the two
    differ when measure applies its partial-volume correction."""
    lsf_measured = record.get("lung_shunt_uncorrected", record.get("lung_shunt", {}))
    out = {"LSF": (lsf_measured.get("lung_shunt_fraction", case["lung_shunt_fraction"]),
                   case["lung_shunt_fraction"])}
    in_case = {t["name"]: t["tnr"] for p in case["positions"] for t in p.get("tumours", [])}
    for p in record.get("positions", []):
        for t in p.get("tumours", []):
            out[t["name"]] = (t.get("tnr_uncorrected", t["tnr"]), in_case[t["name"]])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="keep the patients and cases here (default: temporary)")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--ho166", action="store_true", help="also the Ho-166 scout SPECT")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="realistic-spect-"))
    work.mkdir(parents=True, exist_ok=True)
    common = ["--size", "small", "--seed", str(args.seed), "--no-pet"]
    if args.ho166:
        common.append("--ho166-scout")

    t_gauss = run(["phantom", "gaussian", *common], work)
    t_real = run(["phantom", "realistic", *common, "--spect-model", "realistic"], work)
    truth = json.loads((work / "gaussian" / "truth.json").read_text(encoding="utf-8"))

    rows = []
    studies = [("spect_maa", "Tc-99m MAA", truth["tnr_maa"])]
    if args.ho166:
        studies.append(("spect_ho166", "Ho-166 scout", truth["ho166_scout"]["tnr"]))
    for model in ("gaussian", "realistic"):
        for folder, study, tnr in studies:
            case, record = measure(model, folder, work, f"{model}-{folder}")
            truths = {"LSF": truth["lung_shunt_fraction"], **tnr}
            rows.append((model, study, values(case, record), truths))

    print(f"machine: {platform.processor() or platform.machine()}, Python "
          f"{platform.python_version()}; work folder {work}")
    print(f"phantom --size small: Gaussian model {t_gauss:.1f} s, realistic model "
          f"{t_real:.1f} s (simulation and reconstruction: {t_real - t_gauss:.1f} s)")
    print()
    print("| SPECT model | study | quantity | truth | measured | error | in the case | error |")
    print("|---|---|---|---|---|---|---|---|")
    for model, study, vals, truths in rows:
        for name in ["LSF", *sorted(k for k in truths if k != "LSF")]:
            measured, in_case = vals[name]
            true = truths[name]
            if name == "LSF":
                cells = [f"{100 * v:.2f} % | {100 * (v - true):+.2f} points"
                         for v in (measured, in_case)]
                print(f"| {model} | {study} | LSF | {100 * true:.2f} % | {cells[0]} | {cells[1]} |")
            else:
                cells = [f"{v:.2f} | {100 * (v / true - 1):+.1f} %" for v in (measured, in_case)]
                print(f"| {model} | {study} | TNR {name} | {true:.2f} | {cells[0]} | {cells[1]} |")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
