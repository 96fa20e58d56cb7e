"""The realistic Ho-166 scout's small-tumour bias against its counts: the uncorrected image
ratios T3, T2 and T1 / normal liver (its territory's, the anatomy's own masks on
the SPECT grid, voxel centres) of the small patient's scout, noise-free and with noise at
the protocol's 20 s per view and at longer views.

    python Testing/benchmarks/scout_count_bias.py [--seeds 1 2 3 4] [--seconds 20 80]
        [--scatter-estimate-noise-free] [--iterations N] [--subsets N]
        [--no-resolution-modelling]

Needs the extra ``realistic-spect``. Each scout takes about 30 s here. Not a test: the
numbers go into docs/imaging.md ("Convergence").
"""

from __future__ import annotations

import argparse

import numpy as np
import SimpleITK as sitk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--seconds", type=float, nargs="+", default=[20.0, 80.0],
                        help="seconds per view (the protocol's: 20)")
    parser.add_argument("--scatter-estimate-noise-free", action="store_true",
                        help="the upper window's counts 10^4 times higher (then scaled back), so "
                             "its Poisson noise vanishes from the scatter estimate: is that "
                             "noise the cause?")
    parser.add_argument("--iterations", type=int, default=4, help="OSEM iterations (4)")
    parser.add_argument("--subsets", type=int, default=10, help="OSEM subsets (10)")
    parser.add_argument("--no-resolution-modelling", action="store_true",
                        help="reconstruct without the collimator-detector response")
    args = parser.parse_args()
    from tareplanner.imaging import anatomy as anat
    from tareplanner.imaging import phantom as ph
    from tareplanner.imaging import spect_simulation as ss
    from tareplanner.imaging.grid import Grid
    from tareplanner.physics.decay import decay_factor

    if args.scatter_estimate_noise_free:
        window_counts, estimate = ss.scatter_window_counts, ss.scatter_estimate
        ss.scatter_window_counts = lambda scatter, p: {
            k: v * 1e4 for k, v in window_counts(scatter, p).items()}
        ss.scatter_estimate = lambda windows, p, spacing: (
            None if not windows else estimate(windows, p, spacing) / 1e4)
    spec = ph.spec_for_size("small", ho166_scout=True)
    grid = Grid.covering(spec.box_low_mm, spec.box_high_mm, spec.spect_spacing_mm)
    relative, _ = ph._emission(spec, grid, "tnr_y90", spec.maa_fractions,
                               spec.lung_shunt_fraction, spec.background_ratio)
    nuclide = ss.settings()["nuclides"]["Ho-166"]
    # the scout's activity at its scan, as the phantom images it (110 min after administration)
    at_scan = spec.scout_activity_mbq * float(decay_factor(110.0 / 60.0,
                                                           nuclide["half_life_h"]))
    activity = relative * (at_scan / relative.sum())
    mu = ss.true_mu_map(spec, grid, "Ho-166")
    z, y, x = np.broadcast_arrays(*grid.points_mm())
    labels = spec.anatomy.labels(z, y, x)
    territory = spec.anatomy.territory(labels, z, y, x)
    tumours = [labels == anat.FIRST_TUMOUR + k for k in (2, 1, 0)]        # T3, T2, T1
    normals = {1: (labels == anat.LIVER) & (territory == 1),
               2: (labels == anat.LIVER) & (territory == 2)}
    own = [normals[spec.anatomy.tumour_territory(k)] for k in (2, 1, 0)]  # its territory's

    def ratios(seconds: float, noise: bool, seed: int) -> tuple[float, ...]:
        protocol = ss.SpectProtocol(nuclide="Ho-166", noise=noise,
                                    seconds_per_projection=seconds,
                                    iterations=args.iterations, subsets=args.subsets,
                                    resolution_modelling=not args.no_resolution_modelling)
        image = ss.simulate_spect(activity, mu, grid, protocol, seed=[seed, 3]).image
        a = sitk.GetArrayFromImage(image).astype(float)
        return tuple(a[t].mean() / a[n].mean() for t, n in zip(tumours, own))

    free = ratios(20.0, False, 0)
    print("noise-free: " + ", ".join(f"{t}/N {r:.3f}" for t, r in zip(("T3", "T2", "T1"), free)))
    print("| seconds per view | T3 / normal (mean ± SD) | against noise-free | T2 / normal | "
          "T1 / normal |")
    print("|---|---|---|---|---|")
    for seconds in args.seconds:
        got = np.array([ratios(seconds, True, seed) for seed in args.seeds])
        print(f"| {seconds:g} | {got[:, 0].mean():.3f} ± {got[:, 0].std(ddof=1):.3f} | "
              f"{100 * (got[:, 0].mean() / free[0] - 1):+.1f} % | " + " | ".join(
                  f"{got[:, k].mean():.3f} ± {got[:, k].std(ddof=1):.3f} "
                  f"({100 * (got[:, k].mean() / free[k] - 1):+.1f} %)" for k in (1, 2))
              + " |", flush=True)


if __name__ == "__main__":
    main()
