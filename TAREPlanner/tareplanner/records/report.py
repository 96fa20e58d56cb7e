"""PDF report of a plan (and, when given, of its written directive, administration record,
voxel dosimetry and verification), for a physicist to check and sign.

Made with matplotlib (PdfPages): every page carries the patient's identity (from the
planning CT's DICOM header through the case, or entered), "page i of n" and the software
version; the content is ruled tables (report_tables.py) laid out by report_layout.py, and
figures (report_figures.py): DVHs, orthogonal CT slices through the dose maximum and each
tumour with the dose, isodose lines and structure outlines, and a 3D view."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .atomic import atomic_path
from .identity import printable, report_identity
from .plan_text import (counting_line, guideline_lines, limited_by_text, lung_mass_text,
                        mean_dose_words, resolution_text, uncertainty_lines, whole_liver_text)
from . import report_tables as tables
from .report_figures import (PATIENT_AXIS_LETTERS, _dvh_page, draw_dvh,  # noqa: F401
                             isodose_figure, structure_colours)
from .report_layout import A4_INCHES, MARGIN_IN, Document, wrap

__all__ = ["write_report", "plan_lines", "verification_lines", "isodose_figure",
           "structure_colours", "PATIENT_AXIS_LETTERS", "A4_INCHES"]

#: isodose lines of the slice figures (Gy)
ISODOSE_LEVELS_GY = (50, 100, 150, 200, 300)
#: the isodose surface of the 3D view (Gy): the lowest tumour target of the products
#: (SIR-Spheres 100-120 Gy, docs/physics.md)
ISODOSE_3D_GY = 100.0
HEADER_LINES_MAX = 3


def plan_lines(record: dict) -> list[str]:
    """The plan as report lines (also used for tests)."""
    lim = record["limits"]
    normal = lim[lim["applied_normal_liver"]]
    lines = [
        "   ".join(tables.identity_lines(report_identity(record), record)),
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
        *([f"Imaging resolution {text}"] if (text := resolution_text(record)) else []),
        f"Limits: normal liver {normal['value']} Gy ({lim['applied_normal_liver']}), lung "
        f"{lim['lung_single_gy']['value']} Gy / {lim['lung_cumulative_gy']['value']} Gy cumulative",
        f"  [{record['limits_source']}]",
        "",
        "## Injection positions",
        f"{'position':<22}{'A (GBq)':>9}{'D_N (Gy)':>10}{'D_perf':>9}  limited by",
    ]
    for pos in record["positions"]:
        perfused = pos["perfused_dose_gy"]
        lines.append(f"{pos['name'][:22]:<22}{pos['activity_gbq']:>9.3f}"
                     f"{pos['normal_dose_gy']:>10.1f}"
                     f"{(f'{perfused:.1f}' if perfused is not None else '-'):>9}  "
                     f"{limited_by_text(pos, record)}")
        lines.append(f"    normal liver {pos['normal_volume_ml']:.1f} mL; goal "
                     f"{tables.goal_text(pos.get('goal'))}; {tables.binding_text(pos, record)}")
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
              *(["## Guideline check"] + [line[4:] if line.startswith("    ") else line
                                          for line in guideline_lines(record)[1:]] + [""]
                if record.get("guideline_check") else []),
              "## Ordering and dispensing", f"kind: {record['ordering']['kind']}"]
    columns, rows, _, _ = tables.ordering_table(record)
    lines += ["  " + "; ".join(f"{c} {v}" for c, v in zip(columns, row) if v) for row in rows]
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


def _outside_lines(check: dict) -> list[str]:
    if check.get("outside_liver_and_lungs_gbq") is None:
        return []
    corrected = check.get("outside_liver_and_lungs_fraction_corrected")
    fraction = check.get("outside_liver_and_lungs_fraction")
    return [f"outside liver and lungs {check['outside_liver_and_lungs_gbq']:.3f} GBq "
            + (f"({fraction:.1%} of the image as imaged" if fraction is not None else
               "(the image holds no positive activity")
            + (f"; {corrected:.1%} after the partial-volume correction" if corrected
               is not None else "")
            + (f"; warned above {check['outside_warning_fraction']:.0%} after the correction)"
               if corrected is not None else "; not corrected, not compared)")]


def post_pvc_lines(post: dict) -> list[str]:
    """What the partial-volume correction of the post-treatment image corrects, and not."""
    pvc = post.get("partial_volume_correction")
    if not pvc:
        return []
    if not pvc.get("applied"):
        return ["## Partial-volume correction of the post-treatment image",
                f"not applied ({pvc.get('reason', '')})", ""]
    res = pvc["resolution"]
    return ["## Partial-volume correction of the post-treatment image",
            f"resolution {'ASSUMED ' if pvc.get('assumed') else ''}{pvc['fwhm_mm']:g} mm "
            f"FWHM ({res.get('chosen_by')})",
            f"corrected: {pvc['corrected']}",
            f"not corrected: {pvc['not_corrected']}",
            mean_dose_words(pvc), ""]


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
                f"administered {tables.administered_text(check)}",
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
            lines += _outside_lines(check)
        else:
            lines.append(check.get("reason", "not applicable"))
        lines.append("")
    lines += post_pvc_lines(post)
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



def _table(doc: Document, spec, **kwargs) -> None:
    if spec is None:
        return
    columns, rows, widths, align = spec[:4]
    if not rows:
        doc.paragraph("none", colour="#555555")
        return
    doc.table(columns, rows, widths, align=align, **kwargs)


def _plan_pages(doc: Document, record: dict) -> None:
    doc.new_page("Treatment plan")
    doc.pairs(tables.overview_pairs(record))
    doc.heading("Injection positions")
    _table(doc, tables.positions_table(record))
    doc.heading("Tumours")
    _table(doc, tables.tumours_table(record))
    violations = tables.violations_rows(record)
    doc.heading("Limits exceeded")
    if violations:
        for line in violations:
            doc.paragraph(line, colour="#b00020", weight="bold")
    else:
        doc.paragraph("none: every dose is within its limit at the planned activities")
    doc.heading("Warnings")
    _table(doc, tables.warnings_table(record["warnings"]))
    doc.heading("Limits applied and their sources")
    _table(doc, tables.limits_table(record), size=7)
    if record.get("guideline_check"):
        doc.heading("Guideline check")
        doc.paragraph(tables.scenario_text(record), size=7.5)
        _table(doc, tables.guideline_table(record), size=6.5)
        for line in tables.site_change_lines(record):
            doc.paragraph(line, size=7.5)
    if record.get("uncertainty"):
        u = record["uncertainty"]
        doc.heading("Uncertainty")
        doc.paragraph(f"Monte Carlo propagation of the input uncertainties ({u['samples']} "
                      f"samples, {u['coverage']:.0%} intervals; inputs and their sources in "
                      "the plan record, docs/physics.md).", size=8)
        _table(doc, tables.uncertainty_table(record))
        if counting := counting_line(record):
            doc.paragraph(counting.strip()[0].upper() + counting.strip()[1:] + ".", size=7.5)
        _table(doc, tables.exceedance_table(record))
        _table(doc, tables.at_exceedance_table(record))
    from .response_report import response_section
    response_section(doc, record)
    doc.heading("Ordering and dispensing")
    zone = tables.treatment_zone(record)
    doc.paragraph(f"{record['ordering']['kind']}; times in the treatment's time zone "
                  f"({tables.zone_name(zone)}). {record['ordering'].get('source', '')}", size=7.5)
    _table(doc, tables.ordering_table(record))
    _sign_off(doc, [("Planned by", ""), ("Checked by (medical physicist)", "")])


def _sign_off(doc: Document, who: list[tuple[str, str]]) -> None:
    doc.heading("Sign-off")
    doc.room(0.45 * len(who))
    for label, _ in who:
        doc.text(0.55, doc.y_in + 0.25, f"{label}:", fontsize=8.5, weight="bold")
        doc.text(3.95, doc.y_in + 0.25, "_" * 28 + "   date: " + "_" * 12, fontsize=8.5)
        doc.y_in += 0.42


def _directive_page(doc: Document, directive: dict, zone) -> None:
    doc.new_page("Written directive")
    me = directive["criteria"]["medical_event"]
    doc.pairs([("Directive", f"{directive['schema']}, created {directive['created']}; plan "
                             f"SHA-256 {directive['plan_sha256'][:16]}…"),
               ("Radionuclide, product", f"{directive['nuclide']['name']}; "
                                         f"{directive['product']['display_name']}"),
               ("Prescription", directive["prescription_basis"]),
               ("Lung dose (all sites)", f"{directive['lung_dose_gy']:.2f} Gy"
                + (f" (cumulative {directive['lung_dose_cumulative_gy']:.2f} Gy)"
                   if directive.get("lung_dose_cumulative_gy") is not None else "")),
               ("Whole liver", "-" if directive.get("whole_liver_dose_gy") is None else
                f"{directive['whole_liver_dose_gy']:.1f} Gy; whole normal liver "
                + ("-" if directive.get("whole_normal_liver_dose_gy") is None else
                   f"{directive['whole_normal_liver_dose_gy']:.1f} Gy")),
               ("Medical event", f"the delivered activity of a site differs from the "
                                 f"prescribed by {me['relative_deviation']:.0%} or more "
                                 f"({me['source']})")])
    sites, changes = tables.directive_tables(directive, zone)
    doc.heading("Prescription per treatment site")
    _table(doc, sites)
    for v in directive.get("violations") or []:
        doc.paragraph(f"LIMIT EXCEEDED {v.get('position', 'all sites')}: {v['limit']} "
                      f"{v['dose_gy']:.2f} Gy > {v['limit_gy']:g} Gy", colour="#b00020",
                      weight="bold", size=8)
    for o in directive.get("overrides") or []:
        doc.paragraph(f"OVERRIDE {o['treatment_site']}: accepted by {o['by']} on {o['when']}: "
                      f"{o['reason']}", colour="#b00020", weight="bold", size=8)
    if changes:
        doc.heading("Changes before the administration")
        _table(doc, changes)
    if directive.get("plan_warnings") and directive.get("changes"):
        doc.heading("Plan checks at the changed activities")
        _table(doc, tables.warnings_table(directive["plan_warnings"]))
    _sign_off(doc, [("Authorised user (before administration)", ""),
                    ("Activity administered recorded and signed", "")])


def _administration_page(doc: Document, record: dict, zone) -> None:
    doc.new_page("Administration record")
    crit = record["criterion"]
    tolerance = crit.get("site_tolerance_fraction")
    doc.pairs([("Record", f"{record['schema']}, created {record['created']}; directive "
                          f"SHA-256 {record['directive_sha256'][:16]}…"),
               ("Criterion", f"medical event at a deviation of {crit['relative_deviation']:.0%}"
                             f" or more ({crit['source']})"
                             + (f"; site tolerance {tolerance:.0%}" if tolerance else "")),
               ("Total", f"delivered {record['total_delivered_activity_gbq']:.3f} GBq of "
                         f"{record['total_prescribed_activity_gbq']:.3f} GBq prescribed"),
               *_lung_criterion_pair(record)])
    readings, sites = tables.administration_tables(record, zone)
    doc.heading("Delivered against prescribed")
    doc.table(*sites[:3], align=sites[3], emphasis=sites[4])
    doc.heading("Dose-calibrator readings")
    _table(doc, readings)
    doc.heading("Warnings")
    _table(doc, tables.warnings_table(record.get("warnings") or []))


def _lung_criterion_pair(record: dict) -> list[tuple[str, str]]:
    """The lung-dose medical-event criterion of an administration record, as a report line."""
    lung = record.get("lung_criterion") or {}
    if not lung:
        return []
    if not lung.get("applicable"):
        return [("Lung criterion", f"not checked: {lung.get('reason', '')}")]
    seen = (f"mean lung {lung['image_dose_gy']:.2f} Gy in the post-treatment image"
            if "image_dose_gy" in lung else
            f"lung {lung['estimated_dose_gy']:.2f} Gy from the delivered activity")
    return [("Lung criterion", f"{seen} against {lung['expected_dose_gy']:.2f} Gy in the "
             "directive: "
             + ("MEDICAL EVENT" if lung["medical_event"] else "no medical event")
             + f" (exceeding by {lung['excess_dose_gy']:g} Sv and by "
             f"{lung['relative_excess_criterion']:.0%}: 10 CFR 35.3045(a)(3))")]


def _dosimetry_pages(doc: Document, dose_dir: Path, dose_record: dict,
                     record: dict | None = None) -> None:
    doc.new_page("Voxel dosimetry")
    method = dose_record.get("dose") or {}
    doc.paragraph(f"Dose engine: {method.get('method', '-')} ({method.get('nuclide', '-')}); "
                  f"lungs: {method.get('lung', '-')}.", size=8)
    doc.y_in += 0.25                  # room for the plot's title
    ax = doc.axes(3.6)
    draw_dvh(ax, dose_dir)
    doc.y_in += 3.6 + 0.45
    doc.heading("Dose indices (planned)")
    indices = tables.dose_indices_table(dose_record, record)
    _table(doc, indices)
    if indices[4]:
        doc.paragraph(indices[4], size=7.5, colour="#555555")
    voxel = tables.voxel_plan_table(dose_record)
    if voxel is not None:
        activities, goals, vp = voxel
        doc.heading("Voxel plan")
        doc.paragraph(f"Activities planned on the voxel dose ({vp.get('method', '-')}; tumour "
                      f"goal on the {vp.get('tumour_index', '-')}), within the plan's limits"
                      + (f"; binding: {', '.join(map(str, vp['binding']))}"
                         if vp.get("binding") else "") + ". Doses of the voxel plan's "
                      "activities; the plan's own activities are on the first page.", size=8)
        _table(doc, activities)
        if goals[1]:
            _table(doc, goals)
    if "comparison" in dose_record:
        pvc = (dose_record.get("post_treatment") or {}).get("partial_volume_correction") or {}
        doc.heading("Delivered against planned (mean dose" + (
            "; delivered: partial-volume corrected" if pvc.get("applied") else "") + ")")
        _table(doc, tables.comparison_table(dose_record))
    _verification(doc, dose_record)


def _verification(doc: Document, dose_record: dict) -> None:
    doc.heading("Verification")
    post = dose_record.get("post_treatment") or {}
    check = post.get("activity_check")
    if check:
        doc.heading("Activity in the post-treatment image against the administered activity",
                    size=9.5)
        if check.get("applicable", True):
            inside = check.get("inside_liver_and_lungs_fraction")
            ok = check["within_tolerance"]
            doc.pairs([
                ("Administered", tables.administered_text(check)),
                ("In the image", f"{check['image_total_gbq']:.3f} GBq at administration "
                                 f"({check['relative_difference']:+.1%}; tolerance "
                                 f"±{check['tolerance']:.0%}): "
                                 + ("within tolerance" if ok else "OUTSIDE TOLERANCE")),
                ("Inside liver and lungs", f"{check['inside_liver_and_lungs_gbq']:.3f} GBq"
                                           + (f" ({inside:.1%} of the image)" if inside
                                              is not None else "")),
                ("Tolerance source", check["tolerance_source"])]
                + [("Outside liver and lungs", line.split("outside liver and lungs ", 1)[1])
                   for line in _outside_lines(check)])
        else:
            doc.paragraph(check.get("reason", "not applicable"))
    if dose_record.get("lung_criterion"):
        doc.pairs(_lung_criterion_pair(dose_record))
    pvc_lines = post_pvc_lines(post)
    if pvc_lines:
        doc.heading(pvc_lines[0].lstrip("# "), size=9.5)
        for text in pvc_lines[1:]:
            if text:
                doc.paragraph(text, size=7.5)
    doc.heading("Dosimetry warnings", size=9.5)
    _table(doc, tables.warnings_table(dose_record.get("warnings") or []))
    why = (dose_record.get("predictive") or {}).get("voxel_versus_partition")
    if why:
        doc.heading("Why voxel mean doses differ from the partition model", size=9.5)
        rows = [[n, f"{r['model_gy']:.1f}", f"{r['ldm_mean_gy']:.1f}",
                 f"{r['voxel_mean_gy']:.1f}", f"{r['activity_effect']:+.1%}",
                 f"{r['energy_escape_effect']:+.1%}"] for n, r in why["structures"].items()]
        doc.table(["Structure", "Model (Gy)", "LDM (Gy)", "Kernel (Gy)",
                   "Activity effect", "Energy escape"], rows, [2.2, 0.9, 1, 1, 1, 1],
                  align=["l"] + ["r"] * 5)
        for text in why["explanation"]:
            doc.paragraph("• " + text, size=7.5)


def _measurement_for(record: dict, measurement) -> tuple[dict | None, str | None]:
    """The measurement record (given, or named by the plan's case when its file is there and
    its SHA-256 matches), or None with the reason."""
    if isinstance(measurement, dict):
        return measurement, None
    named = (record.get("case") or {}).get("measurement") or {}
    path = measurement or named.get("file")
    if not path:
        return None, "no measurement record named (tareplanner report --measurement)"
    path = Path(path)
    if not path.is_file():
        return None, f"the measurement record {printable(str(path), 200)} is not there"
    text = path.read_bytes()
    if measurement is None and named.get("sha256") and \
            hashlib.sha256(text).hexdigest() != named["sha256"]:
        return None, (f"the measurement record {printable(str(path), 200)} is not the one "
                      "the case was made from (SHA-256 differs)")
    from .record_checks import check_measurement_record
    try:
        return check_measurement_record(json.loads(text), str(path)), None
    except ValueError as exc:  # bad JSON or a record error (TarePlannerInputError)
        if measurement is not None:
            raise
        return None, f"the measurement record {printable(str(path), 200)} is unusable " \
                     f"({printable(str(exc), 200)})"


def _anatomy_pages(doc: Document, plt, dose_dir: Path, measurement: dict | None,
                   why_not: str | None, images: dict | None = None) -> None:
    import numpy as np

    from .report_figures import anatomy_from_images, load_anatomy, render_3d, tumour_centre
    try:
        if images is not None:
            import SimpleITK as sitk
            anatomy = anatomy_from_images(
                sitk.ReadImage(str(dose_dir / "dose_planned_gy.nii.gz"), sitk.sitkFloat32),
                images["ct"], images.get("masks"), images.get("tumours"))
        else:
            anatomy = load_anatomy(dose_dir, measurement)
    except Exception as exc:  # a label or CT file that moved: the dose alone is still shown
        why_not = f"the CT or label maps could not be read ({printable(str(exc), 200)})"
        anatomy = load_anatomy(dose_dir, None)
    doc.new_page("Dose on the anatomy")
    note = ("Planned dose on the CT (soft-tissue window W400/L40), isodose lines in Gy, "
            "structure outlines dashed (liver green, lungs blue, tumours in their colours). "
            "Patient coordinates (DICOM LPS, mm); radiological view: the patient's right on "
            "the image left; sagittal slices with anterior on the left.")
    if anatomy["ct"] is None:
        note = ("Planned dose alone (no CT): " + (why_not or "no measurement record") +
                ". Patient coordinates (DICOM LPS, mm); radiological view.")
    if anatomy["oblique"]:
        note += " Oblique image: axes labelled by their nearest patient direction."
    doc.paragraph(note, size=7.5)
    dose = anatomy["dose"]
    rows = [("dose maximum", tuple(int(v) for v in np.unravel_index(int(np.argmax(dose)),
                                                                       dose.shape)))]
    rows += [(name, tumour_centre(anatomy["masks"][name])) for name in anatomy["tumours"]]
    for label, centre in rows:
        anatomy_row(doc, anatomy, centre, label)
    problems: list[str] = []
    image = render_3d(anatomy, ISODOSE_3D_GY, problems=problems) \
        if anatomy["ct"] is not None else None
    if problems or (image is None and anatomy["ct"] is not None):
        doc.heading("3D view")
        doc.paragraph(("3D view not drawn" if image is None else "VTK reported errors while "
                       "drawing the 3D view; check it against the slices") + ": "
                      + ("; ".join(printable(p, 300) for p in problems[:3])
                         or "VTK cannot render off screen here"),
                      colour="#b00020", weight="bold", size=8)
    if image is not None:
        if not problems:
            doc.heading("3D view")
        doc.paragraph(f"Anterior view: liver (translucent), tumours in their colours, the "
                      f"{ISODOSE_3D_GY:g} Gy isodose surface of the planned dose in red.",
                      size=8)
        doc.room(4.7)
        ax = doc.axes(4.6)
        ax.imshow(image)
        ax.set_xticks([])
        ax.set_yticks([])
        for letter, (x, y) in {"R": (0.03, 0.5), "L": (0.97, 0.5), "S": (0.5, 0.97),
                               "I": (0.5, 0.03)}.items():
            ax.text(x, y, letter, transform=ax.transAxes, ha="center", va="center",
                    fontsize=11, weight="bold", gid=f"orientation-{letter}")
        from .report_figures import outline_colours
        colours = outline_colours(anatomy)
        legend = [plt.Line2D([], [], color=colours[n], lw=6, label=n) for n in
                  anatomy["tumours"]] + [plt.Line2D([], [], color="#ff2020", lw=6, alpha=0.5,
                                                    label=f"{ISODOSE_3D_GY:g} Gy isodose")]
        ax.legend(handles=legend, loc="lower right", fontsize=7)
        doc.y_in += 4.7


#: the tallest image of a row of slices on the dose-on-anatomy page (inches)
ROW_IMAGE_MAX_IN = 2.2
ROW_CAPTION_IN, ROW_AFTER_IN = 0.17, 0.12


#: the colour key's font size (points) and swatch size (inches)
KEY_PT, KEY_SWATCH_IN = 7.0, 0.11


def colour_key(doc: Document, anatomy: dict, x_in: float, y_in: float) -> list[tuple]:
    """A key of the outline colours (liver, lungs, each tumour) at ``x_in, y_in`` inches
    from the page's left and top edge; returns (name, colour) in the order drawn."""
    from matplotlib.patches import Rectangle

    from .report_figures import outline_colours
    from .report_layout import GLYPH_EM

    colours = outline_colours(anatomy)
    names = [n for n in ("liver", "lungs") if n in anatomy["masks"]] + list(anatomy["tumours"])
    w, h = A4_INCHES
    doc.text(x_in, y_in, "Outlines:", fontsize=KEY_PT, va="top", gid="colour-key")
    x_in += 0.55
    drawn = []
    for name in names:
        doc.fig.patches.append(Rectangle(
            (x_in / w, 1 - (y_in + KEY_SWATCH_IN) / h), KEY_SWATCH_IN / w, KEY_SWATCH_IN / h,
            transform=doc.fig.transFigure, facecolor=colours[name], edgecolor="#333333",
            lw=0.4, gid=f"colour-key-{name}"))
        doc.text(x_in + KEY_SWATCH_IN + 0.04, y_in, name, fontsize=KEY_PT, va="top",
                 gid="colour-key")
        x_in += KEY_SWATCH_IN + 0.12 + len(name) * KEY_PT / 72 * GLYPH_EM
        drawn.append((name, colours[name]))
    return drawn


