"""The report's tables and label-value lists, built from the records (plan, written
directive, administration, dose record): plain lists of strings, laid out by
report_layout.py. Times are printed in the treatment's time zone."""

from __future__ import annotations

from datetime import datetime, timezone, tzinfo

from ..guidelines import site_change_parts
from .identity import printable
from .plan_text import (LIMITS, binding_limits, limit_dose, lung_mass_text, resolution_text,
                        whole_liver_doses)

LIMIT_CODES = {code for code, _, _ in LIMITS}

SEX_WORDS = {"M": "male", "F": "female", "O": "other"}
GOAL_WORDS = {"tumour_dose_gy": "tumour dose {} Gy", "normal_dose_gy": "normal-liver dose {} Gy",
              "perfused_dose_gy": "perfused-volume dose {} Gy", "activity_gbq": "activity {} GBq"}
#: the binding constraint of a position in words, and the limit (of record["limits"]) it is
LIMIT_WORDS = {"normal-liver-limit": ("the normal-liver limit of its territory", None),
               "lung-limit": ("the lung limit", "lung_single_gy"),
               "lung-cumulative-limit": ("the cumulative lung limit", "lung_cumulative_gy"),
               "whole-liver-limit": ("the whole-liver limit", "whole_liver_gy"),
               "whole-normal-liver-limit": ("the whole-normal-liver limit", None)}


#: where the administered activity of the post-treatment activity check came from, in words
ADMINISTERED_WORDS = {
    "planned total activity": "the plan's total activity: no administered activity given",
    "administered activity (given)": "as entered; no administration record",
    "delivered total of the administration record":
        "delivered total of the administration record, residual already subtracted"}


def administered_text(check: dict) -> str:
    """The administered activity of an activity check, where it came from and what is
    expected in the patient, as one sentence."""
    source = check.get("administered_source", "")
    words = ADMINISTERED_WORDS.get(source, source)
    residual = check["residual_fraction"]
    text = f"{check['administered_activity_gbq']:.3f} GBq ({words})"
    if residual:
        text += f", less the residual {residual:.1%}"
    return text + f": {check['expected_in_patient_gbq']:.3f} GBq expected in the patient"


def short_source(source: str) -> str:
    """The first words of a citation: up to the first parenthesis, colon or semicolon."""
    text = str(source or "")
    for mark in (" (", ":", ";"):
        text = text.split(mark)[0]
    return text.strip()


def treatment_zone(record: dict) -> tzinfo:
    """The time zone of the treatment time (UTC when the plan has none)."""
    stamp = record.get("treatment_time")
    try:
        zone = datetime.fromisoformat(stamp).tzinfo if stamp else None
    except (TypeError, ValueError):
        zone = None
    return zone or timezone.utc


def zone_name(zone: tzinfo) -> str:
    offset = datetime(2026, 1, 1, tzinfo=zone).utcoffset()
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def local_time(stamp: str | None, zone: tzinfo) -> str:
    """An ISO date-time with offset as ``YYYY-MM-DD HH:MM`` in ``zone``; '-' when absent."""
    if not stamp:
        return "-"
    try:
        moment = datetime.fromisoformat(str(stamp))
    except ValueError:
        return printable(stamp)
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M") + " (no zone)"
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def identity_lines(identity: dict, record: dict) -> list[str]:
    """The two header lines of every page: patient, then study, case and treatment."""
    zone = treatment_zone(record)
    sex = SEX_WORDS.get(identity.get("sex", ""), identity.get("sex"))
    patient = [f"Patient {identity.get('patient_name') or 'name not given'}",
               f"ID {identity.get('patient_id') or 'not given'}",
               f"born {identity.get('birth_date') or 'not given'}"]
    if sex:
        patient.append(f"sex {sex}")
    study = [f"study {identity['study_date']}" if identity.get("study_date") else
             "study date not given"]
    for key, label in (("study_description", ""), ("institution", ""),
                       ("referring_physician", "referred by ")):
        if identity.get(key):
            study.append(label + identity[key])
    if record.get("case_id"):
        study.append(f"case {printable(record['case_id'])}")
    elif not identity.get("patient_id"):
        # neither a case id nor a patient ID: the case is named by its hash
        study.append(f"case SHA-256 {str(record.get('input_sha256') or '')[:12]}…")
    if record.get("treatment_time"):
        study.append(f"treatment {local_time(record['treatment_time'], zone)} "
                     f"({zone_name(zone)})")
    return ["   ·   ".join(patient), "   ·   ".join(study)]


