"""PDF report of a plan (and, when given, of its voxel dosimetry and verification), for a
physicist to check and sign. Made with matplotlib (text, tables, DVH plot, isodose slices)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .plan_text import lung_mass_text, uncertainty_lines, whole_liver_text

A4_INCHES = (8.27, 11.69)
LINE_CHARS = 96


def _wrap(line: str) -> list[str]:
    import textwrap
    if len(line) <= LINE_CHARS:
        return [line]
    indent = " " * (len(line) - len(line.lstrip()) + 4)
    return textwrap.wrap(line, LINE_CHARS, subsequent_indent=indent, break_long_words=True)


def _figure():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt, plt.figure(figsize=A4_INCHES)


def _text_pages(plt, lines: list[str], title: str) -> list:
    """Monospaced text on as many A4 pages as it needs."""
    pending = [part for raw in lines for part in _wrap(raw)]
    pages = []
    while pending or not pages:
        fig = plt.figure(figsize=A4_INCHES)
        heading = title if not pages else f"{title} (continued)"
        fig.text(0.06, 0.965, heading, fontsize=14, weight="bold", va="top")
        y = 0.93
        while pending and y >= 0.05:
            line = pending.pop(0)
            bold = line.startswith("## ")
            fig.text(0.06, y, line[3:] if bold else line, family="monospace",
                     fontsize=10 if bold else 8.5, weight="bold" if bold else "normal",
                     va="top")
            y -= 0.022 if bold else 0.0165
        pages.append(fig)
    return pages


def plan_lines(record: dict) -> list[str]:
    """The plan as report lines (also used for tests)."""
    lim = record["limits"]
    normal = lim[lim["applied_normal_liver"]]
    lines = [
        f"Case {record.get('case_id') or '-'}   Patient {record.get('patient_id') or '-'}   "
        f"Treatment {record.get('treatment_time') or '-'}",
        f"Record {record['schema']}  created {record['created']}  tareplanner "
        f"{record['software']['version']}",
        f"Input SHA-256 {record['input_sha256']}",
        "",
        "## Product and method",
        f"{record['product']['display_name']}",
        f"Method {record['method']} (dose model {record['dose_model']}); CF "
        f"{record['nuclide']['energy_per_activity_j_per_gbq']} J/GBq ({record['nuclide']['name']})",
        f"LSF {record['lung_shunt_fraction']:.2%} measured by {record['lsf_method']}; residual "
        f"{record['residual_fraction']:.1%}; tissue density {record['tissue_density_g_per_ml']} g/mL",
        f"Lung mass {lung_mass_text(record)}",
        f"Limits: normal liver {normal['value']} Gy ({lim['applied_normal_liver']}), lung "
        f"{lim['lung_single_gy']['value']} Gy / {lim['lung_cumulative_gy']['value']} Gy cumulative",
        f"  [{record['limits_source']}]",
        "",
        "## Injection positions",
        f"{'position':<22}{'A (GBq)':>9}{'D_N (Gy)':>10}{'D_perf':>9}  {'limited by':<20}",
    ]
    for pos in record["positions"]:
        perfused = pos["perfused_dose_gy"]
        lines.append(f"{pos['name'][:22]:<22}{pos['activity_gbq']:>9.3f}"
                     f"{pos['normal_dose_gy']:>10.1f}"
                     f"{(f'{perfused:.1f}' if perfused is not None else '-'):>9}  "
                     f"{pos['limited_by']:<20}")
        lines.append(f"    normal liver {pos['normal_volume_ml']:.1f} mL; goal "
                     f"{json.dumps(pos['goal'])}")
        for t in pos["tumours"]:
            tnr = "-" if t["tnr"] is None else f"{t['tnr']:.2f}"
            lines.append(f"    tumour {t['name']:<14} {t['volume_ml']:>8.1f} mL  TNR {tnr:>5}  "
                         f"dose {t['dose_gy']:>7.1f} Gy")
    whole = whole_liver_text(record)
    lines += ["", f"Total activity {record['total_activity_gbq']:.3f} GBq; lung dose "
              f"{record['lung_dose_gy']:.2f} Gy (cumulative {record['lung_dose_cumulative_gy']:.2f}"
              f" Gy)", whole[0].upper() + whole[1:], "",
              *(["## Uncertainty"] + [line.strip() if not line.startswith("    ") else line[2:]
                                      for line in uncertainty_lines(record)] + [""]
                if record.get("uncertainty") else []),
              "## Ordering and dispensing", f"kind: {record['ordering']['kind']}"]
    for entry in record["ordering"]["positions"]:
        details = {k: v for k, v in entry.items() if k not in ("name",)}
        text = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                         for k, v in details.items())
        lines.append(f"  {entry['name']}: {text}")
    lines += ["", "## Violations"]
    violations = [(p["name"], v) for p in record["positions"] for v in p["violations"]] + \
        [("case", v) for v in record["violations"]]
    lines += [f"  {n}: {v['limit']} {v['dose_gy']:.1f} Gy > {v['limit_gy']} Gy"
              + (f" [{v['source']}]" if v.get("source") else "")
              for n, v in violations] or ["  none"]
    lines += ["", "## Warnings"]
    for w in record["warnings"] or [{"code": "-", "message": "none"}]:
        lines.append(f"  [{w['code']}] {w['message']}")
    lines += ["", "## Sign-off", "Planned by: ______________________   date: __________",
              "Checked by (medical physicist): ______________________   date: __________"]
    return lines


#: DICOM patient axes (LPS): the letter at the negative and at the positive end of each axis
PATIENT_AXIS_LETTERS = {"x": ("R", "L"), "y": ("A", "P"), "z": ("I", "S")}


def structure_colours(names) -> dict:
    """One colour per structure (matplotlib's tab10, tab20 beyond ten structures), so that
    the planned and delivered curves of a structure share it."""
    import matplotlib
    names = list(dict.fromkeys(names))
    cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def _read_dvh_csv(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Dose bins and % volume per structure of a ``dvh_*.csv`` written by the dose command."""
    import csv
    rows = list(csv.reader(path.read_text().splitlines()))
    data = np.array([[float(x) for x in r] for r in rows[1:]], dtype=float)
    data = data.reshape(-1, len(rows[0]))
    names = [c[:-len(" (%)")] if c.endswith(" (%)") else c for c in rows[0][1:]]
    return data[:, 0], {n: data[:, k] for k, n in enumerate(names, start=1)}


def _dvh_page(plt, dose_dir: Path, dose_record: dict):
    from matplotlib.lines import Line2D
    fig = plt.figure(figsize=A4_INCHES)
    fig.text(0.06, 0.965, "Voxel dosimetry", fontsize=14, weight="bold", va="top")
    ax = fig.add_axes([0.1, 0.55, 0.8, 0.37])
    curves = {}
    for phase, name in (("planned", "dvh_planned.csv"), ("delivered", "dvh_delivered.csv")):
        if (dose_dir / name).exists():
            curves[phase] = _read_dvh_csv(dose_dir / name)
    structures = [n for phase in curves.values() for n in phase[1]]
    colours = structure_colours(structures)
    for phase, style in (("planned", "-"), ("delivered", "--")):
        if phase not in curves:
            continue
        dose_gy, volumes = curves[phase]
        for name, volume in volumes.items():
            ax.plot(dose_gy, volume, linestyle=style, color=colours[name], lw=1.2,
                    label=f"{name} ({phase})")
    ax.set_xlabel("Dose (Gy)")
    ax.set_ylabel("Volume (%)")
    ax.set_title("Cumulative DVH (solid: planned, dashed: delivered; one colour per structure)")
    ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=c, lw=1.5, label=n) for n, c in colours.items()]
    if "delivered" in curves:
        handles += [Line2D([], [], color="black", lw=1.2, label="planned"),
                    Line2D([], [], color="black", lw=1.2, linestyle="--", label="delivered")]
    ax.legend(handles=handles, fontsize=6, ncol=2)
    lines = ["## Dose indices (planned)",
             f"{'structure':<30}{'mean':>8}{'D70':>8}{'D95':>8}{'max':>8}{'BED mean':>10}"]
    for name, r in dose_record["predictive"]["structures"].items():
        lines.append(f"{name[:30]:<30}{r['mean_gy']:>8.1f}{r['D70']:>8.1f}{r['D95']:>8.1f}"
                     f"{r['max_gy']:>8.1f}{r['bed']['mean_gy']:>10.1f}")
    if "comparison" in dose_record:
        lines += ["", "## Delivered vs planned (mean dose, Gy)",
                  f"{'structure':<30}{'planned':>8}{'deliv.':>8}  change"]
        for name, c in dose_record["comparison"].items():
            m = c.get("mean_gy")
            if m:
                rel = f"{m['relative']:+.1%}" if m["relative"] is not None else "-"
                lines.append(f"{name[:30]:<30}{m['planned']:>8.1f}{m['delivered']:>8.1f}  {rel}")
    y = 0.49
    for line in lines:
        bold = line.startswith("## ")
        fig.text(0.06, y, line[3:] if bold else line, fontsize=8.5, family="monospace",
                 weight="bold" if bold else "normal", va="top")
        y -= 0.0165
    return fig