def anatomy_row(doc: Document, anatomy: dict, centre: tuple[int, int, int], label: str):
    """A row of the dose-on-anatomy page: its caption (what the slices go through), then
    the axial, coronal and sagittal slices through voxel ``centre`` at one height, side by
    side with room for their axis labels, and the colour bar. Returns the three image axes
    and the colour bar's."""
    from .report_figures import (COLOUR_BAR_IN, ROW_BOTTOM_IN, ROW_TITLE_IN, orthogonal_row,
                                 row_layout, slice_extents_mm)
    height, boxes, bar_left = row_layout(slice_extents_mm(anatomy), doc.width_in,
                                         ROW_IMAGE_MAX_IN)
    doc.room(ROW_CAPTION_IN + ROW_TITLE_IN + height + ROW_BOTTOM_IN)
    caption = ("Through the dose maximum" if label == "dose maximum" else
               f"Through tumour {label} (the voxel nearest its centre)")
    doc.text(MARGIN_IN, doc.y_in, caption, fontsize=7.5, weight="bold", va="top",
             color="#1f3b5c", gid="row-caption")
    colour_key(doc, anatomy, MARGIN_IN + 3.4, doc.y_in)
    doc.y_in += ROW_CAPTION_IN + ROW_TITLE_IN
    axes = [doc.axes(height, left_in=left, width_in=width, new_row=False)
            for left, width in boxes]
    shown = orthogonal_row(axes, anatomy, centre, None, ISODOSE_LEVELS_GY)
    cax = doc.axes(height, left_in=bar_left, width_in=COLOUR_BAR_IN[1], new_row=False)
    bar = doc.fig.colorbar(shown, cax=cax)
    bar.set_label("planned dose (Gy)", fontsize=6, labelpad=2)
    bar.ax.tick_params(labelsize=5.5, length=2.5, pad=1.5)
    doc.y_in += height + ROW_BOTTOM_IN + ROW_AFTER_IN
    return axes, cax