def goal_text(goal: dict | None) -> str:
    if not goal:
        return "-"
    (kind, value), = goal.items()
    if kind == "maximum":
        return "highest activity within the limits"
    return GOAL_WORDS.get(kind, kind + " {}").format(f"{value:g}")


def binding_text(pos: dict, record: dict) -> str:
    """What sets a position's activity, in words: its goal, every limit it stands at with
    the limit's value and source, or for the BSA method the formula and the lung-shunt
    reduction."""
    goal = pos.get("goal") or {}
    if "bsa" in goal:
        bsa = pos.get("bsa") or {}
        text = "set by the BSA formula"
        if bsa.get("bsa_m2") is not None:
            text += (f" (body surface area {bsa['bsa_m2']:.2f} m², tumour involvement "
                     f"{bsa.get('tumour_involvement', 0):.0%}, "
                     f"{bsa.get('perfused_fraction', 1):.0%} of the liver perfused)")
        factor = bsa.get("lsf_factor", 1.0)
        if factor < 1:
            text += (f", reduced to {factor:.0%} for the lung shunt fraction "
                     f"{record['lung_shunt_fraction']:.1%}")
        return text + "; not scaled to the dose limits"
    codes = binding_limits(pos, record)
    if not codes:
        return f"its goal ({goal_text(goal)})"
    parts = []
    for code in codes:
        words = LIMIT_WORDS.get(code, (code.replace("-", " "), None))[0]
        _, entry = limit_dose(record, pos, code) if code in LIMIT_CODES else (None, None)
        if entry and entry.get("value") is not None:
            words += f" ({entry['value']:g} Gy, {short_source(entry.get('source', ''))})"
        parts.append(words)
    return "limited by " + (parts[0] if len(parts) == 1 else
                            ", ".join(parts[:-1]) + " and " + parts[-1])


def positions_table(record: dict) -> tuple[list[str], list[list[str]], list[float], list[str]]:
    """Per injection position: activity, doses, goal and binding constraint."""
    columns = ["Position", "Activity (GBq)", "D_N normal liver of the territory (Gy)",
               "D_perf territory with its tumours (Gy)", "Normal liver (mL)", "Goal",
               "Binding constraint"]
    rows = []
    for pos in record["positions"]:
        perfused = pos.get("perfused_dose_gy")
        rows.append([pos["name"], f"{pos['activity_gbq']:.3f}", f"{pos['normal_dose_gy']:.1f}",
                     "-" if perfused is None else f"{perfused:.1f}",
                     f"{pos['normal_volume_ml']:.1f}", goal_text(pos.get("goal")),
                     binding_text(pos, record)])
    return (columns, rows, [1.2, 0.75, 1.05, 1.05, 0.75, 1.2, 2.3],
            ["l", "r", "r", "r", "r", "l", "l"])


def tumours_table(record: dict):
    columns = ["Position", "Tumour", "Volume (mL)", "TNR", "Dose (Gy)"]
    rows = [[pos["name"], t["name"], f"{t['volume_ml']:.1f}",
             "-" if t.get("tnr") is None else f"{t['tnr']:.2f}", f"{t['dose_gy']:.1f}"]
            for pos in record["positions"] for t in pos["tumours"]]
    return columns, rows, [1.6, 1.4, 1, 0.8, 1], ["l", "l", "r", "r", "r"]


