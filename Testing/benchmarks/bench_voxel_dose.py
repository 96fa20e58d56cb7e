"""Benchmark of the voxel dosimetry against the library limit, measured in the same run.

    python Testing/benchmarks/bench_voxel_dose.py [--large] [--json out.json]

1. bare scipy.signal.fftconvolve (float32, 11^3 kernel, scipy.fft workers = all cores)
   versus the whole kernel dose calculation (kernel preparation, density, convolution, lung
   LDM) on 128^3, 256^3 and (with --large) 512x512x300 grids, with peak memory in units of
   one float32 grid array;
2. DVHs and indices of 10 structures on 256^3;
3. the whole pre-treatment voxel plan of the synthetic patient from its files
   (tareplanner dose on the small phantom, predictive only).
Not a test: figures go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import scipy
import scipy.fft
from scipy import signal


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_convolution(shapes):
    from tareplanner.dosimetry.dose import _fractions
    from tareplanner.physics.voxel_dose import clear_spectrum_cache, kernel_dose_gy

    rows = []
    rng = np.random.default_rng(1)
    for shape in shapes:
        activity = (rng.random(shape, dtype=np.float32) * 1e-4).astype(np.float32)
        lung = np.zeros(shape, bool)
        lung[:, :, : shape[2] // 4] = True
        density = np.where(lung, np.float32(0.3), np.float32(1.03)).astype(np.float32)
        kernel = np.ones((11, 11, 11), np.float32) / 11 ** 3

        def bare():
            with scipy.fft.set_workers(-1):
                signal.fftconvolve(activity, kernel, mode="same")

        def whole():  # first call on this grid: kernel and its spectrum computed
            _fractions.cache_clear()
            clear_spectrum_cache()
            fractions = _fractions("Y-90", (4.42, 4.42, 4.42))
            kernel_dose_gy(activity, 49.67, density, 0.0864, fractions, lung_mask=lung)

        def again():  # a later call on the same grid (delivered dose, voxel plan)
            fractions = _fractions("Y-90", (4.42, 4.42, 4.42))
            kernel_dose_gy(activity, 49.67, density, 0.0864, fractions, lung_mask=lung)

        repeat = 5 if np.prod(shape) < 2e7 else 2
        # interleaved, best of each: the three see the same load on a shared machine
        t_bare = t_whole = t_again = float("inf")
        for _ in range(repeat):
            t_bare = min(t_bare, best_of(bare, 1))
            t_whole = min(t_whole, best_of(whole, 1))
            t_again = min(t_again, best_of(again, 1))
        tracemalloc.start()
        whole()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rows.append({"shape": list(shape), "bare_fftconvolve_s": t_bare, "kernel_dose_s": t_whole,
                     "ratio": t_whole / t_bare, "kernel_dose_same_grid_again_s": t_again,
                     "ratio_again": t_again / t_bare,
                     "peak_memory_grid_arrays": peak / (activity.nbytes)})
        print(f"{shape}: bare {t_bare:.3f} s, kernel dose {t_whole:.3f} s "
              f"(x{t_whole / t_bare:.2f}), again on the grid {t_again:.3f} s "
              f"(x{t_again / t_bare:.2f}), peak {peak / activity.nbytes:.1f} arrays", flush=True)
    return rows


def bench_dvh(repeat=5):
    """DVH + indices of 10 structures on 256^3 as structure_report takes them (each
    structure's voxels by the indices its Structures keeps), against the bare NumPy calls of
    a 1-Gy histogram of each structure's voxels (boolean mask, np.bincount), interleaved.
    "first": the first report of a Structures object, which finds the indices."""
    import SimpleITK as sitk

    from tareplanner.dosimetry.structures import Structures
    from tareplanner.physics.dvh import cumulative_dvh, dose_indices

    shape = (256, 256, 256)
    rng = np.random.default_rng(2)
    dose = (rng.random(shape, dtype=np.float32) * 200).astype(np.float32)
    z, y, x = np.ogrid[:256, :256, :256]
    masks = {f"S{k}": ((x - 40 - 18 * k) ** 2 + (y - 128) ** 2 + (z - 128) ** 2)
             < (20 + 6 * k) ** 2 for k in range(10)}
    reference = sitk.Image(256, 256, 256, sitk.sitkUInt8)
    reference.SetSpacing((4.0, 4.0, 4.0))

    def structures():
        return Structures(reference, masks, {name: "tumour" for name in masks})

    def report(s):
        for name in s.masks:
            values = s.values_in(dose, name)
            dose_indices(values, None, 0.064, v_thresholds_gy=(100, 120, 205))
            cumulative_dvh(values, None, 1.0)

    def bare():
        for m in masks.values():
            np.bincount(dose[m].astype(np.intp))

    kept = structures()
    report(kept)
    times = {"bare": [], "first": [], "again": []}
    for _ in range(repeat):
        for key, fn in (("bare", bare), ("first", lambda: report(structures())),
                        ("again", lambda: report(kept))):
            t = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t)
    best = {k: min(v) for k, v in times.items()}
    voxels = int(sum(m.sum() for m in masks.values()))
    print(f"DVH + indices, 10 structures on 256^3 ({voxels} voxels): {best['again']:.3f} s "
          f"(first report {best['first']:.3f} s); bare mask + bincount {best['bare']:.3f} s "
          f"(ratio {best['again'] / best['bare']:.2f}, first {best['first'] / best['bare']:.2f})",
          flush=True)
    return {"structures": 10, "grid": [256, 256, 256], "voxels": voxels,
            "seconds": best["again"], "first_seconds": best["first"],
            "bare_seconds": best["bare"]}


def bench_pipeline():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        exe = [sys.executable, "-m", "tareplanner"]
        subprocess.run(exe + ["phantom", str(tmp / "p"), "--size", "small", "--no-pet"],
                       check=True, capture_output=True)
        d = tmp / "p"
        subprocess.run(exe + ["measure", "--ct", str(d / "dicom/ct"), "--spect",
                              str(d / "dicom/spect_maa"), "--liver", str(d / "labels/liver.nii.gz"),
                              "--tumours", str(d / "labels/tumours.nii.gz"),
                              "--territories", str(d / "labels/territories.nii.gz"),
                              "--territory-names", "right hepatic,left hepatic",
                              "--goal", "tumour_dose_gy=250", "--product", "therasphere",
                              "-o", str(tmp / "case.json"),
                              "--measurement-output", str(tmp / "m.json")],
                       check=True, capture_output=True)
        subprocess.run(exe + ["plan", str(tmp / "case.json"), "-o", str(tmp / "plan.json")],
                       check=True, capture_output=True)
        t = time.perf_counter()
        subprocess.run(exe + ["dose", "--measurement", str(tmp / "m.json"), "--plan",
                              str(tmp / "plan.json"), "--out", str(tmp / "dose")],
                       check=True, capture_output=True)
        seconds = time.perf_counter() - t
    print(f"pre-treatment voxel plan of the synthetic patient from its files: {seconds:.2f} s",
          flush=True)
    return {"seconds": seconds, "includes": "process start, reading DICOM/NIfTI, kernel, "
                                            "dose, DVHs, writing outputs"}


def bench_against_plastimatch():
    """Our DVHs vs plastimatch dvh on the same RT Dose and structures (small synthetic
    patient): agreement of mean and D50 and the time of each (plastimatch: a process)."""
    import shutil

    import SimpleITK as sitk

    from tareplanner.dosimetry.activity import predictive_activity
    from tareplanner.dosimetry.dose import dose_map, structure_report
    from tareplanner.dosimetry.structures import structures_from_labels
    from tareplanner.imaging import anatomy as anat
    from tareplanner.dicom.common import SeriesInfo
    from tareplanner.dicom.rtdose import write_rt_dose
    from tareplanner.imaging.phantom import make_phantom, spec_for_size

    exe = shutil.which("plastimatch") or str(Path(sys.executable).parent / "plastimatch")
    p = make_phantom(spec_for_size("small", pet=False))
    labels = sitk.GetArrayFromImage(p.labels)
    terr = sitk.GetArrayFromImage(p.territories)
    a = p.spec.anatomy
    s = structures_from_labels(
        p.ct, labels >= anat.LIVER, (labels == anat.LUNG_RIGHT) | (labels == anat.LUNG_LEFT),
        {t.name: labels == anat.FIRST_TUMOUR + k for k, t in enumerate(a.tumours)},
        {t.name: terr == i for i, t in enumerate(a.territories, start=1)})
    activity, _ = predictive_activity(p.spect, s, {"right hepatic": 3.0, "left hepatic": 1.5},
                                      0.06, 0.0)
    dose, _ = dose_map(activity, "Y-90", p.ct, s.masks["lungs"])
    t = time.perf_counter()
    ours = structure_report(dose, s, nuclide="Y-90", bin_gy=0.1)
    t_ours = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_rt_dose(dose, tmp / "dose.dcm", SeriesInfo(study_uid="1.2", series_uid="1.3",
                                                         frame_of_reference_uid="1.4"))
        names = list(s.masks)
        ss = np.zeros(labels.shape, np.uint32)
        for bit, name in enumerate(names):
            ss |= s.masks[name].astype(np.uint32) << bit
        img = sitk.GetImageFromArray(ss)
        img.CopyInformation(p.ct)
        sitk.WriteImage(img, str(tmp / "ss.mha"))
        (tmp / "ss.txt").write_text("".join(f"{b}|255\\0\\0|s{b}\n" for b in range(len(names))))
        peak = float(sitk.GetArrayViewFromImage(dose).max())
        t = time.perf_counter()
        subprocess.run([exe, "dvh", "--input-dose", str(tmp / "dose.dcm"), "--input-ss-img",
                        str(tmp / "ss.mha"), "--input-ss-list", str(tmp / "ss.txt"),
                        "--output-csv", str(tmp / "dvh.csv"), "--bin-width", "0.1",
                        "--num-bins", str(int(peak / 0.1) + 10)], check=True, capture_output=True)
        t_pm = time.perf_counter() - t
        table = np.loadtxt(tmp / "dvh.csv", delimiter=",", skiprows=1)
    worst = 0.0
    for bit, name in enumerate(names):
        mean = float(np.trapezoid(table[:, bit + 1], table[:, 0]))
        worst = max(worst, abs(mean / ours[name]["mean_gy"] - 1))
    print(f"DVHs of {len(names)} structures: ours {t_ours:.2f} s, plastimatch dvh {t_pm:.2f} s "
          f"(x{t_pm / t_ours:.1f}); largest mean-dose difference {worst:.2%}", flush=True)
    return {"ours_s": t_ours, "plastimatch_s": t_pm, "max_mean_difference": worst}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--large", action="store_true", help="also 512x512x300")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    shapes = [(128, 128, 128), (256, 256, 256)] + ([(300, 512, 512)] if args.large else [])
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "numpy": np.__version__, "scipy": scipy.__version__},
              "convolution": bench_convolution(shapes), "dvh": bench_dvh(),
              "pipeline": bench_pipeline(), "plastimatch": bench_against_plastimatch()}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