def verification_lines(dose_record: dict) -> list[str]:
    """The post-treatment activity check, the dose record's warnings and why voxel mean
    doses differ from the partition model's, as report lines (also used for tests)."""
    lines = []
    post = dose_record.get("post_treatment") or {}
    check = post.get("activity_check")
    if check:
        lines += ["## Activity in the post-treatment image against the administered activity"]
        if check.get("applicable", True):
            lines += [
                f"administered {check['administered_activity_gbq']:.3f} GBq "
                f"({check['administered_source']}), residual {check['residual_fraction']:.1%}: "
                f"expected in the patient {check['expected_in_patient_gbq']:.3f} GBq",
                f"in the image at administration {check['image_total_gbq']:.3f} GBq "
                f"({check['relative_difference']:+.1%}; tolerance "
                f"±{check['tolerance']:.0%}): "
                + ("within tolerance" if check["within_tolerance"] else "OUTSIDE TOLERANCE"),
                f"inside liver and lungs {check['inside_liver_and_lungs_gbq']:.3f} GBq "
                + (f"({fraction:.1%} of the image)"
                   if (fraction := check.get("inside_liver_and_lungs_fraction")) is not None
                   else "(the image holds no positive activity)")
                + "; the rest "
                "(resolution spill-out at their edges, or extrahepatic deposition) adds to no "
                "structure's dose",
                f"  [tolerance: {check['tolerance_source']}]"]
        else:
            lines.append(check.get("reason", "not applicable"))
        lines.append("")
    warnings = dose_record.get("warnings") or []
    lines.append("## Dosimetry warnings")
    lines += [f"  [{w['code']}] {w['message']}" for w in warnings] or ["  none"]
    why = (dose_record.get("predictive") or {}).get("voxel_versus_partition")
    if why:
        lines += ["", "## Why voxel mean doses differ from the partition model",
                  f"{'structure':<30}{'model':>8}{'LDM':>8}{'kernel':>8}{'activity':>10}"
                  f"{'escape':>8}"]
        for name, r in why["structures"].items():
            lines.append(f"{name[:30]:<30}{r['model_gy']:>8.1f}{r['ldm_mean_gy']:>8.1f}"
                         f"{r['voxel_mean_gy']:>8.1f}{r['activity_effect']:>+10.1%}"
                         f"{r['energy_escape_effect']:>+8.1%}")
        lines += [""] + [f"- {text}" for text in why["explanation"]]
    return lines


