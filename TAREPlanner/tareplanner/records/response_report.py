"""Figures and report rows of dose–response: the fitted curves with their 95 % band and the
observed rates (a fit record), and on a plan the curves with the plan's doses marked on them.
"""

from __future__ import annotations

import numpy as np

from ..physics.dose_response import Curve

CURVE_POINTS = 201
TUMOUR_COLOUR, LIVER_COLOUR = "#1f77b4", "#d62728"


def _curve(entry: dict) -> Curve | None:
    if not entry or entry.get("params") is None or entry.get("covariance") is None:
        return None
    cov = entry["covariance"]
    return Curve(entry["model"], tuple(entry["params"]), (tuple(cov[0]), tuple(cov[1])),
                 entry.get("df"))


def _metric_label(metric: str) -> str:
    return {"mean": "mean absorbed dose (Gy)", "bed_mean": "mean BED (Gy)",
            "D70": "D70 (Gy)", "D90": "D90 (Gy)", "median": "median dose (Gy)",
            "bed_D70": "BED D70 (Gy)", "eud": "EUD (Gy)"}.get(metric, f"{metric} (Gy)")


def draw_curve(ax, entry: dict, marks, *, colour: str, title: str, ylabel: str,
               observed=None):
    """One curve with its 95 % band on ``ax`` and each mark (label, value in Gy) at its
    probability on the curve (a published relation without slope: its D50 as a vertical
    line, the marks on the dose axis). Returns the curve's Line2D (None without a curve)."""
    curve = _curve(entry)
    values = [v for _, v in marks if v is not None]
    d90 = [d["dose_gy"] for d in entry.get("doses") or [] if abs(d["p"] - 0.9) < 1e-9]
    top = max([entry.get("d50_gy") or 0.0] + values + [b["dose_median_gy"] for b in
                                                        (observed or [])] + d90) * 1.3 or 100.0
    ax.set_xlim(0, top)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title, fontsize=8.5)
    ax.set_xlabel(_metric_label(entry.get("metric", "")), fontsize=7.5)
    ax.set_ylabel(ylabel, fontsize=7.5)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    line = None
    if curve is not None:
        x = np.linspace(0.0, top, CURVE_POINTS)
        p, low, high = curve.probability(x)
        ax.fill_between(x, low, high, color=colour, alpha=0.18, lw=0, label="95 % band")
        line, = ax.plot(x, p, color=colour, lw=1.6, label=f"{entry['model']} fit")
        line.set_gid("curve")
    elif entry.get("d50_gy"):
        ax.axvline(entry["d50_gy"], color=colour, ls="--", lw=1.2,
                   label=f"published 50 % at {entry['d50_gy']:g} Gy (no slope published)")
    for b in observed or []:
        ax.errorbar([b["dose_median_gy"]], [b["rate"]], yerr=[[b["rate"] - b["low"]],
                                                 [b["high"] - b["rate"]]],
                    fmt="s", color="#444444", ms=3.5, lw=0.8, capsize=2)
    for k, (label, value) in enumerate(marks):
        if value is None:
            continue
        y = float(curve.probability(value)[0]) if curve is not None else 0.0
        point, = ax.plot([value], [y], "o", color="black", ms=5, zorder=5)
        point.set_gid(f"mark:{label}")
        ax.annotate(label, (value, y), textcoords="offset points",
                    xytext=(4, -10 if k % 2 else 5), fontsize=6.5)
    ax.legend(fontsize=6.5, loc="upper left")
    return line


def curves_figure(record: dict):
    """The tumour and liver curves of a fit record, with observed rates (Wilson intervals)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, name, colour, ylabel in ((axes[0], "tumour", TUMOUR_COLOUR, "P(response)"),
                                     (axes[1], "liver", LIVER_COLOUR, "P(toxicity)")):
        part = record[name]
        if not part.get("fitted"):
            ax.set_axis_off()
            ax.text(0.5, 0.5, f"{name}: not fitted\n({part.get('reason', '')})",
                    ha="center", va="center", fontsize=8, wrap=True)
            continue
        d50 = next(d for d in part["doses"] if abs(d["p"] - 0.5) < 1e-9)
        counted = (f"{part['n']} patients" if part["unit"] == "patient" else
                   f"{part['n']} {part['unit']}s, {part['patients']} patients")
        title = f"{name}: {counted}; D50 {d50['dose_gy']:.0f} Gy"
        ax.text(0.98, 0.04, "observed rates: dose-quartile bins (Wilson 95 %)",
                transform=ax.transAxes, ha="right", fontsize=6, color="#444444")
        draw_curve(ax, part, [], colour=colour, title=title, ylabel=ylabel,
                   observed=part.get("observed"))
    fig.tight_layout()
    return fig


def plan_marks(part: dict) -> tuple[list, list]:
    """(tumour marks, liver marks): (label, planned value) of the plan's dose_response."""
    tumours = [(f"{r['position']}/{r['tumour']}", r.get("planned_value_gy"))
               for r in part["tumours"]]
    liver = part["liver"]
    return tumours, [("normal liver", liver.get("planned_value_gy"))]


def plan_response_axes(tumour_ax, liver_ax, part: dict) -> dict:
    """The plan's curves with its doses marked; returns the curve lines by name."""
    fit = part["fit"]
    tumours, liver = plan_marks(part)
    lines = {}
    for ax, name, marks, colour, ylabel in (
            (tumour_ax, "tumour", tumours, TUMOUR_COLOUR, "P(response)"),
            (liver_ax, "liver", liver, LIVER_COLOUR, "P(toxicity)")):
        entry = fit.get(name)
        if not entry:
            ax.set_axis_off()
            ax.text(0.5, 0.5, f"the fit has no {name} curve", ha="center", va="center",
                    fontsize=8)
            continue
        lines[name] = draw_curve(ax, entry, marks, colour=colour,
                                 title=(entry.get("endpoint") or name)[:70], ylabel=ylabel)
    return lines


def response_rows(record: dict) -> tuple[list[str], list[list], list[float], list[str]]:
    """Columns, rows, widths and alignment of the plan's probabilities table."""
    from .response_record import _p, _value
    part = record["dose_response"]
    rows = [[f"{r['position']}/{r['tumour']}", "response", _value(r), _p(r)]
            for r in part["tumours"]]
    liver = part["liver"]
    rows.append(["normal liver", "toxicity", _value(liver) if liver.get("metric") else "-",
                 _p(liver)])
    return (["structure", "outcome", "planned", "probability (fit interval; across the dose "
             "uncertainty)"], rows, [1.3, 0.8, 1.2, 3.4], ["l", "l", "r", "l"])


def response_section(doc, record: dict) -> None:
    """The plan's dose–response section of the PDF report (nothing when the plan names no
    fit): a table and the curves with the plan's doses marked."""
    part = record.get("dose_response")
    if not part:
        return
    doc.heading("Dose-response (information, not limits)")
    doc.paragraph(f"{part['fit']['label']}. {part['information_only'].capitalize()}.", size=7.5)
    columns, rows, widths, align = response_rows(record)
    doc.table(columns, rows, widths, align=align)
    for w in part["warnings"]:
        doc.paragraph(f"[{w['code']}] {w['message']}", size=7.5, colour="#8a5a00")
    height = 2.4
    doc.room(height + 0.7)
    doc.y_in += 0.3
    half = (doc.width_in - 0.6) / 2
    tumour_ax = doc.axes(height, width_in=half)
    liver_ax = doc.axes(height, left_in=half + 0.6, width_in=half, new_row=False)
    plan_response_axes(tumour_ax, liver_ax, part)
    doc.y_in += height + 0.55
