"""The realistic Y-90 PET model calibrated on the IEC phantom, then the delivered mean doses of
the synthetic patient's realistic PET without correction, with the assumed resolution and with
that camera file, against the truth.

    python Testing/benchmarks/calibrate_realistic_pet.py [--workdir DIR] [--model M]
        [--iterations N]

Needs the extra ``realistic-spect``. Through the command line: ``phantom --iec --nuclide Y-90
--modality PET --pet-model realistic`` (spheres 2400 kBq/mL, background 300 kBq/mL: 8:1, about
2.9 GBq in the phantom, the patient's implanted activity), ``calibrate``, ``phantom --size
small --pet-model realistic`` (seed 20261122; its MAA SPECT is the Gaussian one), then
``measure`` (the MAA SPECT, truth label maps), ``plan`` and ``dose --pet`` of the realistic
PET: ``--no-pvc``, the assumed default and ``--camera``. Prints the mean dose of every tumour
and normal-liver territory against the truth: the partition model the patient was built
with, by hand (Testing/conftest.py ``delivered_truth_gy``). For comparison it also doses the
PET written without blur and noise (``phantom --no-blur --no-noise``) without correction:
its 4 mm voxels alone read the tumours 6-9 % low. Every phantom scan is also reconstructed with
twice the iterations and given to ``calibrate --more-iterations-image`` (the convergence
check); ``--iterations N`` reconstructs the phantoms and the patient with N OSEM iterations
instead of the protocol's (data/pet_simulation.json). Files already in ``--workdir`` are
reused. Not a test: the numbers go into docs/imaging.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))        # Testing/: conftest
from conftest import delivered_truth_gy, small_patient_measure_args  # noqa: E402

SPHERE_KBQ_ML, BACKGROUND_KBQ_ML = "2400", "300"
#: the phantom's acquisition: the patient's protocol (30 min bed) and a 4 times longer scan
PHANTOM_MINUTES = (None, 120.0)
#: data/pet_simulation.json's OSEM iterations
PROTOCOL_ITERATIONS = 3
STRUCTURES = ("T1", "T2", "T3", "normal liver (right hepatic)", "normal liver (left hepatic)")


def run(args: list[str], check: bool = True) -> bool:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tareplanner.cli.main", *args],
                          capture_output=True, text=True)
    print(f"tareplanner {args[0]} {args[1] if len(args) > 1 else ''}: "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    if done.returncode != 0 and check:
        raise SystemExit(f"tareplanner {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    if done.returncode != 0:
        print(f"tareplanner {args[0]}: {done.stderr.strip().splitlines()[-1]}")
    return done.returncode == 0


def mean_doses(folder: Path) -> tuple[dict, dict]:
    record = json.loads((folder / "dose.json").read_text())
    return ({n: s["mean_gy"] for n, s in record["post_treatment"]["structures"].items()},
            record)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir")
    parser.add_argument("--model", default="auto",
                        choices=("auto", "gaussian", "core-plus-tail"))
    parser.add_argument("--iterations", type=int,
                        help="OSEM iterations of the phantoms and the patient (default: the "
                             "protocol's)")
    args = parser.parse_args()
    iterations = args.iterations or PROTOCOL_ITERATIONS
    recon = ["--iterations", str(iterations)]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="tareplanner-realistic-pet-"))
    work.mkdir(parents=True, exist_ok=True)
    cameras = {}
    for minutes in PHANTOM_MINUTES:
        iec = work / ("iec_Y-90" if minutes is None else f"iec_Y-90_{minutes:g}min")
        more = iec.with_name(iec.name + "_more_iterations")
        for folder, n in ((iec, iterations), (more, 2 * iterations)):
            if not folder.exists():
                run(["phantom", str(folder), "--iec", "--nuclide", "Y-90", "--modality", "PET",
                     "--pet-model", "realistic", "--sphere-kbq-ml", SPHERE_KBQ_ML,
                     "--background-kbq-ml", BACKGROUND_KBQ_ML, "--iterations", str(n),
                     *([] if minutes is None else ["--acquisition-minutes", f"{minutes:g}"])])
        camera = work / (f"camera_Y-90_{args.model}.json" if minutes is None
                         else f"camera_Y-90_{minutes:g}min_{args.model}.json")
        cameras[minutes] = camera
        if camera.exists():
            continue
        calibrate = ["calibrate", "--ct", str(iec / "ct.nii.gz"), "--image",
                     str(iec / "image.nii.gz"), "--nuclide", "Y-90", "--sphere-kbq-ml",
                     SPHERE_KBQ_ML, "--background-kbq-ml", BACKGROUND_KBQ_ML,
                     "--reconstruction", f"TOF OSEM {iterations}i21s, AC, scatter and randoms, "
                     "resolution modelling, 5 mm filter (realistic model)",
                     "--more-iterations-image", str(more / "image.nii.gz"),
                     *([] if args.model == "auto" else ["--model", args.model]),
                     # the phantom's bed time, so that its noise is scaled to the patient's
                     "--acquisition-minutes", f"{minutes or 30:g}",
                     "-o", str(camera)]
        if not run(calibrate, check=False):
            spheres = json.loads((iec / "truth.json").read_text())["spheres"]
            centres = ";".join(",".join(f"{c:.2f}" for c in s["centre_mm"]) for s in spheres)
            print("Y-90: calibrating with --sphere-centres-mm")
            run([*calibrate, "--sphere-centres-mm", centres])
    patient, truth = work / "patient", work / "truth"
    if not patient.exists():
        run(["phantom", str(patient), "--size", "small", "--pet-model", "realistic", *recon])
    if not truth.exists():
        run(["phantom", str(truth), "--size", "small", "--no-blur", "--no-noise"])
    m = work / "measure"
    if not (m / "plan.json").exists():
        m.mkdir(exist_ok=True)
        run(small_patient_measure_args(patient, m))
        run(["plan", str(m / "case.json"), "-o", str(m / "plan.json")])
    common = ["dose", "--measurement", str(m / "measurement.json"), "--plan",
              str(m / "plan.json"), "--method", "ldm", "--quiet"]
    variants = {"PET without blur and noise (4 mm voxels)": (truth, ["--no-pvc"]),
                "uncorrected": (patient, ["--no-pvc"]),
                "assumed": (patient, [])}
    for minutes, camera in cameras.items():
        label = "30 min (patient protocol)" if minutes is None else f"{minutes:g} min"
        variants[f"calibrated {label} phantom ({args.model})"] = (
            patient, ["--camera", str(camera)])
    doses = {}
    for label, (source, extra) in variants.items():
        out = work / ("dose_" + "_".join(label.split()[:2]) + f"_{args.model}")
        if not (out / "dose.json").exists():
            run([*common, "--pet", str(source / "dicom" / "pet_y90"), "--out", str(out),
                 "--force", *extra])
        doses[label], record = mean_doses(out)
        pvc = record["post_treatment"].get("partial_volume_correction") or {}
        print(label, "pvc:", json.dumps({k: pvc.get(k) for k in ("fwhm_mm", "assumed")}))
        activity = record["post_treatment"].get("activity_check")
        if activity:
            print(label, "activity check:", json.dumps(activity)[:400])
    want = delivered_truth_gy(json.loads((patient / "truth.json").read_text()),
                              record["dose"]["energy_per_activity_j_per_gbq"],
                              record["dose"]["soft_tissue_density_g_per_ml"])
    print("| PET | correction | " + " | ".join(STRUCTURES) + " |")
    print("|---|---|" + "---|" * len(STRUCTURES))
    print("| truth (partition model, by hand) | – | " + " | ".join(
        f"{want[s]:.1f} Gy" for s in STRUCTURES) + " |")
    for label, got in doses.items():
        kind = "ideal" if label.startswith("PET without") else "realistic"
        print(f"| {kind} | {label} | " + " | ".join(
            f"{got[s]:.1f} Gy ({100 * (got[s] / want[s] - 1):+.1f} %)".replace("-", "−")
            for s in STRUCTURES) + " |")
    for minutes, camera in cameras.items():
        cam = json.loads(camera.read_text())
        psf = cam["psf"]
        print(f"camera ({'30' if minutes is None else f'{minutes:g}'} min phantom):",
              " + ".join(f"{c['weight']:.0%} {c['fwhm_mm']:.1f} mm" for c in psf["components"]),
              f"(core {psf['fwhm_mm']:.2f} ± {psf['fwhm_sd_mm']:.2f} mm, residual "
              f"{psf.get('fit_relative_residual_rms', float('nan')):.1%})", "scale:",
              round(cam["calibration"].get("scale"), 4), "warnings:",
              [w["code"] for w in cam.get("warnings", [])])
        c = cam.get("convergence") or {}
        print(f"  convergence: {c.get('effective_fwhm_mm', float('nan')):.2f} mm -> "
              f"{c.get('more_iterations_effective_fwhm_mm', float('nan')):.2f} mm with "
              f"{2 * iterations} iterations, converged: {c.get('converged')}")
        print("  recovery (d, measured, model):",
              [(s["diameter_mm"], round(s["recovery_measured"], 3),
                round(s["recovery_model"], 3)) for s in cam["spheres"]])
    print(f"files in {work}")


if __name__ == "__main__":
    main()
