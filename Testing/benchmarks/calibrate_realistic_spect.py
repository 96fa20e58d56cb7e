"""The realistic SPECT model calibrated on the IEC phantom, then the realistic patient
measured with and without that camera file.

    python Testing/benchmarks/calibrate_realistic_spect.py [--workdir DIR] [--model M]
        [--iterations N] [--phantom-minutes MIN]

Needs the extra ``realistic-spect``. Through the command line: ``phantom --iec --spect-model
realistic`` (Tc-99m and Ho-166; spheres 160 kBq/mL, background 20 kBq/mL: 8:1, about 200 MBq
in the phantom, the activity of the patient's studies), ``calibrate`` (``--model``: gaussian,
core-plus-tail or the automatic choice), ``phantom --size small --spect-model realistic
--ho166-scout --no-pet`` (seed 20261122), then ``measure`` of each DICOM SPECT with the truth
label maps (liver, tumours, territories; lungs from the CT), without a camera file (the
assumed default) and with it. Prints LSF and TNRs against truth.json. Each phantom is also
reconstructed with twice the iterations for ``calibrate --more-iterations-image`` (the
convergence check); ``--iterations N`` reconstructs the phantoms and the patient with N OSEM
iterations instead of the protocol's (data/spect_simulation.json), ``--phantom-minutes`` scans
the phantoms longer than the patient. Files already in
``--workdir`` are reused (the realistic phantoms take minutes each). Not a test: the numbers
go into docs/imaging.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))        # Testing/: conftest
from conftest import small_patient_measure_args  # noqa: E402

#: data/spect_simulation.json's OSEM iterations
PROTOCOL_ITERATIONS = 4
STUDIES = (("Tc-99m MAA", "Tc-99m", "spect_maa"), ("Ho-166 scout", "Ho-166", "spect_ho166"))


def run(args: list[str], check: bool = True) -> bool:
    done = subprocess.run([sys.executable, "-m", "tareplanner.cli.main", *args],
                          capture_output=True, text=True)
    if done.returncode != 0 and check:
        raise SystemExit(f"tareplanner {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    if done.returncode != 0:
        print(f"tareplanner {args[0]}: {done.stderr.strip().splitlines()[-1]}")
    return done.returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir")
    parser.add_argument("--model", default="auto",
                        choices=("auto", "gaussian", "core-plus-tail"))
    parser.add_argument("--iterations", type=int,
                        help="OSEM iterations of the phantoms and the patient (default: the "
                             "protocol's)")
    parser.add_argument("--phantom-minutes", type=float,
                        help="the phantoms' acquisition (default: the patient's protocol)")
    args = parser.parse_args()
    iterations = args.iterations or PROTOCOL_ITERATIONS
    minutes = [] if args.phantom_minutes is None else ["--acquisition-minutes",
                                                      f"{args.phantom_minutes:g}"]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="tareplanner-realistic-"))
    work.mkdir(parents=True, exist_ok=True)
    patient = work / "patient"
    if not patient.exists():
        run(["phantom", str(patient), "--size", "small", "--spect-model", "realistic",
             "--ho166-scout", "--no-pet", "--iterations", str(iterations)])
    truth = json.loads((patient / "truth.json").read_text())
    rows = []
    for study, nuclide, spect in STUDIES:
        truth_tnr = (truth["tnr_maa"] if nuclide == "Tc-99m" else truth["ho166_scout"]["tnr"])
        iec = work / f"iec_{nuclide}"
        more = work / f"iec_{nuclide}_more_iterations"
        for folder, n in ((iec, iterations), (more, 2 * iterations)):
            if not folder.exists():
                run(["phantom", str(folder), "--iec", "--nuclide", nuclide, "--spect-model",
                     "realistic", "--sphere-kbq-ml", "160", "--background-kbq-ml", "20",
                     "--iterations", str(n), *minutes])
        camera = work / f"camera_{nuclide}_{args.model}.json"
        if not camera.exists():
            calibrate = ["calibrate", "--ct", str(iec / "ct.nii.gz"), "--image",
                         str(iec / "image.nii.gz"), "--nuclide", nuclide, "--sphere-kbq-ml",
                         "160", "--background-kbq-ml", "20", "--reconstruction",
                         f"OSEM {iterations}i10s, AC, scatter estimate, resolution "
                         "modelling (realistic model)",
                         "--more-iterations-image", str(more / "image.nii.gz"), *minutes,
                         *([] if args.model == "auto" else ["--model", args.model]),
                         "-o", str(camera)]
            if not run(calibrate, check=False):
                # the hot spots alone did not place the spheres: the site gives the centres
                # (here the phantom's own, truth.json)
                spheres = json.loads((iec / "truth.json").read_text())["spheres"]
                centres = ";".join(",".join(f"{c:.2f}" for c in s["centre_mm"])
                                   for s in spheres)
                print(f"{nuclide}: calibrating with --sphere-centres-mm")
                run([*calibrate, "--sphere-centres-mm", centres])
        cam = json.loads(camera.read_text())
        for label, extra in (("assumed", []), ("calibrated", ["--camera", str(camera)])):
            out = work / f"measure_{nuclide}_{label}_{args.model}"
            if not (out / "m.json").exists():
                out.mkdir(exist_ok=True)
                run([*small_patient_measure_args(patient, out, patient / "dicom" / spect,
                                                 "m.json"), *extra])
            m = json.loads((out / "m.json").read_text())
            tnr = {t["name"]: t["tnr"] for p in m["positions"] for t in p["tumours"]}
            pvc = m["partial_volume_correction"]
            psf = cam["psf"]
            fitted = (" + ".join(f"{c['weight']:.0%} {c['fwhm_mm']:.1f} mm"
                                 for c in psf["components"])
                      + f" (core {psf['fwhm_mm']:.2f} ± {psf['fwhm_sd_mm']:.2f} mm)"
                      if label == "calibrated" else f"assumed {pvc['fwhm_mm']:g} mm")
            errors = {"LSF": m["lung_shunt"]["lung_shunt_fraction"] /
                      truth["lung_shunt_fraction"] - 1}
            errors.update({n: tnr[n] / truth_tnr[n] - 1 for n in ("T1", "T2", "T3")})
            rows.append((study, label, fitted, errors))
    print("| study | correction | PSF | LSF | T1 | T2 | T3 |")
    print("|---|---|---|---|---|---|---|")
    for study, label, fitted, e in rows:
        print(f"| {study} | {label} | {fitted} | " + " | ".join(
            f"{100 * e[k]:+.1f} %".replace("-", "−") for k in ("LSF", "T1", "T2", "T3"))
              + " |")
    for nuclide in ("Tc-99m", "Ho-166"):
        cam = json.loads((work / f"camera_{nuclide}_{args.model}.json").read_text())
        print(nuclide, "fits:", json.dumps({k: v.get("relative_residual_rms", v.get(
            "fit_relative_residual_rms")) for k, v in cam.get("fits", {}).items()}),
              "recovery:", [(s["diameter_mm"], round(s["recovery_measured"], 3),
                             round(s["recovery_model"], 3)) for s in cam["spheres"]],
              "counts/MBq:", cam["calibration"].get("counts_per_mbq"))
    print(f"files in {work}")


if __name__ == "__main__":
    main()
