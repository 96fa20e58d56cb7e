"""Benchmark of what the Slicer module adds around the core: node digests of the step log,
isodose surfaces, and each guided step on the synthetic patient (headless, slicer-core).

    python Testing/benchmarks/bench_slicer_steps.py [--json out.json]

1. ``node_digest`` of a 512 x 512 x 200 int16 CT volume node and ``segments_digest`` of a
   segmentation with 8 segments on a 256 x 256 x 100 grid (the cost of refreshing the panel's
   step titles);
2. ``isodose_model_nodes`` with 4 levels on a 128^3 and a 256^3 dose volume;
3. every guided step (tareplanner.mrml.guided) on the small synthetic patient, and
   ``statuses`` after them.
Not a test: figures go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import slicer

from tareplanner.mrml import fingerprints, guided
from tareplanner.mrml.isodose import isodose_model_nodes
from tareplanner.mrml.segmentations import segmentation_from_labels
from tareplanner.mrml.volumes import volume_node_from_image


def _best(fn, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_digests(scene) -> dict:
    rng = np.random.default_rng(1)
    ct = sitk.GetImageFromArray(rng.integers(-1000, 1500, (200, 512, 512), dtype=np.int16))
    ct.SetSpacing((0.8, 0.8, 2.0))
    ct_node = volume_node_from_image(scene, ct, "CT 512")
    small = sitk.GetImageFromArray(np.zeros((100, 256, 256), np.int16))
    z, y, x = np.mgrid[:100, :256, :256]
    labels = np.zeros((100, 256, 256), np.uint8)
    for k in range(8):
        labels[(x - 30 - 25 * k) ** 2 + (y - 128) ** 2 + ((z - 50) * 2) ** 2 < 20 ** 2] = k + 1
    label_image = sitk.GetImageFromArray(labels)
    reference = volume_node_from_image(scene, small, "reference")
    segmentation = segmentation_from_labels(scene, label_image,
                                            {k: f"S{k}" for k in range(1, 9)}, reference)
    def fresh(fn):
        fingerprints._ARRAY_DIGESTS.clear()
        return fn()

    return {"ct_512x512x200_first_s": _best(lambda: fresh(
                lambda: fingerprints.node_digest(ct_node))),
            "ct_512x512x200_unchanged_s": _best(lambda: fingerprints.node_digest(ct_node)),
            "segmentation_8_segments_256x256x100_first_s": _best(lambda: fresh(
                lambda: fingerprints.node_digest(segmentation)))}


def bench_isodose(scene) -> dict:
    out = {}
    for n in (128, 256):
        z, y, x = np.mgrid[:n, :n, :n].astype(np.float32)
        r = np.sqrt((x - n / 2) ** 2 + (y - n / 2) ** 2 + (z - n / 2) ** 2) * (128 / n)
        dose = sitk.GetImageFromArray((300 * np.exp(-(r / 30) ** 2)).astype(np.float32))
        dose.SetSpacing((4.0 * 128 / n,) * 3)
        node = volume_node_from_image(scene, dose, f"dose {n}")
        out[f"{n}^3_4_levels_s"] = _best(
            lambda: isodose_model_nodes(scene, node, [40, 120, 200, 250]), repeat=2)
    return out


def bench_steps() -> dict:
    scene = slicer.vtkMRMLScene()
    p = guided.Parameters()
    timings = {}

    def timed(name, fn):
        start = time.perf_counter()
        fn()
        timings[name] = time.perf_counter() - start

    timed("load synthetic patient (small)", lambda: guided.load_synthetic_patient(scene, p))
    timed("register 2 CBCTs", lambda: guided.register_positions(scene, p))
    timed("lungs from CT", lambda: guided.add_lungs(p))
    timed("2 territories from CBCT", lambda: guided.add_territories(p))
    timed("measure LSF/TNR", lambda: guided.measure(scene, p))
    timed("plan + voxel dose + isodoses", lambda: guided.plan(scene, p))
    timed("verify from PET", lambda: guided.verify(scene, p))
    with tempfile.TemporaryDirectory() as tmp:
        p.outputFolder = str(Path(tmp) / "out")
        timed("save (records, dose folder, PDF)", lambda: guided.save(scene, p))
    timed("step statuses", lambda: guided.statuses(p))
    return timings


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json")
    args = parser.parse_args()
    scene = slicer.vtkMRMLScene()
    result = {"machine": {"python": platform.python_version(), "processor": platform.machine()},
              "digests": bench_digests(scene), "isodose": bench_isodose(scene),
              "guided_steps_s": bench_steps()}
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