def limits_table(record: dict):
    """Every limit of the plan with its value and its citation; the applied ones marked."""
    lim = record["limits"]
    applied = {v for k, v in lim.items() if k.startswith("applied_")}
    columns = ["Limit", "Value", "Source"]
    rows = []
    for name, entry in lim.items():
        if name.startswith("applied_") or not isinstance(entry, dict):
            continue
        value = entry.get("value")
        unit = "" if name.endswith("cutoff") else " Gy"
        text = "none" if value is None else (f"{value:.0%}" if name.endswith("cutoff")
                                            else f"{value:g}{unit}")
        label = name.replace("_gy", "").replace("_", " ")
        if name in applied:
            label += " (applied)"
        rows.append([label, text, entry.get("source", "")])
    return columns, rows, [1.6, 0.6, 5.0], ["l", "r", "l"]


def overview_pairs(record: dict) -> list[tuple[str, str]]:
    nuclide = record["nuclide"]
    return [
        ("Product", record["product"]["display_name"]),
        ("Method", f"{record['method']} (dose model {record['dose_model']}); "
                   f"{nuclide['energy_per_activity_j_per_gbq']} J/GBq ({nuclide['name']}, "
                   f"half-life {nuclide.get('half_life_h', '-')} h)"),
        ("Lung shunt fraction", f"{record['lung_shunt_fraction']:.2%} "
                                f"({record['lsf_method']})"),
        ("Residual, density", f"residual {record['residual_fraction']:.1%}; tissue density "
                              f"{record['tissue_density_g_per_ml']} g/mL"),
        ("Lung mass", lung_mass_text(record)),
        *([("Imaging resolution", text)] if (text := resolution_text(record)) else []),
        ("Total activity", f"{record['total_activity_gbq']:.3f} GBq"),
        ("Lung dose", f"{record['lung_dose_gy']:.2f} Gy (cumulative "
                      f"{record['lung_dose_cumulative_gy']:.2f} Gy; limits "
                      f"{_limit(record, 'lung_single_gy')} / "
                      f"{_limit(record, 'lung_cumulative_gy')} cumulative)"),
        ("Whole liver", whole_liver_doses(record)),
        ("Plan record", f"{record['schema']}, created {record['created']}, tareplanner "
                        f"{record['software']['version']}; case SHA-256 "
                        f"{record['input_sha256'][:16]}…"),
    ]


def _limit(record: dict, key: str) -> str:
    value = (record["limits"].get(key) or {}).get("value")
    return "none" if value is None else f"{value:g} Gy"


def _interval(figure: dict | None, spec: str) -> str:
    if not figure:
        return "-"
    return f"{format(figure['low'], spec)} – {format(figure['high'], spec)}"


def uncertainty_table(record: dict):
    """95 % intervals of activity and doses per position and tumour, main contributors."""
    u = record.get("uncertainty")
    if not u:
        return None
    f = u["figures"]
    columns = ["Position / figure", "Planned", f"{u['coverage']:.0%} interval", "Unit",
               "Main contributors to this figure's interval"]
    rows = []
    for pos in record["positions"]:
        name = pos["name"]
        for label, key, planned, spec in (
                ("activity", f"{name}: activity", pos["activity_gbq"], ".3f"),
                ("normal-liver dose", f"{name}: normal liver", pos["normal_dose_gy"], ".1f")):
            figure = f.get(key) or {}
            rows.append([f"{name}: {label}", format(planned, spec), _interval(figure, spec),
                         figure.get("unit", ""), ", ".join(
                             c["input"] for c in figure.get("main_contributors", [])[:2])])
        for t in pos["tumours"]:
            figure = f.get(f"{name}/{t['name']}") or {}
            rows.append([f"{name}: tumour {t['name']} dose", f"{t['dose_gy']:.1f}",
                         _interval(figure, ".1f"), figure.get("unit", ""), ", ".join(
                             c["input"] for c in figure.get("main_contributors", [])[:2])])
    for key, planned in (("lung", record["lung_dose_gy"]),
                         ("whole liver", (record.get("whole_liver") or {}).get(
                             "whole_liver_dose_gy")),
                         ("whole normal liver", (record.get("whole_liver") or {}).get(
                             "whole_normal_liver_dose_gy"))):
        if key in f:
            rows.append([f"{key} dose", "-" if planned is None else f"{planned:.1f}",
                         _interval(f[key], ".1f"), f[key].get("unit", ""), ", ".join(
                             c["input"] for c in f[key].get("main_contributors", [])[:2])])
    return columns, rows, [2.0, 0.8, 1.2, 0.5, 2.6], ["l", "r", "r", "l", "l"]


