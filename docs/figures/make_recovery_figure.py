"""The recovery curve of docs/imaging.md: the six spheres of the synthetic NEMA/IEC phantom,
measured against the fitted model, for a 14 mm Gaussian camera and a camera with a wide tail.

    python docs/figures/make_recovery_figure.py        # writes docs/figures/recovery-curve.png
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tareplanner.imaging.calibration import calibrate  # noqa: E402
from tareplanner.imaging.camera_file import psf_of  # noqa: E402
from tareplanner.imaging.iec_phantom import IecSpec, make_iec_phantom  # noqa: E402
from tareplanner.imaging.loaded import LoadedImage  # noqa: E402
from tareplanner.physics.partial_volume import PointSpread, blur  # noqa: E402
from tareplanner.physics.psf_fit import ball_occupancy  # noqa: E402

OUT = Path(__file__).with_name("recovery-curve.png")


def model_curve(psf: PointSpread, diameters, spacing=4.42, contrast=8.0):
    """Recovery (mean over the sphere) of a lone sphere of each diameter in a warm
    background, on a grid like the phantom's (centre of a voxel)."""
    values = []
    n = 41
    for d in diameters:
        occ = ball_occupancy((n, n, n), (spacing,) * 3, (n // 2,) * 3, d / 2.0)
        activity = contrast * occ + (1.0 - occ)
        image = blur(activity, (spacing,) * 3, psf)
        values.append(float((occ * image).sum() / occ.sum() / contrast))
    return np.asarray(values)


def main() -> None:
    fig, ax = plt.subplots(figsize=(6.0, 3.8), dpi=120)
    cameras = {"14 mm Gaussian": PointSpread.gaussian(14.0),
               "85 % 14 mm + 15 % 42 mm": PointSpread(((0.85, 14.0), (0.15, 42.0)))}
    grid = np.linspace(6.0, 45.0, 40)
    for (label, psf), colour in zip(cameras.items(), ("tab:blue", "tab:red")):
        phantom = make_iec_phantom(IecSpec(psf=psf))
        ct = LoadedImage(phantom["ct"], "CT", "HU", "ct", "")
        image = LoadedImage(phantom["image"], "NM", "counts", "image", "")
        camera = calibrate(ct, image, nuclide="Tc-99m", modality="SPECT", sphere_kbq_ml=40.0,
                           background_kbq_ml=5.0)
        d = [s["diameter_mm"] for s in camera["spheres"]]
        ax.plot(d, [s["recovery_measured"] for s in camera["spheres"]], "o", color=colour,
                label=f"{label}: measured")
        fitted = psf_of({"psf_components": [[c["weight"], c["fwhm_mm"]]
                                            for c in camera["psf"]["components"]]})
        parts = " + ".join(f"{c['weight']:.0%} {c['fwhm_mm']:.1f} mm"
                           for c in camera["psf"]["components"])
        ax.plot(grid, model_curve(fitted, grid), "-", color=colour, lw=1.2,
                label=f"fitted {camera['psf']['model']} ({parts})")
    ax.set_xlabel("sphere inner diameter (mm)")
    ax.set_ylabel("recovery coefficient (mean)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Synthetic NEMA/IEC phantom, 8:1 contrast, 4.42 mm voxels", fontsize=9)
    fig.tight_layout()
    fig.savefig(OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
