"""Accuracy and cost of the partial-volume correction on the synthetic patient.

    python Testing/benchmarks/bench_partial_volume.py [--sizes small standard] [--seeds 3]

For each size and seed the synthetic patient's MAA SPECT is rebuilt from its noise-free,
blur-free expected counts (the phantom with ``spect_fwhm_mm=0, spect_noise=False``), blurred
with a chosen point-spread function and given Poisson noise (4e6 counts, as the phantom's),
then measured with the truth label maps (liver, tumours, lungs, territories) with and
without the correction, the correction always assuming the default 14 mm Gaussian. The
PSFs: the assumed one (14 mm; the phantom's own SPECT is this case), FWHM 20 % narrower and
20 % wider, and a PSF with wide tails (85 % 14 mm + 15 % 42 mm Gaussian). Errors are relative
to the truth (truth.json: TNR T1 3.2, T2 2.4, T3 1.8; LSF 6 %). The time of the correction
alone (regions, transfer matrix, solve) is taken on the same machine in the same run.
Not a test: the figures go into docs/imaging.md and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time

import numpy as np
import SimpleITK as sitk

from tareplanner.imaging.measure import LabelInputs, PositionImages, measure
from tareplanner.imaging.partial_volume import build_regions, correct_regions
from tareplanner.imaging.phantom import make_phantom, spec_for_size
from tareplanner.imaging.phantom_files import label_images
from tareplanner.imaging.readers import LoadedImage
from tareplanner.imaging.segmentation import body_mask
from tareplanner.physics.partial_volume import PointSpread, blur

ASSUMED_FWHM_MM = 14.0
PSFS = {
    "assumed (14 mm)": PointSpread.gaussian(14.0),
    "FWHM -20 % (11.2 mm)": PointSpread.gaussian(11.2),
    "FWHM +20 % (16.8 mm)": PointSpread.gaussian(16.8),
    "wide tails (85 % 14 mm + 15 % 42 mm)": PointSpread(((0.85, 14.0), (0.15, 42.0))),
}


def _loaded(image, units, modality):
    return LoadedImage(image=image, modality=modality, units=units, source="memory", sha256="",
                       meta={"radionuclide": "Tc-99m"})


def _spect(phantom_clean, psf: PointSpread, seed: int, total_counts: float) -> sitk.Image:
    expected = sitk.GetArrayFromImage(phantom_clean.spect).astype(np.float64)
    expected *= total_counts / expected.sum()
    blurred = blur(expected, phantom_clean.spect.GetSpacing()[::-1], psf)
    noisy = np.random.default_rng([seed, 99]).poisson(np.clip(blurred, 0, None))
    image = sitk.GetImageFromArray(noisy.astype(np.float32))
    image.CopyInformation(phantom_clean.spect)
    return image


def _measure(phantom, spect: sitk.Image, pvc: bool) -> dict:
    labels = label_images(phantom)
    names = {k + 1: t.name for k, t in enumerate(phantom.spec.anatomy.tumours)}
    territories = sitk.GetArrayFromImage(labels["territories"])
    positions = []
    for i, terr in enumerate(phantom.spec.anatomy.territories, start=1):
        mask = sitk.GetImageFromArray((territories == i).astype(np.uint8))
        mask.CopyInformation(phantom.ct)
        positions.append(PositionImages(name=terr.name, territory=mask))
    return measure(_loaded(phantom.ct, "HU", "CT"), _loaded(spect, "counts", "NM"),
                   LabelInputs(liver=labels["liver"], tumours=labels["tumours"],
                               tumour_names=names, lungs=labels["lungs"]),
                   positions, partial_volume_correction=pvc)


def _errors(m: dict, truth: dict) -> dict:
    out = {t["name"]: t["tnr"] / truth["tnr_maa"][t["name"]] - 1.0
           for p in m["positions"] for t in p["tumours"]}
    out["LSF"] = m["lung_shunt"]["lung_shunt_fraction"] / truth["lung_shunt_fraction"] - 1.0
    return out


def _pvc_seconds(phantom, repeats: int = 3) -> float:
    labels = {k: sitk.GetArrayFromImage(v) for k, v in label_images(phantom).items()}
    liver = labels["liver"] > 0
    tumours = {t.name: labels["tumours"] == k + 1
               for k, t in enumerate(phantom.spec.anatomy.tumours)}
    territories = {t.name: labels["territories"] == i + 1
                   for i, t in enumerate(phantom.spec.anatomy.territories)}
    lungs = (labels["lungs"] > 0) & ~liver
    body = body_mask(phantom.ct)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        regions = build_regions(tumours=tumours, territories=territories, liver=liver,
                                lungs=lungs, body=body)
        correct_regions(phantom.spect, phantom.ct, regions, ASSUMED_FWHM_MM)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["small", "standard"])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"{platform.machine()}")
    worst: dict[str, float] = {}
    for size in args.sizes:
        for s in range(args.seeds):
            seed = 20261122 + s
            spec = spec_for_size(size, seed=seed, pet=False)
            clean = make_phantom(dataclasses.replace(spec, spect_fwhm_mm=0.0,
                                                     spect_noise=False))
            if s == 0:
                phantom = make_phantom(spec)
                ct = phantom.ct.GetSize()
                print(f"\n{size}: CT {ct[0]}x{ct[1]}x{ct[2]}, SPECT "
                      f"{'x'.join(map(str, phantom.spect.GetSize()))}; correction alone "
                      f"{_pvc_seconds(phantom):.2f} s (best of 3)")
            for label, psf in PSFS.items():
                spect = _spect(clean, psf, seed, spec.spect_total_counts)
                for pvc in (False, True):
                    if not pvc and label != "assumed (14 mm)":
                        continue
                    start = time.perf_counter()
                    m = _measure(clean, spect, pvc)
                    seconds = time.perf_counter() - start
                    err = _errors(m, clean.truth)
                    key = f"{size} {label} {'corrected' if pvc else 'uncorrected'}"
                    for name, value in err.items():
                        worst[f"{key} {name}"] = max(worst.get(f"{key} {name}", 0.0),
                                                     abs(value))
                    print(f"  seed {seed} {label:38s} {'PVC' if pvc else 'raw'} "
                          + " ".join(f"{k} {100 * v:+6.2f} %" for k, v in err.items())
                          + f"  (measure {seconds:.1f} s)")
    print("\nlargest |error| over the seeds:")
    for key, value in worst.items():
        print(f"  {key}: {100 * value:.2f} %")


if __name__ == "__main__":
    main()