def exceedance_table(record: dict):
    u = record.get("uncertainty")
    if not u:
        return None
    columns = ["Limit", "Limit (Gy)", "P(exceeded) at the planned activities"]
    rows = [[name, f"{e['limit_gy']:g}", f"{e['probability']:.1%}"]
            for name, e in u["exceedance"].items()]
    rows.append(["any limit", "", f"{u['probability_any_limit_exceeded']:.1%}"])
    return columns, rows, [3, 1, 2.5], ["l", "r", "r"]


def at_exceedance_table(record: dict):
    best = (record.get("uncertainty") or {}).get("at_exceedance_probability")
    if not best:
        return None
    planned = {p["name"]: p["activity_gbq"] for p in record["positions"]}
    columns = ["Position", "Planned (GBq)",
               f"Highest with P(any limit exceeded) ≤ {best['probability']:.0%} (GBq)"]
    rows = [[n, f"{planned.get(n, float('nan')):.3f}", f"{a:.3f}"]
            for n, a in best["activities_gbq"].items()]
    return columns, rows, [2, 1.2, 3], ["l", "r", "r"]


def ordering_table(record: dict):
    """What to order and dispense per position, times in the treatment's time zone."""
    ordering = record["ordering"]
    zone = treatment_zone(record)
    tz = zone_name(zone)
    columns = ["Position", "Prescribed (GBq)", "Order", f"Calibration ({tz})",
               "At treatment (GBq)", "Notes"]
    rows = []
    for e in ordering["positions"]:
        notes = []
        if "vials_nominal_gbq" in e:
            order = " + ".join(f"{v:g}" for v in e["vials_nominal_gbq"]) + " GBq vial"
            at = f"{e['activity_at_treatment_gbq']:.3f}"
            deviation = e.get("deviation_fraction", e.get("excess_fraction"))
            if e.get("within_tolerance") is False:
                order = "NO VIAL FITS (nearest " + order + ")"
            notes.append(f"{deviation:+.1%} of the prescription at treatment"
                         + (f" (tolerance ±{ordering['activity_tolerance_fraction'] * 100:g} %, "
                            f"hours {ordering['working_hours']})"
                            if "working_hours" in ordering else ""))
            for alt in e.get("alternatives", [])[:3]:
                notes.append(f"or {alt['kind']}: "
                             + " + ".join(f"{v:g}" for v in alt["vials_nominal_gbq"])
                             + f" GBq cal. {local_time(alt['calibration_time'], zone)}, treat "
                             f"{local_time(alt['treatment_time'], zone)} "
                             f"({alt['deviation_fraction']:+.1%})")
            if e.get("prescribed_activity_time"):
                notes.append("holds the prescribed activity at "
                             f"{local_time(e['prescribed_activity_time'], zone)}")
            spheres = e.get("spheres_estimate")
            if spheres:
                notes.append(f"about {spheres[0] / 1e6:.1f}–{spheres[-1] / 1e6:.1f} million "
                             "spheres")
        elif "volume_ml" in e:
            order = f"draw {e['volume_ml']:.2f} mL"
            at = f"{e.get('vial_activity_at_treatment_gbq', float('nan')):.3f} (vial)"
            notes.append(f"{e['fraction_of_vial']:.1%} of the vial")
        else:
            order = f"{e['activity_gbq']:.3f} GBq"
            at = f"{e['activity_gbq']:.3f}"
        rows.append([e["name"], f"{e['activity_gbq']:.3f}", order,
                     local_time(e.get("calibration_time"), zone), at, "; ".join(notes)])
    return columns, rows, [1.3, 0.9, 1.1, 1.2, 0.9, 2.6], ["l", "r", "l", "l", "r", "l"]