def _records_shown(doc: Document, shown: dict, records: list) -> None:
    """What this report shows, each record with its SHA-256 (the report's parents), and any
    limit accepted by override."""
    doc.heading("Records shown in this report")
    rows = [[role, ref.get("schema") or "-", ref.get("file") or "-",
             f"{ref['sha256'][:32]} {ref['sha256'][32:]}"] for role, ref in shown.items()]
    doc.table(["Record", "Schema", "File", "SHA-256"], rows, [1.0, 1.8, 1.5, 3.0], size=7)
    overrides = [o for r in records if r for o in r.get("overrides") or []]
    seen = set()
    for o in overrides:
        key = (o["treatment_site"], o["when"])
        if key in seen:
            continue
        seen.add(key)
        doc.paragraph(f"LIMIT OVERRIDE {o['treatment_site']}: {o['exceeded']}; accepted by "
                      f"{o['by']} on {o['when']}: {o['reason']}", colour="#b00020",
                      weight="bold", size=8)


def _header_lines(identity: dict, record: dict) -> list[str]:
    width = A4_INCHES[0] - 2 * 0.55
    lines = [part for line in tables.identity_lines(identity, record)
             for part in wrap(line, width, 7.5)]
    if len(lines) > HEADER_LINES_MAX:
        lines = lines[:HEADER_LINES_MAX]
        lines[-1] = lines[-1][:-1] + "…"
    return lines