def _oriented(image):
    """The image reoriented to the DICOM patient axes (index i, j, k along L, P, S, to the
    nearest axis for an oblique image), its array (k, j, i) and voxel-centre coordinates (mm)
    along x (R to L), y (A to P) and z (I to S); and whether the acquisition was oblique."""
    import SimpleITK as sitk
    lps = sitk.DICOMOrient(image, "LPS")
    direction = np.array(lps.GetDirection()).reshape(3, 3)
    oblique = bool(np.abs(direction - np.eye(3)).max() > 1e-6)
    coords = [lps.GetOrigin()[a] + np.arange(lps.GetSize()[a]) * lps.GetSpacing()[a]
              * direction[a, a] for a in range(3)]
    return sitk.GetArrayFromImage(lps), coords, oblique


def _side_labels(ax, horizontal: str, vertical: str) -> None:
    """Patient-direction letters on the four sides of an image drawn in patient coordinates
    (mm): each side gets the letter of the end of its axis that lies there."""
    for axis, limits, sides in ((horizontal, ax.get_xlim(), ((0.03, 0.5), (0.97, 0.5))),
                                (vertical, ax.get_ylim(), ((0.5, 0.04), (0.5, 0.96)))):
        negative, positive = PATIENT_AXIS_LETTERS[axis]
        low_side, high_side = (negative, positive) if limits[0] < limits[1] else (positive,
                                                                                  negative)
        for letter, (x, y) in zip((low_side, high_side), sides):
            ax.text(x, y, letter, transform=ax.transAxes, ha="center", va="center",
                    fontsize=10, weight="bold", color="white", gid=f"orientation-{letter}",
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "black", "alpha": 0.6,
                          "edgecolor": "none"})