def guideline_table(record: dict):
    """The guideline check: every applicable row, the plan's value, met or not and by how
    much, hard limit or recommendation, its source and level of evidence."""
    check = record.get("guideline_check") or {}
    columns = ["Kind", "Where", "Quantity", "Plan", "Threshold", "Result", "Source (LOE)"]
    rows = []
    for c in check.get("rows", []):
        unit = c["unit"]
        value = "-" if c["plan_value"] is None else (
            f"{c['plan_value']:.1%}" if unit == "fraction" else f"{c['plan_value']:.1f} Gy")
        by = "" if c["margin"] is None else (
            f" by {abs(c['margin']):.1%}" if unit == "fraction" else
            f" by {abs(c['margin']):.1f} Gy")
        result = c["status"] + by + (f" ({c['reason']})" if c.get("reason") else "")
        kind = {"hard": "hard", "regulatory-report": "regulatory report"}.get(
            c["kind"], "recommendation")
        source = f"{c['source']} (LOE {c['loe']})"
        if c.get("site_change"):
            change = c["site_change"]
            source += "; site: " + "; ".join(
                ([f"{change['value_from']:g} -> {change['value_to']:g}, "
                  f"{change['value_reason']}"] if "value_to" in change else [])
                + ([f"promoted to hard, {change['promote_reason']}"]
                   if "kind_to" in change else []))
        rows.append([kind, c["where"], c["quantity_label"], value, c["threshold"], result,
                     source])
    return columns, rows, [1.35, 0.95, 1.0, 0.6, 0.9, 1.3, 2.85], \
        ["l", "l", "l", "r", "l", "l", "l"]


def site_change_lines(record: dict) -> list[str]:
    """Every guideline row the site promoted or changed, with its reason."""
    out = []
    for c in (record.get("guideline_check") or {}).get("site_changes", []):
        out.append(f"Site change, {c['row']}: " + "; ".join(site_change_parts(c))
                   + (f" [{c['site']}]" if c.get("site") else ""))
    return out


def scenario_text(record: dict) -> str:
    """The scenario of a plan in words (or that none was given)."""
    s = (record.get("guideline_check") or {}).get("scenario")
    if not s:
        return ("No scenario given (treatment intent, histology, liver function): only the "
                "hard limits and the recommendations of every scenario are checked.")
    bili = "not given" if s["bilirubin_mg_dl"] is None else f"{s['bilirubin_mg_dl']:g} mg/dL"
    return (f"Treatment intent {s['intent']}; histology {s['histology']}; total bilirubin "
            f"{bili}; compromised liver {'yes' if s['liver_compromised'] else 'no'}; prior "
            f"treatment {'yes' if s['prior_treatment'] else 'no'}"
            + ("; more favourable liver function (EANM 2022 Table 4 footnote ***)"
               if s.get("favourable_liver_function") else "")
            + ". Recommendations are checked and never scale the plan; hard limits bind it; "
            "regulatory reporting criteria are shown, never dose limits.")


def violations_rows(record: dict) -> list[str]:
    rows = [f"{p['name']}: {v['limit']} {v['dose_gy']:.1f} Gy > {v['limit_gy']:g} Gy"
            + (f" ({short_source(v['source'])})" if v.get("source") else "")
            for p in record["positions"] for v in p["violations"]]
    rows += [f"{v['limit']} {v['dose_gy']:.1f} Gy > {v['limit_gy']:g} Gy"
             + (f" ({short_source(v['source'])})" if v.get("source") else "")
             for v in record["violations"]]
    return rows


def warnings_table(warnings: list[dict]):
    columns = ["Warning", "Message"]
    rows = [[w["code"], w["message"]] for w in warnings]
    return columns, rows, [2.1, 5.1], ["l", "l"]


