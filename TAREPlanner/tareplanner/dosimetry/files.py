"""The files of a dose folder: dose and BED maps (NIfTI), DVH, BED-DVH and index tables (CSV),
planned against delivered."""

from __future__ import annotations

import SimpleITK as sitk

from .dose import bed_map
from .structures import Structures


def dvh_csv(report: dict, key: str = "dvh") -> str:
    """Cumulative DVHs as CSV: dose (Gy), then % volume per structure. ``key`` "bed_dvh"
    gives the BED-volume histograms (each structure on its own BED scale, padded with 0)."""
    names = list(report)
    if not names:
        return "dose_gy\n"
    edges = max((report[n][key]["dose_gy"] for n in names), key=len)
    column = "bed_gy" if key == "bed_dvh" else "dose_gy"
    lines = [column + "," + ",".join(f'"{n} (%)"' for n in names)]
    for i, e in enumerate(edges):
        cells = []
        for n in names:
            v = report[n][key]["volume_percent"]
            cells.append(f"{v[i]:.4f}" if i < len(v) else "0.0000")
        lines.append(f"{e:g}," + ",".join(cells))
    return "\n".join(lines) + "\n"


def dvh_overlay_csv(planned: dict, delivered: dict) -> str:
    """Planned and delivered cumulative DVHs side by side (% volume), one row per dose bin."""
    names = [n for n in planned if n in delivered]
    edges = max([planned[n]["dvh"]["dose_gy"] for n in names]
                + [delivered[n]["dvh"]["dose_gy"] for n in names], key=len)
    header = ["dose_gy"] + [f'"{n} planned (%)","{n} delivered (%)"' for n in names]
    lines = [",".join(header)]
    for i, e in enumerate(edges):
        cells = [f"{e:g}"]
        for n in names:
            for report in (planned, delivered):
                v = report[n]["dvh"]["volume_percent"]
                cells.append(f"{v[i]:.4f}" if i < len(v) else "0.0000")
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def indices_csv(report: dict) -> str:
    skip = ("kind", "bed", "dvh", "bed_dvh")
    keys = [k for k in next(iter(report.values())) if k not in skip] if report else []
    lines = ["structure,kind," + ",".join(keys) + ",bed_mean_gy,bed_D70_gy"]
    for name, r in report.items():
        lines.append(f'"{name}",{r["kind"]},' + ",".join(f"{r[k]:.4f}" for k in keys)
                     + f",{r['bed']['mean_gy']:.4f},{r['bed']['D70']:.4f}")
    return "\n".join(lines) + "\n"


def write_dose_files(folder, structures: Structures, nuclide: str, planned: sitk.Image,
                     planned_report: dict, delivered: sitk.Image | None = None,
                     delivered_report: dict | None = None) -> list:
    """The dose files of a dose folder (the layout the report and batch read): dose and BED
    maps (NIfTI, Gy), DVH and BED-DVH tables, index tables, and with a delivered dose the
    planned-versus-delivered DVH table and the difference map. ``folder`` must exist (write
    into a temporary folder and rename it, as the callers do, for atomicity)."""
    from pathlib import Path
    folder = Path(folder)
    written = []

    def image(img, name):
        sitk.WriteImage(img, str(folder / name), useCompression=True)
        written.append(folder / name)

    def text(content, name):
        (folder / name).write_text(content)
        written.append(folder / name)

    image(planned, "dose_planned_gy.nii.gz")
    text(dvh_csv(planned_report), "dvh_planned.csv")
    text(indices_csv(planned_report), "indices_planned.csv")
    text(dvh_csv(planned_report, "bed_dvh"), "dvh_bed_planned.csv")
    image(bed_map(planned, structures, nuclide), "bed_planned_gy.nii.gz")
    if delivered is not None:
        image(delivered, "dose_delivered_gy.nii.gz")
        text(dvh_csv(delivered_report), "dvh_delivered.csv")
        text(indices_csv(delivered_report), "indices_delivered.csv")
        text(dvh_csv(delivered_report, "bed_dvh"), "dvh_bed_delivered.csv")
        text(dvh_overlay_csv(planned_report, delivered_report), "dvh_planned_vs_delivered.csv")
        on_planned = sitk.Resample(delivered, planned, sitk.Transform(), sitk.sitkLinear, 0.0)
        image(on_planned - planned, "dose_difference_gy.nii.gz")
    return written
