"""Benchmark of the plan's Monte Carlo uncertainty propagation.

    python Testing/benchmarks/bench_uncertainty.py

A three-position partition plan (two tumours per position, whole-liver limits) propagated
with 1,000 and 10,000 samples, against a bare numpy call of the same size in the same run
(drawing the standard normals the propagation needs), so the ratio does not depend on the
machine. Not a test: figures go into docs/benchmarks.md.
"""

from __future__ import annotations

import platform
import time

import numpy as np

from tareplanner.physics.uncertainty import (Limit, PlanInputs, PositionInput, TumourInput,
                                             propagate)


def three_positions() -> tuple[PlanInputs, list[Limit]]:
    positions = tuple(
        PositionInput(name=f"segment {i}", activity_gbq=1.0 + 0.3 * i, explicit=False,
                      normal_volume_ml=300.0 + 100 * i,
                      tumours=(TumourInput(f"T{i}a", 30.0, 3.0, 0.1),
                               TumourInput(f"T{i}b", 10.0, 2.0, 0.1)),
                      binding_figure=f"segment {i}: normal liver") for i in range(3))
    inputs = PlanInputs(energy_j_per_gbq=49.67, density_g_per_ml=1.03, partition=True,
                        lung_shunt_fraction=0.06, lsf_relative_sd=0.1, residual_fraction=0.02,
                        residual_sd=0.01, calibrator_relative_sd=0.05, lung_mass_kg=0.9,
                        lung_mass_relative_sd=0.05, prior_lung_dose_gy=0.0, boundary_mm=2.0,
                        positions=positions, whole_liver_volume_ml=1600.0,
                        whole_liver_tumour_volume_ml=120.0)
    limits = [Limit(f"segment {i}: normal-liver-limit", f"segment {i}: normal liver", 120)
              for i in range(3)]
    limits += [Limit("lung-limit", "lung", 30), Limit("whole-normal-liver-limit",
                                                      "whole normal liver", 75)]
    return inputs, limits


def _best(fn, repeat=5):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    inputs, limits = three_positions()
    print(f"python {platform.python_version()}, numpy {np.__version__}")
    for n in (1000, 10000):
        t = _best(lambda: propagate(inputs, limits, n=n, seed=1))
        rng = np.random.default_rng(1)
        bare = _best(lambda: rng.standard_normal((20, n)))  # ~20 sampled inputs
        print(f"{n:>6} samples: propagate {t * 1e3:7.2f} ms; bare normals {bare * 1e3:6.3f} ms; "
              f"ratio {t / bare:6.1f}")


if __name__ == "__main__":
    main()