def directive_tables(directive: dict, zone: tzinfo):
    """The written directive: one row per treatment site, then its changes."""
    columns = ["Treatment site", "Prescribed activity (GBq)",
               "D_N normal liver of the territory (Gy)",
               "D_perf territory with its tumours (Gy)", "Tumours (Gy)", "Limited by"]
    rows = []
    for p in directive["positions"]:
        doses = p["planned_doses_gy"]
        rows.append([p["treatment_site"], f"{p['prescribed_activity_gbq']:.3f}",
                     f"{doses['normal_liver']:.1f}",
                     "-" if doses.get("perfused") is None else f"{doses['perfused']:.1f}",
                     ", ".join(f"{k} {v:.0f}" for k, v in doses["tumours"].items()) or "-",
                     p.get("limited_by") or "-"])
    sites = (columns, rows, [1.4, 1.0, 1.1, 1.1, 1.6, 1.2], ["l", "r", "r", "r", "l", "l"])
    changes = None
    if directive.get("changes"):
        changes = (["When", "Site", "From (GBq)", "To (GBq)", "By", "Reason"],
                   [[local_time(c["when"], zone), c["treatment_site"], f"{c['from']:.3f}",
                     f"{c['to']:.3f}", c["by"], c["reason"]] for c in directive["changes"]],
                   [1.2, 1.2, 0.7, 0.7, 1.2, 2.4], ["l", "l", "r", "r", "l", "l"])
    return sites, changes


def administration_tables(record: dict, zone: tzinfo):
    """Dose-calibrator readings per site and the delivered activity against the directive."""
    readings = (["Site", "Reading", "Activity (GBq)", f"Time ({zone_name(zone)})"], [], [1.6, 1.4, 1.1, 1.6],
                ["l", "l", "r", "l"])
    for r in record["readings"]:
        for kind in ("vial", "residual"):
            for item in r.get(kind) or []:
                readings[1].append([r["treatment_site"], kind, f"{item['activity_gbq']:.4f}",
                                    local_time(item["time"], zone)])
    columns = ["Site", f"Administered ({zone_name(zone)})", "Vial at adm. (GBq)",
               "Residual (GBq)", "Delivered (GBq)", "Prescribed (GBq)", "Deviation",
               "Medical event"]
    rows, flags = [], []
    for s in record["sites"]:
        rows.append([s["treatment_site"], local_time(s["administration_time"], zone),
                     f"{s['vial_at_administration_gbq']:.3f}",
                     f"{s['residual_at_administration_gbq']:.3f} "
                     f"({s['residual_fraction']:.1%})",
                     f"{s['delivered_activity_gbq']:.3f}", f"{s['prescribed_activity_gbq']:.3f}",
                     f"{s['deviation_fraction']:+.1%}", "YES" if s["medical_event"] else "no"])
        flags.append(bool(s["medical_event"]))
    sites = (columns, rows, [1.3, 1.2, 0.9, 1.0, 0.9, 0.9, 0.8, 0.8],
             ["l", "l", "r", "r", "r", "r", "r", "l"], flags)
    return readings, sites


def plan_volumes_ml(record: dict | None) -> dict[str, float]:
    """The plan's volume of each structure the dose record names (tumours, each territory's
    normal liver, the whole liver and whole normal liver when the case has them)."""
    if not record:
        return {}
    out = {}
    for pos in record.get("positions") or []:
        out[f"normal liver ({pos['name']})"] = pos.get("normal_volume_ml")
        for t in pos.get("tumours") or []:
            out[t["name"]] = t.get("volume_ml")
    case = record.get("case") or {}
    liver = case.get("whole_liver_volume_ml")
    if isinstance(liver, (int, float)):
        out["liver"] = liver
        tumour = case.get("whole_liver_tumour_volume_ml")
        if isinstance(tumour, (int, float)):
            out["normal liver"] = liver - tumour
    return {k: v for k, v in out.items() if isinstance(v, (int, float))}


