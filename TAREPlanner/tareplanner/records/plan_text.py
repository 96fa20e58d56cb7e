"""A plain-text summary of a plan record, for the terminal and for a text report."""

from __future__ import annotations

from pathlib import Path

from ..guidelines import site_change_parts


def _fmt(value, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


#: the limits that can hold a position's activity back: the plan's code, the words, the key
#: of record["limits"] holding its value (None: the applied one, named in record["limits"])
LIMITS = (("normal-liver-limit", "normal-liver limit", None),
          ("lung-limit", "lung limit", "lung_single_gy"),
          ("lung-cumulative-limit", "cumulative lung limit", "lung_cumulative_gy"),
          ("whole-liver-limit", "whole-liver limit", "whole_liver_gy"),
          ("whole-normal-liver-limit", "whole-normal-liver limit", None))
#: a dose within this fraction of a limit stands at it (the solver scales to it exactly)
AT_LIMIT_RTOL = 1e-6


def limit_dose(record: dict, pos: dict, code: str) -> tuple[float | None, dict | None]:
    """The dose a limit bounds and the limit's entry of record["limits"]."""
    lim = record["limits"]
    whole = record.get("whole_liver") or {}
    key = dict((c, k) for c, _, k in LIMITS)[code]
    if code == "normal-liver-limit":
        key, dose = lim.get("applied_normal_liver"), pos.get("normal_dose_gy")
    elif code == "whole-normal-liver-limit":
        key = lim.get("applied_whole_normal_liver") or "whole_normal_liver_gy"
        dose = whole.get("whole_normal_liver_dose_gy") if whole.get("checked") else None
    elif code == "whole-liver-limit":
        dose = whole.get("whole_liver_dose_gy") if whole.get("checked") else None
    elif code == "lung-limit":
        dose = record.get("lung_dose_gy")
    else:
        dose = record.get("lung_dose_cumulative_gy")
    entry = lim.get(key) if key else None
    return dose, entry if isinstance(entry, dict) else None


def binding_limits(pos: dict, record: dict) -> list[str]:
    """The codes of every limit a position's planned activity stands at (several can bind
    at once: the single and the cumulative lung limit after an earlier treatment, the whole
    liver and the whole normal liver); [] when its goal sets the activity, and for an
    activity given as such or by the BSA method (never scaled: a limit it exceeds is a
    violation)."""
    goal = pos.get("goal") or {}
    if "bsa" in goal or "activity_gbq" in goal:
        return []
    found = []
    for code, _, _ in LIMITS:
        dose, entry = limit_dose(record, pos, code)
        value = entry.get("value") if entry else None
        if dose is not None and value is not None and \
                abs(dose - value) <= AT_LIMIT_RTOL * max(abs(value), 1.0):
            found.append(code)
    solver = pos.get("limited_by")
    if solver and solver != "goal" and solver not in found:  # the solver's, whatever the
        found.append(solver)                                   # rounding of the record
    return found


def _joined(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def limited_by_text(pos: dict, record: dict) -> str:
    """What sets a position's activity, in a few words: 'goal', the binding limits
    ('lung limit and cumulative lung limit'), or for the BSA method 'BSA formula' (with
    'and LSF reduction' when the lung shunt reduced it)."""
    if "bsa" in (pos.get("goal") or {}):
        factor = (pos.get("bsa") or {}).get("lsf_factor", 1.0)
        return "BSA formula" + (" and LSF reduction" if factor < 1 else "")
    names = dict((c, w) for c, w, _ in LIMITS)
    codes = binding_limits(pos, record)
    return _joined([names.get(c, c.replace("-", " ")) for c in codes]) if codes else "goal"


def plan_summary(record: dict) -> str:
    """Readable table of a ``tareplanner.plan/1`` record."""
    lines = []
    product = record["product"]["display_name"]
    lines.append(f"TAREPlanner plan  ({record['schema']}, tareplanner "
                 f"{record['software']['version']})")
    if record.get("case_id") or record.get("patient_id"):
        lines.append(f"case {record.get('case_id') or '-'}   patient "
                     f"{record.get('patient_id') or '-'}")
    lines.append(f"product  {product}")
    lines.append(f"method   {record['method']} (dose model {record['dose_model']}); "
                 f"CF {record['nuclide']['energy_per_activity_j_per_gbq']} J/GBq "
                 f"({record['nuclide']['name']})")
    lines.append(f"LSF      {record['lung_shunt_fraction']:.2%} ({record['lsf_method']}); "
                 f"residual {record['residual_fraction']:.1%}; density "
                 f"{record['tissue_density_g_per_ml']} g/mL")
    lines.append(f"lung mass {lung_mass_text(record)}")
    if (resolution := resolution_text(record)) is not None:
        lines.append(f"resolution {resolution} (partial-volume correction of TNR and LSF)")
    lim = record["limits"]
    normal_key = lim["applied_normal_liver"]
    lines.append(f"limits   normal liver {_fmt(lim[normal_key]['value'], 'g')} Gy, lung "
                 f"{_fmt(lim['lung_single_gy']['value'], 'g')} Gy single / "
                 f"{_fmt(lim['lung_cumulative_gy']['value'], 'g')} Gy cumulative  "
                 f"[{record['limits_source']}]")
    lines.append("")
    header = (f"{'position':<20} {'goal':<22} {'A [GBq]':>8} {'D_N [Gy]':>9} "
              f"{'D_perf [Gy]':>11}  limited by")
    lines.append(header)
    rule = len(lines)
    lines.append("")
    for pos in record["positions"]:
        (goal_kind, goal_value), = pos["goal"].items()
        goal = goal_kind if goal_value is True else f"{goal_kind}={goal_value:g}"
        lines.append(f"{pos['name'][:20]:<20} {goal[:22]:<22} {pos['activity_gbq']:>8.3f} "
                     f"{pos['normal_dose_gy']:>9.1f} {pos['perfused_dose_gy']:>11.1f}  "
                     f"{limited_by_text(pos, record)}")
        for t in pos["tumours"]:
            tnr = "-" if t["tnr"] is None else f"{t['tnr']:g}"
            lines.append(f"    tumour {t['name'][:16]:<16} {t['volume_ml']:>8.1f} mL  TNR "
                         f"{tnr:>5}  D_T {t['dose_gy']:>7.1f} Gy")
    lines[rule] = "-" * max(len(line) for line in lines[rule - 1:])
    lines.append("")
    lines.append(f"total activity {record['total_activity_gbq']:.3f} GBq; lung dose "
                 f"{record['lung_dose_gy']:.2f} Gy (cumulative "
                 f"{record['lung_dose_cumulative_gy']:.2f} Gy)")
    lines.append(whole_liver_text(record))
    lines += uncertainty_lines(record)
    lines += guideline_lines(record)
    if record.get("dose_response"):     # its module imports scipy.stats (a second or more)
        from .response_record import response_lines
        lines += response_lines(record)
    lines += ordering_lines(record)
    if record["violations"] or any(p["violations"] for p in record["positions"]):
        lines.append("VIOLATIONS:")
        for pos in record["positions"]:
            for v in pos["violations"]:
                lines.append(f"    {pos['name']}: {v['limit']} {v['dose_gy']:.1f} Gy > "
                             f"{v['limit_gy']:g} Gy")
        for v in record["violations"]:
            lines.append(f"    {v['limit']} {v['dose_gy']:.1f} Gy > {v['limit_gy']:g} Gy")
    if record["warnings"]:
        lines.append("warnings:")
        for w in record["warnings"]:
            lines.append(f"    [{w['code']}] {w['message']}")
    return "\n".join(lines) + "\n"


def _interval(figure: dict, spec: str = ".1f") -> str:
    return f"{format(figure['low'], spec)}-{format(figure['high'], spec)} {figure['unit']}"


def uncertainty_lines(record: dict) -> list[str]:
    """The plan's 95 % intervals, exceedance probabilities, main contributors and the
    activities at the stated exceedance probability, as text lines."""
    u = record.get("uncertainty")
    if not u:
        return []
    f = u["figures"]
    lines = [f"uncertainty ({u['samples']} Monte Carlo samples; {u['coverage']:.0%} intervals; "
             "input uncertainties and sources in the record):"]
    for pos in record["positions"]:
        name = pos["name"]
        activity, normal = f[name + ": activity"], f[name + ": normal liver"]
        parts = [f"A {_interval(activity, '.2f')}", f"normal liver {_interval(normal)}"]
        parts += [t["name"] + " " + _interval(f[name + "/" + t["name"]])
                  for t in pos["tumours"]]
        lines.append(f"    {name}: " + "; ".join(parts))
        contributors = [f"to the {label}: " + ", ".join(
            c["input"] for c in figure["main_contributors"][:2])
            for label, figure in (("activity", activity), ("normal-liver dose", normal))
            if figure.get("main_contributors")]
        if contributors:
            lines.append("        main contributors " + "; ".join(contributors))
    counting = counting_line(record)
    if counting:
        lines.append(counting)
    whole = [f"lung {_interval(f['lung'])}"]
    whole += [f"{k} {_interval(f[k])}" for k in ("whole liver", "whole normal liver") if k in f]
    lines.append("    " + "; ".join(whole))
    probable = [f"{n} {e['probability']:.0%}" for n, e in u["exceedance"].items()
                if e["probability"] > 0]
    lines.append("    P(limit exceeded at the planned activities): "
                 + (", ".join(probable) if probable else "none in any sample")
                 + f"; any limit {u['probability_any_limit_exceeded']:.0%}")
    best = u.get("at_exceedance_probability")
    if best:
        acts = ", ".join(f"{n} {a:.3f} GBq" for n, a in best["activities_gbq"].items())
        lines.append(f"    highest activities with P(any limit exceeded) <= "
                     f"{best['probability']:.0%}: x{best['scale_factor']:.3f} ({acts})")
    return lines


def mean_dose_words(pvc: dict) -> str:
    """The post-treatment structure mean doses as imaged -> corrected, with the corrected
    mean's reconstruction noise (1 SD, from the camera file's background variability) where
    the camera file measured it."""
    def one(name: str, m: dict) -> str:
        noise = (f" +/- {m['noise_sd_gy']:.1f}" if m.get("noise_sd_gy") is not None else "")
        return f"{name} {m['uncorrected_gy']:.1f} -> {m['corrected_gy']:.1f}{noise}"
    means = "; ".join(one(n, m) for n, m in (pvc.get("mean_dose_gy") or {}).items())
    noted = any(m.get("noise_sd_gy") is not None
                for m in (pvc.get("mean_dose_gy") or {}).values())
    return (f"mean dose (Gy) as imaged -> corrected{' +/- noise (1 SD)' if noted else ''}: "
            f"{means}" + ("" if noted else " (reconstruction noise not measured: no camera "
                                              "file with a background variability)"))


def basis_label(basis: str) -> str:
    """A counting basis's words before its explanation in brackets."""
    return basis.split(" (")[0]


def counting_line(record: dict) -> str | None:
    """The TNRs' and LSF's relative SDs and what their counting part stands for (the camera
    file's measured background variability, or the Poisson statistics of the image's counts:
    the case's ``uncertainty.counting_basis``) when the case measured them; None for values
    entered by hand or defaults."""
    basis = ((record.get("case") or {}).get("uncertainty") or {}).get("counting_basis")
    inputs = (record.get("uncertainty") or {}).get("inputs") or {}
    tnr, lsf = inputs.get("tnr_relative_sd") or {}, inputs.get("lsf_relative_sd") or {}
    if not basis or not any(str(s.get("source", "")).startswith("case") for s in (tnr, lsf)):
        return None
    label = basis_label(basis)
    parts = ([f"{k} {v:.1%}" for k, v in sorted(tnr["value"].items())]
             if isinstance(tnr.get("value"), dict) else [])
    if isinstance(lsf.get("value"), (int, float)):
        parts.append(f"LSF {lsf['value']:.1%}")
    caveat = ("; a reconstruction's noise is larger: give a camera file with its background "
              "variability" if label.startswith("Poisson") else "")
    return f"    relative SD of TNR and LSF: {', '.join(parts)} (counting: {label}{caveat})"


def resolution_text(record: dict) -> str | None:
    """The emission image's resolution the TNRs and LSF were corrected with: assumed (the
    default, its value and source) or calibrated (camera file); None without one."""
    res = ((record.get("case") or {}).get("measurement") or {}).get("resolution")
    if not res:
        return None
    unc = ((record.get("case") or {}).get("uncertainty") or {}).get("resolution") or {}
    spread = (f"; +/- {unc['half_range_mm']:g} mm in the uncertainty"
              if "half_range_mm" in unc else
              f"; sd {unc['sd_mm']:.2f} mm in the uncertainty"
              + (f", the {unc['sd_basis']}" if unc.get("sd_basis") else "")
              if "sd_mm" in unc else "")
    if res.get("assumed"):
        return (f"ASSUMED {res['fwhm_mm']:g} mm FWHM ({res.get('chosen_by')}; not measured "
                f"for this camera{spread})")
    return f"{res['fwhm_mm']:.3g} mm FWHM ({res.get('chosen_by')}{spread})"


def lung_mass_text(record: dict) -> str:
    """The lung mass of a plan and where it came from, in words."""
    mass = record.get("lung_mass")
    if mass is None:  # records written before the lung mass was recorded with its source
        return f"{record['lung_mass_kg']:g} kg (source not recorded)"
    text = f"{mass['kg']:.3g} kg: {mass['note']}"
    if mass["ct_kg"] is not None and mass["source"] != "ct-densitovolumetry":
        text += f" (CT mass {mass['ct_kg']:.3g} kg)"
    return text


def _whole_liver_parts(record: dict) -> tuple[str, str] | str:
    """(whole liver, whole normal liver) mean doses with their limits, or why unchecked."""
    whole = record.get("whole_liver")
    if whole is None or not whole["checked"]:
        return f"not checked ({whole['reason'] if whole else 'not recorded'})"
    lim = whole["limits"]

    def against(dose, limit):
        return f"{dose:.1f} Gy" + (f" (limit {limit['value']:g} Gy)"
                                   if limit["value"] is not None else
                                   " (no hard limit; see the guideline check)")
    return (against(whole["whole_liver_dose_gy"], lim["whole_liver_gy"]),
            against(whole["whole_normal_liver_dose_gy"], lim[whole["applied_whole_normal_liver"]]))


def whole_liver_text(record: dict) -> str:
    """Whole-liver and whole-normal-liver mean doses against their limits, in words."""
    parts = _whole_liver_parts(record)
    if isinstance(parts, str):
        return f"whole liver: {parts}"
    return f"whole liver {parts[0]}; whole normal liver {parts[1]}"


def whole_liver_doses(record: dict) -> str:
    """The mean doses of the whole liver and of its normal part against their limits, for a
    line already labelled 'whole liver'."""
    parts = _whole_liver_parts(record)
    if isinstance(parts, str):
        return parts
    return f"mean {parts[0]}; normal liver, tumours excluded, mean {parts[1]}"


def _psf_words(res: dict) -> str:
    """The fitted PSF: one Gaussian's FWHM, or each component's FWHM with its weight."""
    comps = res.get("psf_components") or []
    sd = res.get("fwhm_sd_mm")
    spread = f" +/- {sd:.2f}" if isinstance(sd, (int, float)) else ""
    basis = _sd_basis_words(res) if spread else ""
    if len(comps) > 1:
        return (" + ".join(f"{w:.0%} {f:.1f} mm" for w, f in comps)
                + f" (core FWHM {res['fwhm_mm']:.2f}{spread} mm{', ' + basis if basis else ''})")
    return f"{res['fwhm_mm']:.2f}{spread} mm FWHM{f' ({basis})' if basis else ''}"


def _sd_basis_words(res: dict) -> str:
    """What a camera file's +/- is: its fit uncertainty, or (recovery misfit) the spread of
    the spheres' equivalent FWHMs, with the fit's beside it; nothing for a resolution read
    before the basis was recorded."""
    basis = res.get("fwhm_sd_basis")
    if not basis:
        return ""
    fit = res.get("fwhm_fit_sd_mm")
    if res.get("fwhm_sd_mm") != fit and isinstance(fit, (int, float)):
        return f"+/- the {basis}; fit uncertainty {fit:.2f} mm"
    return f"+/- the {basis}"


def resolution_words(res: dict) -> str:
    """An emission image's resolution as the panels show it: the camera file (its name, the
    fitted FWHM with its uncertainty, the reconstruction, the calibration date), or ASSUMED
    with its value and where it comes from."""
    camera = res.get("camera")
    if isinstance(camera, dict) and camera.get("file"):
        label = Path(str(camera["file"])).name
        if camera.get("name"):
            label += f" ({camera['name']})"
        return (f"from the camera file {label}: {camera.get('modality')} "
                f"{camera.get('nuclide')}, fitted {_psf_words(res)}, reconstruction "
                f"{camera.get('reconstruction') or 'not named'}, calibrated "
                f"{camera.get('date') or 'on an unrecorded date'}")
    if res.get("assumed"):
        return (f"ASSUMED {res['fwhm_mm']:g} mm FWHM ({res.get('chosen_by', 'default')}); "
                "not measured for this camera: calibrate it (tareplanner calibrate) and give "
                "its camera file")
    return f"{res['fwhm_mm']:g} mm FWHM ({res.get('chosen_by', 'given')})"


def measurement_summary(measurement: dict) -> str:
    """Readable summary of a measurement record: LSF, volumes, TNR per position, warnings;
    with a partial-volume correction the corrected values and, beside them, the measured
    (uncorrected) ones."""
    lsf = measurement["lung_shunt"]
    pvc = measurement.get("partial_volume_correction") or {"applied": False}
    raw = measurement.get("lung_shunt_uncorrected", lsf)
    if pvc["applied"]:
        res = {"fwhm_mm": pvc["fwhm_mm"], "assumed": pvc.get("assumed"),
               **(pvc.get("resolution") or {})}
        head = ("partial-volume corrected (geometric transfer matrix), SPECT resolution "
                + resolution_words(res))
        lsf_note = f"; uncorrected {raw['lung_shunt_fraction']:.2%}"
    else:
        head, lsf_note = "not corrected for partial volume", ""
    lines = [head,
             f"LSF {lsf['lung_shunt_fraction']:.2%} ({lsf['method']}{lsf_note}); lungs "
             f"{lsf['lungs_in_fov_fraction']:.1%} in the SPECT field of view; lung mass (CT) "
             f"{measurement['lung_mass_kg_ct']:.2f} kg",
             f"    counts: lungs {raw['lung_counts']:.4g} in {raw['lung_volume_used_ml']:.0f} mL,"
             f" liver {raw['liver_counts']:.4g} (measured); outside liver and lungs "
             f"{measurement['counts_outside_liver_lungs_fraction']:.1%} of all",
             f"liver {measurement['volumes_ml']['liver']:.0f} mL, lungs "
             f"{measurement['volumes_ml']['lungs']:.0f} mL"]

    noise = (pvc.get("noise") or {}) if pvc.get("applied") else {}
    for pos in measurement["positions"]:
        normal = pos["normal_counts"]
        lines.append(f"{pos['name']}: perfused {pos['perfused_volume_ml']:.0f} mL, normal "
                     f"{pos['normal_volume_ml']:.0f} mL ({normal['counts_per_ml']:.4g} counts/mL"
                     + (f", uncorrected {normal['counts_per_ml_uncorrected']:.4g}"
                        if pvc["applied"] and "counts_per_ml_uncorrected" in normal else "")
                     + ")")
        for t in pos["tumours"]:
            u = noise.get("tnr_relative_sd", {}).get(t["name"])
            lines.append(f"    {t['name']}: {t['volume_ml']:.1f} mL, {t['counts_per_ml']:.4g} "
                         f"counts/mL, TNR {t['tnr']:.2f}"
                         + (f" +/- {u:.1%} (reconstruction noise)" if u is not None else "")
                         + (f" (uncorrected {t['counts_per_ml_uncorrected']:.4g} counts/mL, "
                            f"TNR {t['tnr_uncorrected']:.2f})"
                            if pvc["applied"] and "tnr_uncorrected" in t else ""))
    if noise:
        lines.append(f"reconstruction noise (1 SD) from {basis_label(noise['basis'])}: "
                     + ", ".join(f"{n} {u:.1%}" for n, u in sorted(
                         noise.get("tnr_relative_sd", {}).items()) if u is not None)
                     + (f", LSF {noise['lsf_relative_sd']:.1%}"
                        if noise.get("lsf_relative_sd") is not None else ""))
    else:
        lines.append("reconstruction noise not measured (no camera file with a background "
                     "variability): " + (
                         "the TNRs' and LSF's counting uncertainty is the Poisson statistics "
                         "of the image's counts, which understates a reconstruction's"
                         if measurement.get("spect", {}).get("units") == "counts" else
                         "no counting uncertainty for an image in Bq/mL"))
    for w in measurement["warnings"]:
        lines.append(f"warning [{w['code']}] {w['message']}")
    return "\n".join(lines) + "\n"


def _value_text(value, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if unit == "fraction" else f"{value:.1f} {unit}"


def guideline_lines(record: dict) -> list[str]:
    """The guideline check: the scenario, every applicable row with the plan's value, met or
    not and by how much, its kind, source and level of evidence; the goal suggestions and
    the site's changes."""
    check = record.get("guideline_check")
    if not check:
        return []
    s = check.get("scenario")
    if s:
        bili = ("not given" if s["bilirubin_mg_dl"] is None
                else f"{s['bilirubin_mg_dl']:g} mg/dL")
        head = (f"guideline check ({s['intent']}, {s['histology']}, bilirubin {bili}, "
                f"compromised liver {'yes' if s['liver_compromised'] else 'no'}, prior "
                f"treatment {'yes' if s['prior_treatment'] else 'no'}"
                + (", more favourable liver function" if s.get("favourable_liver_function")
                   else "") + "):")
    else:
        head = ("guideline check (NO SCENARIO GIVEN: hard limits and the recommendations "
                "of every scenario only):")
    lines = [head]
    for c in check["rows"]:
        status = c["status"].upper() if c["status"] == "not met" else c["status"]
        by = "" if c["margin"] is None else (
            f" by {abs(c['margin']):.1%}" if c["unit"] == "fraction"
            else f" by {abs(c['margin']):.1f} {c['unit']}")
        kind = {"hard": "HARD", "regulatory-report": "REG."}.get(c["kind"], "rec.")
        lines.append(f"    {kind:<4} {c['where'][:22]:<22} {c['quantity_label'][:22]:<22} "
                     f"{_value_text(c['plan_value'], c['unit']):>10} vs {c['threshold']:<14} "
                     f"{status}{by}" + (f" ({c['reason']})" if c.get("reason") else ""))
        lines.append(f"         {c['source']}; LOE {c['loe']}"
                     + (f"; {_site_text(c['site_change'])}" if c.get("site_change") else ""))
    for g in check.get("suggestions", []):
        (kind, value), = g["goal"].items()
        lines.append(f"    goal suggestion: {kind} {value:g} ({g['printed']}"
                     + (f"; {g['condition']}" if g.get("condition") else "")
                     + f"; {g['source']}, LOE {g['loe']})")
    for change in check.get("site_changes", []):
        lines.append(f"    site change {change['row']}: {_site_text(change)}")
    return lines


def _site_text(change: dict) -> str:
    return "site " + "; ".join(site_change_parts(change))


def ordering_lines(record: dict) -> list[str]:
    """What to order for each position, in words a pharmacy can act on."""
    ordering = record["ordering"]
    lines = [f"ordering ({ordering['kind']}" + (
        f"; tolerance ±{ordering['activity_tolerance_fraction'] * 100:g} %, working hours "
        f"{ordering['working_hours']}" if "working_hours" in ordering else "") + "):"]
    for entry in ordering["positions"]:
        if "vials_nominal_gbq" in entry:
            vials = " + ".join(f"{v:g}" for v in entry["vials_nominal_gbq"])
            fits = entry.get("within_tolerance", True)
            lines.append(f"    {entry['name']}: {'ORDER' if fits else 'NO VIAL FITS; nearest'} "
                         f"{vials} GBq vial{'s' if len(entry['vials_nominal_gbq']) > 1 else ''} "
                         f"calibrated {entry['calibration_time']}: "
                         f"{entry['activity_at_treatment_gbq']:.3f} GBq at treatment "
                         f"({entry.get('deviation_fraction', entry.get('excess_fraction')):+.1%} "
                         f"of {entry['activity_gbq']:.3f} GBq)"
                         + (f"; holds the prescription exactly at "
                            f"{entry['prescribed_activity_time']}"
                            if entry.get("prescribed_activity_time") else ""))
            for alt in entry.get("alternatives", [])[:4]:
                alt_vials = " + ".join(f"{v:g}" for v in alt["vials_nominal_gbq"])
                lines.append(f"        or ({alt['kind']}): {alt_vials} GBq calibrated "
                             f"{alt['calibration_time'][:10]}, treat at {alt['treatment_time']}: "
                             f"{alt['activity_at_treatment_gbq']:.3f} GBq "
                             f"({alt['deviation_fraction']:+.1%})")
        elif "volume_ml" in entry:
            lines.append(f"    {entry['name']}: draw {entry['volume_ml']:.2f} mL "
                         f"({entry['fraction_of_vial']:.1%} of a vial holding "
                         f"{entry['vial_activity_at_treatment_gbq']:.2f} GBq at treatment)")
        elif "calibration_time" in entry:
            lines.append(f"    {entry['name']}: order {entry['activity_gbq']:.3f} GBq calibrated "
                         f"for {entry['calibration_time']}")
        else:
            lines.append(f"    {entry['name']}: {entry['activity_gbq']:.3f} GBq")
    return lines
