"""The realistic Ho-166 scout's small-tumour bias against its counts: the uncorrected image
ratios T3 / normal liver and T1 / normal liver (right territory, the anatomy's own masks on
the SPECT grid, voxel centres) of the small patient's scout, noise-free and with noise at
the protocol's 20 s per view and at longer views.

    python Testing/benchmarks/scout_count_bias.py [--seeds 1 2 3 4] [--seconds 20 80]

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
    args = parser.parse_args()
    from tareplanner.imaging import anatomy as anat
    from tareplanner.imaging import phantom as ph
    from tareplanner.imaging import spect_simulation as ss
    from tareplanner.imaging.grid import Grid
    from tareplanner.physics.decay import decay_factor

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
    t1, t3 = labels == anat.FIRST_TUMOUR, labels == anat.FIRST_TUMOUR + 2
    normal = (labels == anat.LIVER) & (territory == 1)

    def ratios(seconds: float, noise: bool, seed: int) -> tuple[float, float]:
        protocol = ss.SpectProtocol(nuclide="Ho-166", noise=noise,
                                    seconds_per_projection=seconds)
        image = ss.simulate_spect(activity, mu, grid, protocol, seed=[seed, 3]).image
        a = sitk.GetArrayFromImage(image).astype(float)
        return a[t3].mean() / a[normal].mean(), a[t1].mean() / a[normal].mean()

    free = ratios(20.0, False, 0)
    print(f"noise-free: T3/N {free[0]:.3f}, T1/N {free[1]:.3f}")
    print("| seconds per view | T3 / normal (mean ± SD) | against noise-free | T1 / normal |")
    print("|---|---|---|---|")
    for seconds in args.seconds:
        got = np.array([ratios(seconds, True, seed) for seed in args.seeds])
        print(f"| {seconds:g} | {got[:, 0].mean():.3f} ± {got[:, 0].std(ddof=1):.3f} | "
              f"{100 * (got[:, 0].mean() / free[0] - 1):+.1f} % | {got[:, 1].mean():.3f} "
              f"({100 * (got[:, 1].mean() / free[1] - 1):+.1f} %) |", flush=True)


if __name__ == "__main__":
    main()
