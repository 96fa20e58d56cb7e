"""Figures of the report and of docs/dosimetry.md, from the demo (the synthetic patient).

    pip install -e ".[test]"
    python docs/figures/make_report_figures.py [DEMO_FOLDER]

Runs ``tareplanner demo --size small`` in a temporary folder unless DEMO_FOLDER (a folder the
demo wrote) is given, then writes docs/figures/report-plan.png, report-administration.png,
report-dvh.png, report-verification.png, report-isodose.png (pages of the demo's report,
written by the report's own code and rasterised with pdftoppm) and
voxel-vs-partition.png (partition-model, LDM, kernel and delivered mean doses per structure,
and a dose profile through the largest tumour), and prints the numbers quoted in
docs/dosimetry.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

FIGURES = Path(__file__).resolve().parent
PAGE_DPI = 60


def _demo(folder: Path | None) -> Path:
    if folder is not None:
        return folder
    tmp = Path(tempfile.mkdtemp(prefix="tareplanner-figures-"))
    subprocess.run(["tareplanner", "demo", "--size", "small", "--out", str(tmp / "demo")],
                   check=True, stdout=subprocess.DEVNULL)
    return tmp / "demo"


def report_pages(demo: Path) -> None:
    """The demo's report (with its written directive and administration record) written by
    the report's own code, and its pages rasterised with pdftoppm (poppler-utils)."""
    import shutil

    from pypdf import PdfReader

    from tareplanner.records.report import write_report
    if shutil.which("pdftoppm") is None:
        sys.exit("pdftoppm (poppler-utils) is needed to rasterise the report's pages")
    pdf = demo / "report-figures.pdf"
    write_report(json.loads((demo / "plan.json").read_text()), pdf, dose_dir=demo / "dose",
                 directive=json.loads((demo / "directive.json").read_text()),
                 administration=json.loads((demo / "administration.json").read_text()),
                 overwrite=True)
    texts = [page.extract_text() for page in PdfReader(str(pdf)).pages]
    wanted = {"report-plan.png": "Treatment plan", "report-dvh.png": "Voxel dosimetry",
              "report-verification.png": "Why voxel mean doses differ",
              "report-isodose.png": "Dose on the anatomy",
              "report-administration.png": "Administration record"}
    for name, heading in wanted.items():
        page = next(i for i, text in enumerate(texts, start=1) if heading in text)
        stem = demo / f"page-{page}"
        subprocess.run(["pdftoppm", "-r", str(PAGE_DPI), "-png", "-singlefile", "-f",
                        str(page), "-l", str(page), str(pdf), str(stem)], check=True)
        shutil.copyfile(stem.with_suffix(".png"), FIGURES / name)


