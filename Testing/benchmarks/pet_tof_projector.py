"""Cost of time of flight in the realistic Y-90 PET model: one forward and one back
projection of the small patient's PET grid (90 x 90 x 68 voxels of 4 mm, 168 views) with the
time-of-flight projector (13 bins), the same without time of flight, and PyTomography's bare
rotate-and-sum (its SPECTSystemMatrix without transforms), in the same run.

    python Testing/benchmarks/pet_tof_projector.py [--repeat N]

Needs the extra ``realistic-spect``. Not a test: the numbers go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import timeit

import numpy as np


def best_of(repeat: int, call) -> float:
    """The shortest of ``repeat`` timed calls (seconds)."""
    return min(timeit.repeat(call, number=1, repeat=repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import torch
    from pytomography.metadata.SPECT import SPECTObjectMeta, SPECTProjMeta
    from pytomography.projectors.SPECT import SPECTSystemMatrix

    from tareplanner.imaging import pet_simulation as ps
    p = ps.PetProtocol().resolved()
    shape, views, spacing_cm = (90, 90, 68), int(p["views"]), 0.4
    rng = np.random.default_rng(0)
    acf = rng.uniform(0.05, 1.0, (views, shape[1], shape[2]))
    obj = ps._to_torch(rng.uniform(0.0, 1.0, shape))
    tof = {"fwhm_mm": p["tof_fwhm_mm"], "bins": p["tof_bins"],
           "bin_width_mm": p["tof_bin_width_mm"]}
    angles = list(np.arange(views) * (180.0 / views))
    bare = SPECTSystemMatrix([], [], SPECTObjectMeta([spacing_cm] * 3, list(shape)),
                             SPECTProjMeta((shape[1], shape[2]), [spacing_cm] * 2, angles,
                                           radii=[100.0] * views))
    models = {"PyTomography rotate-and-sum (bare)": bare,
              "without time of flight (attenuation, 4.4 mm resolution)":
                  ps._system_matrix(shape, spacing_cm, views, acf, p["system_fwhm_mm"]),
              f"time of flight ({tof['bins']} bins)":
                  ps._system_matrix(shape, spacing_cm, views, acf, p["system_fwhm_mm"], tof)}
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, grid {shape}, "
          f"{views} views, best of {args.repeat}")
    reference = None
    with torch.no_grad():
        for label, h in models.items():
            h.backward(h.forward(obj))                  # warm-up: thread pools, allocations
            forward = best_of(args.repeat, lambda: h.forward(obj))
            proj = h.forward(obj)
            backward = best_of(args.repeat, lambda: h.backward(proj))
            total = forward + backward
            reference = reference or total
            print(f"| {label} | {forward:.2f} s | {backward:.2f} s | {total / reference:.2f} |")


if __name__ == "__main__":
    main()
