"""Accuracy and CPU time of the CBCT -> CT registration on 16 CBCTs of the synthetic patients.

    python Testing/benchmarks/bench_registration.py [--settings current|2mm] [--json out.json]

The CBCTs: the small patient (two positions) with seeds 20261122, 1 and 2, and the small
five-position segmental patient with seeds 20261122 and 7. Each is registered to its CT with
the liver grown by 20 mm as mask (as ``tareplanner measure`` does) by
:func:`tareplanner.imaging.registration.register_rigid`; the error is the distance between
where the registered and the phantom's true transform send every 400th liver voxel. CPU
seconds (``time.process_time``: one thread, so they compare between runs on a shared
machine better than wall time). ``--settings 2mm`` runs the settings used before the 4-mm
working spacing (pyramid 8, 4, 2 mm, stage 2 at 2 mm sampling 6 %) for comparison. Not a
test: the figures go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import SimpleITK as sitk

from tareplanner.imaging import registration
from tareplanner.imaging.phantom import make_phantom, spec_for_size

PATIENTS = ((2, 20261122), (2, 1), (2, 2), (5, 20261122), (5, 7))
EARLIER = {"WORKING_SPACING_MM": 2.0, "COARSE_SHRINK": (4, 2, 1),
           "COARSE_SIGMAS_MM": (3.0, 1.5, 0.0), "FINE_SAMPLING_FRACTION": 0.06}


def cbcts():
    """(label, CT, CBCT, grown liver mask, true transform, liver points) of the 16 CBCTs."""
    for positions, seed in PATIENTS:
        phantom = make_phantom(spec_for_size("small", positions, seed=seed))
        liver = sitk.GetArrayFromImage(phantom.labels) >= 7
        index = np.argwhere(liver)[::400][:, ::-1]
        points = np.array([phantom.ct.TransformIndexToPhysicalPoint(tuple(int(v) for v in i))
                           for i in index])
        mask = sitk.GetImageFromArray(liver.astype(np.uint8))
        mask.CopyInformation(phantom.ct)
        grown = sitk.BinaryDilate(mask, [max(1, int(round(20 / s)))
                                         for s in phantom.ct.GetSpacing()])
        for name, cbct in phantom.cbcts.items():
            yield (f"{positions} positions, seed {seed}, {name}", phantom.ct, cbct, grown,
                   phantom.cbct_transforms[name], points)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--settings", choices=("current", "2mm"), default="current")
    parser.add_argument("--json")
    args = parser.parse_args()
    options = {}
    if args.settings == "2mm":
        for key, value in EARLIER.items():
            setattr(registration, key, value)
        options["working_spacing_mm"] = EARLIER["WORKING_SPACING_MM"]
    rows = []
    for label, ct, cbct, grown, truth, points in cbcts():
        start = time.process_time()
        result = registration.register_rigid(ct, cbct, grown, **options)
        cpu = time.process_time() - start
        error = registration.transform_error_mm(result.transform, truth, points)
        rows.append({"cbct": label, "cpu_s": cpu, "mean_error_mm": float(error.mean()),
                     "max_error_mm": float(error.max()),
                     "stage_2": result.fine_level.get("status")})
        print(f"{label:40s} {cpu:5.2f} CPU-s  mean {error.mean():.3f} mm  "
              f"max {error.max():.3f} mm  stage 2 {rows[-1]['stage_2']}", flush=True)
    cpu = [r["cpu_s"] for r in rows]
    print(f"settings {args.settings}: CPU {min(cpu):.2f}-{max(cpu):.2f} s per registration "
          f"({sum(cpu):.1f} s in all); largest error "
          f"{max(r['max_error_mm'] for r in rows):.3f} mm; mean of the mean errors "
          f"{np.mean([r['mean_error_mm'] for r in rows]):.3f} mm; stage 2 not accepted on "
          f"{sum(r['stage_2'] != 'accepted' for r in rows)} of {len(rows)}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"settings": args.settings, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
