"""PDF report of a plan (and, when given, of its voxel dosimetry and verification), for a
physicist to check and sign. Made with matplotlib (text, tables, DVH plot, isodose slices)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .atomic import atomic_path

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
        f"{record['residual_fraction']:.1%}; tissue density {record['tissue_density_g_per_ml']} g/mL; "
        f"lung mass {record['lung_mass_kg']} kg",
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
    whole = record.get("whole_liver_dose_gy")
    lines += ["", f"Total activity {record['total_activity_gbq']:.3f} GBq; lung dose "
              f"{record['lung_dose_gy']:.2f} Gy (cumulative {record['lung_dose_cumulative_gy']:.2f}"
              f" Gy)" + (f"; whole liver {whole:.1f} Gy" if whole is not None else ""), "",
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
              for n, v in violations] or ["  none"]
    lines += ["", "## Warnings"]
    for w in record["warnings"] or [{"code": "-", "message": "none"}]:
        lines.append(f"  [{w['code']}] {w['message']}")
    lines += ["", "## Sign-off", "Planned by: ______________________   date: __________",
              "Checked by (medical physicist): ______________________   date: __________"]
    return lines


def _dvh_page(plt, dose_dir: Path, dose_record: dict):
    import csv
    fig = plt.figure(figsize=A4_INCHES)
    fig.text(0.06, 0.965, "Voxel dosimetry", fontsize=14, weight="bold", va="top")
    ax = fig.add_axes([0.1, 0.55, 0.8, 0.37])
    styles = {"dvh_planned.csv": "-", "dvh_delivered.csv": "--"}
    for name, style in styles.items():
        path = dose_dir / name
        if not path.exists():
            continue
        rows = list(csv.reader(open(path)))
        data = np.array([[float(x) for x in r] for r in rows[1:]])
        for k, column in enumerate(rows[0][1:], start=1):
            ax.plot(data[:, 0], data[:, k], style, lw=1.2,
                    label=f"{column.replace(' (%)', '')}"
                          f"{' (delivered)' if style == '--' else ''}")
    ax.set_xlabel("Dose (Gy)")
    ax.set_ylabel("Volume (%)")
    ax.set_title("Cumulative DVH (solid: planned, dashed: delivered)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    lines = ["## Dose indices (planned)",
             f"{'structure':<30}{'mean':>8}{'D70':>8}{'D95':>8}{'max':>8}{'BED mean':>10}"]
    for name, r in dose_record["predictive"]["structures"].items():
        lines.append(f"{name[:30]:<30}{r['mean_gy']:>8.1f}{r['D70']:>8.1f}{r['D95']:>8.1f}"
                     f"{r['max_gy']:>8.1f}{r['bed']['mean_gy']:>10.1f}")
    if "comparison" in dose_record:
        lines += ["", "## Delivered vs planned (mean dose, Gy)"]
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


def _isodose_page(plt, dose_dir: Path):
    import SimpleITK as sitk
    image = sitk.ReadImage(str(dose_dir / "dose_planned_gy.nii.gz"))
    dose = sitk.GetArrayFromImage(image)
    k = int(np.argmax(dose.max(axis=(1, 2))))
    fig = plt.figure(figsize=A4_INCHES)
    fig.text(0.06, 0.965, "Isodose slices (planned dose)", fontsize=14, weight="bold", va="top")
    peak = float(dose.max())
    levels = [v for v in (50, 100, 150, 200, 300) if v < peak]
    for i, (plane, label) in enumerate(((dose[k], f"axial slice {k}"),
                                        (dose[:, int(np.argmax(dose[k].max(axis=1))), :],
                                         "coronal through the hottest point"))):
        ax = fig.add_axes([0.1, 0.52 - i * 0.45, 0.8, 0.38])
        shown = ax.imshow(plane, cmap="inferno", origin="lower" if i else "upper",
                          aspect=image.GetSpacing()[2] / image.GetSpacing()[0] if i else 1.0)
        if levels:
            contours = ax.contour(plane, levels=levels, colors="white", linewidths=0.7,
                                  origin="lower" if i else "upper")
            ax.clabel(contours, fmt="%g Gy", fontsize=6)
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(shown, ax=ax, label="Gy", shrink=0.8)
    return fig


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
                pdf.savefig(_isodose_page(plt, dose_dir))
            plt.close("all")
    return Path(path)