def write_report(record: dict, path: str | Path, *, dose_dir: str | Path | None = None,
                 directive: dict | None = None, administration: dict | None = None,
                 measurement: dict | str | Path | None = None, identity: dict | None = None,
                 anatomy: dict | None = None, overwrite: bool = False,
                 shown: dict | None = None) -> Path:
    """Write the PDF report atomically; returns its path.

    ``identity``: patient and study entered by hand (keys of an identity block,
    records/identity.py), taking precedence over the case's; ``measurement``: the
    measurement record (or its file) whose CT and label maps the slice figures show,
    by default the one the plan's case names; ``anatomy``: those images in memory instead
    (``{"ct": image, "masks": {"liver"|"lungs": binary image}, "tumours": {name: binary
    image}}``, any grids), as the Slicer module and the web page have them; ``shown``: the
    records shown, role -> parent reference (records/chain.py), listed with their SHA-256
    on the last page (by default made from the records given)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    from .. import __version__

    measured, why_not = (None, None)
    if dose_dir is not None:
        measured, why_not = _measurement_for(record, measurement)
    entered = dict(identity or {})
    if measured is not None:
        for key, value in ((measured.get("inputs") or {}).get("ct", {}).get("identity")
                           or {}).items():
            entered.setdefault(key, value)
    # the case's identity first, entered values over it, the CT header's where both lack one
    merged = report_identity(record, identity)
    for key, value in entered.items():
        if key != "source" and value:
            merged.setdefault(key, printable(value))
    zone = tables.treatment_zone(record)
    doc = Document(plt, "TAREPlanner radioembolization plan",
                   _header_lines(merged, record),
                   f"tareplanner {__version__} (plan: {printable(record['software']['version'])},"
                   f" case SHA-256 {record['input_sha256'][:12]}…) · not a medical device: "
                   "to be checked by a qualified medical physicist")
    plt.close("all")
    with matplotlib.rc_context({"pdf.fonttype": 42, "font.family": "DejaVu Sans"}):
        _plan_pages(doc, record)
        if directive is not None:
            _directive_page(doc, directive, zone)
        if administration is not None:
            _administration_page(doc, administration, zone)
        if dose_dir is not None:
            dose_dir = Path(dose_dir)
            from .dose_record import validate_dose_record
            dose_record = validate_dose_record(
                json.loads((dose_dir / "dose.json").read_text()), str(dose_dir / "dose.json"))
            _dosimetry_pages(doc, dose_dir, dose_record, record)
            _anatomy_pages(doc, plt, dose_dir, measured, why_not, anatomy)
        if shown is None:
            from .chain import parent_ref
            shown = {"plan": parent_ref(record)}
            for key, doc_ in (("directive", directive), ("administration", administration)):
                if doc_ is not None:
                    shown[key] = parent_ref(doc_)
            if dose_dir is not None:
                shown["dose"] = parent_ref(dose_record)
        _records_shown(doc, shown, [directive, administration])
        pages = doc.finish()
        with atomic_path(path, overwrite) as tmp:
            title = f"TAREPlanner plan {printable(record.get('case_id') or '')}".strip()
            with PdfPages(tmp, metadata={"Title": title,
                                         "Creator": f"tareplanner {__version__}"}) as pdf:
                for page in pages:
                    pdf.savefig(page)
    plt.close("all")
    return Path(path)