def voxel_versus_partition(demo: Path) -> None:
    from tareplanner.cli.dose_commands import load_structures
    from tareplanner.dosimetry.activity import predictive_activity
    from tareplanner.dosimetry.dose import dose_map
    from tareplanner.dosimetry.partition import partition_doses
    plan = json.loads((demo / "plan.json").read_text())
    record = json.loads((demo / "dose" / "dose.json").read_text())
    measurement = json.loads((demo / "measurement.json").read_text())
    why = record["predictive"]["voxel_versus_partition"]["structures"]
    delivered = record["post_treatment"]["structures"]
    names = list(why)
    fig, (bars, profile) = plt.subplots(1, 2, figsize=(11, 4.2),
                                        gridspec_kw={"width_ratios": [1.25, 1]})
    x = np.arange(len(names))
    series = (("partition model", [why[n]["model_gy"] for n in names], "0.55"),
              ("voxel LDM (planned)", [why[n]["ldm_mean_gy"] for n in names], "tab:blue"),
              ("voxel kernel (planned)", [why[n]["voxel_mean_gy"] for n in names], "tab:orange"),
              ("delivered (Y-90 PET, kernel)", [delivered[n]["mean_gy"] for n in names],
               "tab:red"))
    for k, (label, values, colour) in enumerate(series):
        bars.bar(x + (k - 1.5) * 0.2, values, 0.2, label=label, color=colour)
    bars.set_xticks(x, [n.replace("normal liver ", "NL ") for n in names], rotation=30,
                    ha="right", fontsize=8)
    bars.set_ylabel("mean dose (Gy)")
    bars.legend(fontsize=7)
    bars.set_title("Mean dose per structure (demo)", fontsize=10)

    # a profile along x through the largest tumour's dose maximum, at CT resolution
    ct, spect, structures = load_structures(measurement)
    activities = {p["name"]: p["activity_gbq"] for p in plan["positions"]}
    activity, _ = predictive_activity(spect.image, structures, activities,
                                      plan["lung_shunt_fraction"], plan["residual_fraction"])
    lungs = structures.masks["lungs"]
    maps = {"voxel LDM (planned)": dose_map(activity, "Y-90", ct.image, lungs, method="ldm")[0],
            "voxel kernel (planned)": sitk.ReadImage(str(demo / "dose" / "dose_planned_gy.nii.gz")),
            "delivered (Y-90 PET, kernel)":
                sitk.ReadImage(str(demo / "dose" / "dose_delivered_gy.nii.gz"))}
    on_ct = {k: sitk.GetArrayFromImage(sitk.Resample(v, ct.image, sitk.Transform(),
                                                     sitk.sitkLinear, 0.0, sitk.sitkFloat32))
             for k, v in maps.items()}
    model = np.zeros(lungs.shape, np.float32)
    doses = partition_doses(plan)
    for name, mask in structures.masks.items():      # normal liver first, tumours on top
        if name.startswith("normal liver (") or name == "lungs":
            model[mask] = doses[name]
    for name, mask in structures.masks.items():
        if structures.kinds[name] == "tumour":
            model[mask] = doses[name]
    tumour = max((n for n in structures.masks if structures.kinds[n] == "tumour"),
                 key=lambda n: structures.masks[n].sum())
    kernel = on_ct["voxel kernel (planned)"]
    k, j, _ = np.unravel_index(int(np.argmax(np.where(structures.masks[tumour], kernel, 0))),
                               kernel.shape)
    xs = ct.image.GetOrigin()[0] + np.arange(kernel.shape[2]) * ct.image.GetSpacing()[0]
    profile.plot(xs, model[k, j], color="0.55", lw=2, label="partition model")
    for (label, _, colour) in series[1:]:
        profile.plot(xs, on_ct[label][k, j], color=colour, lw=1.2, label=label)
    inside = np.flatnonzero(structures.masks[tumour][k, j])
    profile.axvspan(xs[inside[0]], xs[inside[-1]], color="0.9", zorder=0, label=tumour)
    profile.set_xlim(xs[inside[0]] - 60, xs[inside[-1]] + 60)
    profile.set_xlabel("x (mm, towards the patient's left)")
    profile.set_ylabel("dose (Gy)")
    profile.set_title(f"Profile through {tumour}", fontsize=10)
    profile.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(FIGURES / "voxel-vs-partition.png", dpi=90)
    plt.close(fig)
    for n in names:
        r = why[n]
        print(f"{n:<30} model {r['model_gy']:6.1f}  LDM {r['ldm_mean_gy']:6.1f}  kernel "
              f"{r['voxel_mean_gy']:6.1f}  delivered {delivered[n]['mean_gy']:6.1f}  activity "
              f"{r['activity_effect']:+.1%}  escape {r['energy_escape_effect']:+.1%}")
    print("counts outside territories and lungs:",
          f"{record['predictive']['counts_outside_territories_and_lungs_fraction']:.1%}")
    print("activity check:", json.dumps({k: v for k, v in
                                         record["post_treatment"]["activity_check"].items()
                                         if k != "tolerance_source"}))


if __name__ == "__main__":
    demo = _demo(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else None)
    os.chdir(demo.parent)       # the demo's records name their images relative to it
    report_pages(demo)
    voxel_versus_partition(demo)
