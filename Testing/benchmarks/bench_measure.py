"""Benchmark of ``tareplanner measure`` on the small synthetic patient (two CBCT
registrations), with the registration error against the phantom's truth.

    python Testing/benchmarks/bench_measure.py [--repeat N] [--json out.json]

Times the whole command in a new process (reading DICOM, registrations, territories, lungs,
partial-volume correction, writing; the two registrations side by side when two CPUs are
free, ``taskset -c 0`` to time them one after the other), and, in the same run, the bare
library call that dominates it: one ``sitk.ImageRegistrationMethod`` Mattes evaluation over
the liver region (what every optimiser iteration repeats), to compare runs on a shared
machine. Not a test: figures go into docs/benchmarks.md, with the CPUs and the load average
printed (the machine is shared: repeat, take the best).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk



def main():
    from tareplanner.imaging.registration import euler_from_dict, transform_error_mm

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    exe = [sys.executable, "-m", "tareplanner"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        d = tmp / "p"
        subprocess.run(exe + ["phantom", str(d), "--size", "small", "--no-pet"], check=True,
                       capture_output=True)
        truth = json.loads((d / "truth.json").read_text())
        command = exe + [
            "measure", "--ct", str(d / "dicom/ct"), "--spect", str(d / "dicom/spect_maa"),
            "--liver", str(d / "labels/liver.nii.gz"),
            "--tumours", str(d / "labels/tumours.nii.gz"), "--tumour-names", "T1,T2,T3",
            "--position", f"right hepatic={d / 'dicom/cbct_right_hepatic'}",
            "--position", f"left hepatic={d / 'dicom/cbct_left_hepatic'}",
            "--goal", "tumour_dose_gy=250", "--product", "therasphere", "--force",
            "-o", str(tmp / "case.json"), "--measurement-output", str(tmp / "m.json")]
        times = []
        load_before = os.getloadavg()
        for _ in range(args.repeat):
            t = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times.append(time.perf_counter() - t)
        measurement = json.loads((tmp / "m.json").read_text())
        # bare library call: one Mattes MI evaluation on every voxel of the CT's liver box
        ct = sitk.Cast(sitk.ReadImage(str(d / "nifti/ct.nii.gz")), sitk.sitkFloat32)
        reg = sitk.ImageRegistrationMethod()
        reg.SetMetricAsMattesMutualInformation(48)
        reg.SetInitialTransform(sitk.Euler3DTransform())
        reg.SetInterpolator(sitk.sitkLinear)
        t = time.perf_counter()
        for _ in range(5):
            reg.MetricEvaluate(ct, ct)
        bare = (time.perf_counter() - t) / 5
        liver = sitk.GetArrayFromImage(sitk.ReadImage(str(d / "labels/liver.nii.gz"))) > 0
        ref = sitk.ReadImage(str(d / "labels/liver.nii.gz"))
        index = np.argwhere(liver)[::400][:, ::-1]
        points = np.array([ref.TransformIndexToPhysicalPoint(tuple(int(v) for v in i))
                           for i in index])
        errors = {}
        for p in measurement["positions"]:
            e = transform_error_mm(euler_from_dict(p["registration"]),
                                   euler_from_dict(truth["cbct_transforms"][p["name"]]), points)
            errors[p["name"]] = {"mean_mm": float(e.mean()), "max_mm": float(e.max()),
                                 "fine_level": p["registration"]["fine_level"]["status"]}
        volumes = {p["name"]: p["perfused_volume_ml"] for p in measurement["positions"]}
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = [round(v, 2) for v in (load_before[0], os.getloadavg()[0])]
    result = {"cpus": cpus, "load_average_1min_before_after": load, "measure_s": times,
              "best_s": min(times), "bare_metric_evaluation_s": bare,
              "registration_error": errors, "perfused_volume_ml": volumes,
              "true_perfused_volume_ml": truth.get("volumes_ml", {})}
    print(f"measure (small synthetic patient, 2 CBCTs): best {min(times):.1f} s of "
          + ", ".join(f"{t:.1f}" for t in times) + f"; bare Mattes evaluation {bare:.3f} s "
          f"({cpus} CPUs, load {load[0]:g} before, {load[1]:g} after)")
    for name, e in errors.items():
        print(f"    {name}: registration error mean {e['mean_mm']:.3f} mm, max "
              f"{e['max_mm']:.3f} mm (fine level {e['fine_level']}); perfused "
              f"{volumes[name]:.0f} mL")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