#: a structure's volume on the dose grid differing from the plan's by more than this is
#: explained under the dose-index table
VOLUME_NOTE_FRACTION = 0.01


def dose_indices_table(dose_record: dict, record: dict | None = None):
    """Dose indices of the planned dose per structure, with the plan's volume beside the
    volume on the dose grid; the fifth item explains the volumes that differ."""
    columns = ["Structure", "Volume (mL)", "Plan volume (mL)", "Mean (Gy)", "D70 (Gy)",
               "D95 (Gy)", "Max (Gy)", "BED mean (Gy)"]
    planned = plan_volumes_ml(record)
    rows, differing = [], []
    for name, r in dose_record["predictive"]["structures"].items():
        plan_ml = planned.get(name)
        volume = r.get("volume_ml")
        if plan_ml and isinstance(volume, (int, float)) and \
                abs(volume - plan_ml) > VOLUME_NOTE_FRACTION * plan_ml:
            differing.append(f"{name} {volume:.1f} mL here, {plan_ml:.1f} mL in the plan")
        rows.append([name, _num(volume, ".1f"), _num(plan_ml, ".1f"), _num(r["mean_gy"], ".1f"),
                     _num(r["D70"], ".1f"), _num(r["D95"], ".1f"), _num(r["max_gy"], ".1f"),
                     _num((r.get("bed") or {}).get("mean_gy"), ".1f")])
    note = None
    if differing:
        overlap = [w["message"] for w in (record or {}).get("warnings") or []
                   if "overlap" in w.get("code", "")]
        note = ("Volumes that differ from the plan's by more than "
                f"{VOLUME_NOTE_FRACTION:.0%}: " + "; ".join(differing) + ". The plan's "
                "volumes are measured on the SPECT grid, where a voxel in two overlapping "
                "territories counts in each; the dose is computed on the CT grid from the "
                "saved territory label map, which gives such a voxel to one territory only"
                + (f" ({'; '.join(overlap)})" if overlap else "") + ", and the label maps "
                "are resampled to the CT grid. Doses here are means over these volumes.")
    return (columns, rows, [2.0, 0.8, 0.8, 0.7, 0.7, 0.7, 0.7, 0.9], ["l"] + ["r"] * 7,
            note)


def voxel_plan_table(dose_record: dict):
    """The voxel plan (``tareplanner dose --voxel-plan``): activity per position and the
    mean dose of every structure; None when the dose folder holds none."""
    vp = dose_record.get("voxel_plan")
    if not isinstance(vp, dict) or not isinstance(vp.get("activities_gbq"), dict):
        return None
    rows = [[name, f"{a:.3f}"] for name, a in vp["activities_gbq"].items()]
    fractions = vp.get("tumour_goal_fractions") or {}
    structures = vp.get("structures") or {}
    goal_rows = [[name, _num(r.get("mean_gy"), ".1f"), _num(r.get("D70"), ".1f"),
                  f"{fractions[name]:.0%}" if name in fractions else "-"]
                 for name, r in structures.items() if isinstance(r, dict)] or \
        [[t, "-", "-", f"{f:.0%}"] for t, f in fractions.items()]
    return ((["Position", "Voxel-plan activity (GBq)"], rows, [2, 1.2], ["l", "r"]),
            (["Structure", "Mean (Gy)", "D70 (Gy)", "Share of its goal reached"], goal_rows,
             [2, 1, 1, 1.2], ["l", "r", "r", "r"]),
            vp)


def comparison_table(dose_record: dict):
    if "comparison" not in dose_record:
        return None
    columns = ["Structure", "Planned mean (Gy)", "Delivered mean (Gy)", "Change"]
    rows = []
    for name, c in dose_record["comparison"].items():
        m = c.get("mean_gy")
        if m:
            rows.append([name, f"{m['planned']:.1f}", f"{m['delivered']:.1f}",
                         f"{m['relative']:+.1%}" if m["relative"] is not None else "-"])
    return columns, rows, [2.4, 1.2, 1.2, 1], ["l", "r", "r", "r"]


def _num(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)