def _isodose_panel(fig, rect, plane, cols_mm, rows_mm, horizontal: str, vertical: str,
                   levels, title: str, *, top_is_low: bool):
    """One slice with its isodose lines, image and contours both in patient coordinates (mm),
    so they cannot be drawn mirrored against each other."""
    ax = fig.add_axes(rect)
    half_c = abs(cols_mm[1] - cols_mm[0]) / 2 if len(cols_mm) > 1 else 0.5
    half_r = abs(rows_mm[1] - rows_mm[0]) / 2 if len(rows_mm) > 1 else 0.5
    shown = ax.imshow(plane, cmap="inferno", origin="lower", interpolation="nearest",
                      extent=(cols_mm[0] - half_c, cols_mm[-1] + half_c,
                              rows_mm[0] - half_r, rows_mm[-1] + half_r), aspect="equal")
    if levels and plane.shape[0] > 1 and plane.shape[1] > 1:
        contours = ax.contour(cols_mm, rows_mm, plane, levels=levels, colors="white",
                              linewidths=0.7)
        ax.clabel(contours, fmt="%g Gy", fontsize=6)
    if top_is_low:
        ax.set_ylim(rows_mm[-1] + half_r, rows_mm[0] - half_r)
    ax.set_xlabel(f"{horizontal} (mm)", fontsize=7)
    ax.set_ylabel(f"{vertical} (mm)", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.set_title(title, fontsize=9)
    _side_labels(ax, horizontal, vertical)
    fig.colorbar(shown, ax=ax, label="Gy", shrink=0.8)
    return ax


ISODOSE_LEVELS_GY = (50, 100, 150, 200, 300)


def isodose_figure(plt, image, title: str = "Isodose slices (planned dose)"):
    """Axial (anterior up, patient's right on the image left) and coronal (superior up,
    patient's right on the left) slices through the dose maximum of a dose image (Gy), with
    isodose lines, orientation letters and the slice positions in patient coordinates."""
    dose, (x_mm, y_mm, z_mm), oblique = _oriented(image)
    k, j, _ = np.unravel_index(int(np.argmax(dose)), dose.shape)
    fig = plt.figure(figsize=A4_INCHES)
    fig.text(0.06, 0.965, title, fontsize=14, weight="bold", va="top")
    note = ("Patient coordinates (DICOM LPS, mm): x towards the patient's left, y posterior, "
            "z superior. Radiological view: patient's right on the image left.")
    if oblique:
        note += " Oblique image: axes labelled by their nearest patient direction."
    fig.text(0.06, 0.935, note, fontsize=7, va="top", wrap=True)
    peak = float(dose.max())
    levels = [v for v in ISODOSE_LEVELS_GY if v < peak]
    _isodose_panel(fig, [0.1, 0.5, 0.8, 0.38], dose[k], x_mm, y_mm, "x", "y", levels,
                   f"axial slice at z = {z_mm[k]:+.1f} mm (through the dose maximum, "
                   f"{peak:.0f} Gy)", top_is_low=True)
    _isodose_panel(fig, [0.1, 0.05, 0.8, 0.38], dose[:, j, :], x_mm, z_mm, "x", "z", levels,
                   f"coronal slice at y = {y_mm[j]:+.1f} mm (through the dose maximum)",
                   top_is_low=False)
    return fig


def _isodose_page(plt, dose_dir: Path):
    import SimpleITK as sitk
    return isodose_figure(plt, sitk.ReadImage(str(dose_dir / "dose_planned_gy.nii.gz")))


def write_report(record: dict, path: str | Path, *, dose_dir: str | Path | None = None,
                 overwrite: bool = False) -> Path:
    """Write the PDF report atomically; returns its path."""
    from matplotlib.backends.backend_pdf import PdfPages

    plt, _ = _figure()
    plt.close("all")
    with atomic_path(path, overwrite) as tmp:
        with PdfPages(tmp, metadata={"Title": f"TAREPlanner plan {record.get('case_id') or ''}",
                                     "Creator": f"tareplanner {record['software']['version']}"}
                      ) as pdf:
            for page in _text_pages(plt, plan_lines(record), "TAREPlanner treatment plan"):
                pdf.savefig(page)
            if dose_dir is not None:
                dose_dir = Path(dose_dir)
                from ..dosimetry import validate_dose_record
                dose_record = validate_dose_record(
                    json.loads((dose_dir / "dose.json").read_text()), str(dose_dir / "dose.json"))
                pdf.savefig(_dvh_page(plt, dose_dir, dose_record))
                for page in _text_pages(plt, verification_lines(dose_record),
                                        "Verification and dose models"):
                    pdf.savefig(page)
                pdf.savefig(_isodose_page(plt, dose_dir))
            plt.close("all")
    return Path(path)
