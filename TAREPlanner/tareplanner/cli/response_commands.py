"""``tareplanner response``: a site's own absorbed dose–response from its cohort.

``response fit`` joins the cohort's dose-index table (``tareplanner batch`` writes
``cohort_indices.csv``) with lesion response and liver toxicity and writes a
``tareplanner.response/1`` record (and, with ``--figure``, the curves as PNG);
``response synthetic`` writes a cohort drawn from a stated true dose–response (index table,
outcomes and the truth), to try the fit on a known answer.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import FieldValueError, OutputPathError
from .outputs import check_output_file

LESION_HELP = ("CSV, one row per lesion: patient_id, structure, criteria (mRECIST, RECIST, "
               "EASL), category (CR, PR, SD, PD, NE), date (YYYY-MM-DD)")
TOXICITY_HELP = ("CSV, one row per patient: patient_id, scale (CTCAE, REILD), grade (CTCAE "
                 "0-5; REILD yes/no), date (YYYY-MM-DD)")


def fit_cohort(args: argparse.Namespace) -> dict:
    """The response record of the options' cohort (no file written)."""
    from ..physics.dose_response import DoseResponseError, fit_dose_response
    from ..records.response_inputs import (INDEX_COLUMNS, LESION_COLUMNS, METRIC_COLUMNS,
                                           TOXICITY_COLUMNS, join_lesions, join_toxicity,
                                           read_table)
    from ..records.response_record import fit_part, not_fitted, response_record

    if not args.lesions and not args.toxicity:
        raise FieldValueError("--lesions", None, "lesion outcomes (--lesions), liver toxicity "
                              "(--toxicity) or both")
    responders = tuple(c.strip() for c in args.responders.split(",") if c.strip())
    if not responders or not set(responders) <= {"CR", "PR", "SD"}:
        raise FieldValueError("--responders", args.responders,
                              "a comma-separated list of CR, PR, SD (default CR,PR)")
    if not 1 <= args.toxicity_grade <= 5:
        raise FieldValueError("--toxicity-grade", args.toxicity_grade, "a CTCAE grade 1 to 5")
    indices = read_table(args.indices, "--indices", INDEX_COLUMNS)
    inputs = {"indices": {"path": indices.path, "sha256": indices.sha256},
              "lesions": None, "toxicity": None}
    method = {"phase": args.phase, "link": args.model, "coverage": 0.95,
              "software": "statsmodels GLM, binomial family",
              "dose_interval": "Fieller (delta method recorded beside it)",
              "response_definition": f"category in {', '.join(responders)} (NE left out)",
              "toxicity_definition": f"CTCAE grade >= {args.toxicity_grade}, or REILD yes",
              "tumour_metric": args.metric, "liver_metric": args.liver_metric,
              "liver_structure": args.liver_structure}
    tumour = not_fitted("no lesion outcomes given (--lesions)")
    liver = not_fitted("no liver toxicity given (--toxicity)")
    warnings = []

    def refused(exc, option):
        raise FieldValueError(option, Path(getattr(args, option[2:])).name,
                              "a cohort that can be fitted", str(exc)) from None

    if args.lesions:
        lesions = read_table(args.lesions, "--lesions", LESION_COLUMNS)
        inputs["lesions"] = {"path": lesions.path, "sha256": lesions.sha256}
        obs = join_lesions(indices, lesions, metric=args.metric, phase=args.phase,
                           responders=responders)
        try:
            fit = fit_dose_response(obs.dose_gy, obs.outcome, obs.patient, link=args.model,
                                    what="lesion response")
        except DoseResponseError as exc:
            refused(exc, "--lesions")
        tumour = fit_part(fit, metric=args.metric, column=METRIC_COLUMNS[args.metric],
                          endpoint=f"lesion response ({method['response_definition']})",
                          observations=obs, unit="lesion")
        if len(obs.counts) > 1:
            warnings.append({"code": "mixed-response-criteria",
                             "message": "lesions assessed with different criteria: "
                                        + ", ".join(f"{k} {v}" for k, v in obs.counts.items())})
    if args.toxicity:
        toxicity = read_table(args.toxicity, "--toxicity", TOXICITY_COLUMNS)
        inputs["toxicity"] = {"path": toxicity.path, "sha256": toxicity.sha256}
        obs = join_toxicity(indices, toxicity, metric=args.liver_metric, phase=args.phase,
                            structure=args.liver_structure, min_grade=args.toxicity_grade)
        try:
            fit = fit_dose_response(obs.dose_gy, obs.outcome, None, link=args.liver_model,
                                    what="liver toxicity", plateau=False)
        except DoseResponseError as exc:
            refused(exc, "--toxicity")
        liver = fit_part(fit, metric=args.liver_metric,
                         column=METRIC_COLUMNS[args.liver_metric],
                         endpoint=f"liver toxicity ({method['toxicity_definition']}) of the "
                                  f"{args.liver_structure}", observations=obs, unit="patient")
        if len(obs.counts) > 1:
            warnings.append({"code": "mixed-toxicity-scales",
                             "message": "toxicity graded on different scales: "
                                        + ", ".join(f"{k} {v}" for k, v in obs.counts.items())})
    for name, part in (("tumour", tumour), ("liver", liver)):
        warnings += [{"code": f"{name}-fit", "message": m} for m in part.get("warnings", [])]
    return response_record(inputs=inputs, method=method, tumour=tumour, liver=liver,
                           warnings=warnings)


def fit_lines(record: dict) -> list[str]:
    lines = [f"dose-response fit ({record['schema']}, inputs SHA-256 "
             f"{record['input_sha256'][:16]}...)"]
    for name, label in (("tumour", "tumour response"), ("liver", "liver toxicity")):
        part = record[name]
        if not part["fitted"]:
            lines.append(f"{label}: not fitted ({part['reason']})")
            continue
        d = {round(x["p"], 2): x for x in part["doses"]}

        def dose(x):
            bounds = (f"{x['low_gy']:.0f}-{x['high_gy']:.0f}" if x["low_gy"] is not None
                      else "unbounded")
            return f"{x['dose_gy']:.0f} Gy (95 % CI {bounds})"
        gof = part["goodness_of_fit"]
        counted = (f"{part['n']} patient(s)" if part["unit"] == "patient" else
                   f"{part['n']} lesions of {part['patients']} patient(s)")
        lines.append(f"{label}: {part['model']} on {part['metric']}, {counted}, "
                     f"{part['events']} event(s); {part['covariance_kind']}")
        lines.append(f"    D50 {dose(d[0.5])}; D80 {dose(d[0.8])}; threshold (D10) "
                     f"{dose(d[0.1])}; ignoring clusters the D50 CI would be "
                     f"{part['naive_d50']['low_gy']:.0f}-{part['naive_d50']['high_gy']:.0f} Gy"
                     if part["naive_d50"]["low_gy"] is not None and part["unit"] == "lesion"
                     else
                     f"    D50 {dose(d[0.5])}; D80 {dose(d[0.8])}")
        lines.append(f"    Hosmer-Lemeshow chi2 {gof['hosmer_lemeshow_chi2']:.2f} "
                     f"(df {gof['hosmer_lemeshow_df']}, p {gof['hosmer_lemeshow_p']:.2f}); "
                     f"deviance {gof['deviance']:.1f} on {gof['deviance_df']} df; AUC "
                     f"{gof['auc']:.2f}")
        plateau = part["plateau"]
        if plateau.get("estimated") and plateau.get("p_max_low") is not None:
            lines.append(f"    plateau p_max {plateau['p_max']:.2f} (95 % CI "
                         f"{plateau['p_max_low']:.2f}-{plateau['p_max_high']:.2f}; p "
                         f"{plateau['p_value']:.2g} against no plateau)")
        elif plateau.get("reason") and plateau["reason"] != "not requested":
            lines.append(f"    plateau: {plateau['reason']}")
        if "lyman" in part:
            lines.append(f"    Lyman: TD50 {part['lyman']['td50_gy']:.1f} Gy, m "
                         f"{part['lyman']['m']:.3f}")
    lines += [f"warning: [{w['code']}] {w['message']}" for w in record["warnings"]]
    return lines


def cmd_response_fit(args: argparse.Namespace) -> int:
    from ..records.atomic import atomic_path, write_json_atomic

    check_output_file(args.output, "-o")
    if args.figure:
        check_output_file(args.figure, "--figure")
        if Path(args.figure).resolve() == Path(args.output).resolve():
            raise OutputPathError("--figure", args.figure, "a file other than -o")
    for option in ("output", "figure"):
        path = getattr(args, option)
        if path and Path(path).exists() and not args.force:
            from ..records.atomic import OutputExistsError
            raise OutputExistsError(f"{path} exists; use --force to overwrite it")
    try:
        import statsmodels  # noqa: F401
    except ImportError:
        print("tareplanner: error: dose-response fits need statsmodels: pip install "
              "'tareplanner[response]' (plans with --response do not need it)", file=sys.stderr)
        return 1
    record = fit_cohort(args)
    if args.figure:
        from ..records.response_report import curves_figure
        figure = curves_figure(record)
        with atomic_path(args.figure, overwrite=args.force, field="--figure") as tmp:
            figure.savefig(tmp, format="png", dpi=120)
    write_json_atomic(args.output, record, overwrite=args.force, field="-o")
    if args.json:
        json.dump(record, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print("\n".join(fit_lines(record)))
        print(f"response record written to {args.output}"
              + (f", figure to {args.figure}" if args.figure else ""))
    return 0


def synthetic_tables(patients: int, lesions: int, seed: int, patient_sd: float) -> dict:
    """The text of the tables of a synthetic cohort and its truth."""
    from ..physics.dose_response import synthetic_cohort
    c = synthetic_cohort(patients, lesions, seed=seed, patient_sd_logit=patient_sd)
    ids = [f"S{i + 1:04d}" for i in range(patients)]
    index = ["patient_id,phase,structure,kind,mean_gy"]
    outcome = ["patient_id,structure,criteria,category,date"]
    for k, (p, d, r) in enumerate(zip(c.patient, c.dose_gy, c.response)):
        name = f"T{k % lesions + 1}"
        index.append(f"{ids[p]},delivered,{name},tumour,{d:.3f}")
        outcome.append(f"{ids[p]},{name},mRECIST,{'PR' if r else 'SD'},2026-03-01")
    toxicity = ["patient_id,scale,grade,date"]
    for i, (d, t) in enumerate(zip(c.liver_dose_gy, c.toxicity)):
        index.append(f"{ids[i]},delivered,normal liver,normal,{d:.3f}")
        toxicity.append(f"{ids[i]},CTCAE,{3 if t else 1},2026-03-01")
    truth = {**c.truth, "definition": "logit P(response) = slope (D - D50) + u, u ~ N(0, "
             "patient_sd_logit^2) per patient; logit P(toxicity) = ntcp_slope (D_liver - "
             "TD50); responders are written PR, non-responders SD; toxicity CTCAE 3 or 1"}
    return {"cohort_indices.csv": "\n".join(index) + "\n",
            "lesion_outcomes.csv": "\n".join(outcome) + "\n",
            "toxicity.csv": "\n".join(toxicity) + "\n",
            "truth.json": json.dumps(truth, indent=2) + "\n"}


def cmd_response_synthetic(args: argparse.Namespace) -> int:
    from ..records.atomic import atomic_folder

    if not 1 <= args.patients <= 100000:
        raise FieldValueError("--patients", args.patients, "1 to 100000 patients")
    if not 1 <= args.lesions_per_patient <= 50:
        raise FieldValueError("--lesions-per-patient", args.lesions_per_patient, "1 to 50")
    if not (0 <= args.patient_sd <= 10):
        raise FieldValueError("--patient-sd", args.patient_sd, "0 to 10 (logit scale)")
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.force:
        from ..records.atomic import OutputExistsError
        raise OutputExistsError(f"{out} exists and is not empty; use --force")
    tables = synthetic_tables(args.patients, args.lesions_per_patient, args.seed,
                              args.patient_sd)
    with atomic_folder(out) as tmp:
        for name, text in tables.items():
            (tmp / name).write_text(text, encoding="utf-8")
    lesions = args.patients * args.lesions_per_patient
    print(f"synthetic cohort of {args.patients} patient(s), {lesions}"
          f" lesion(s) written to {out} (cohort_indices.csv, lesion_outcomes.csv, toxicity.csv,"
          " truth.json)")
    return 0


def add_response_commands(sub) -> None:
    from ..records.response_inputs import METRIC_COLUMNS, PHASES

    p = sub.add_parser("response", help="a site's own absorbed dose-response: fit lesion "
                                         "response and liver toxicity against dose")
    commands = p.add_subparsers(dest="response_command", required=True)
    f = commands.add_parser("fit", help="fit the cohort's dose-response -> "
                                        "tareplanner.response/1 record")
    f.add_argument("--indices", required=True,
                   help="dose-index table (cohort_indices.csv of tareplanner batch: "
                        "patient_id, phase, structure, kind and the metric's column)")
    f.add_argument("--lesions", help=LESION_HELP)
    f.add_argument("--toxicity", help=TOXICITY_HELP)
    f.add_argument("--metric", default="mean", choices=tuple(METRIC_COLUMNS),
                   help="lesion dose metric (default: %(default)s)")
    f.add_argument("--model", default="logit", choices=("logit", "probit"),
                   help="link of the lesion response (default: %(default)s)")
    f.add_argument("--liver-metric", default="mean", choices=("mean", "bed_mean"),
                   help="normal-liver dose metric (default: %(default)s)")
    f.add_argument("--liver-model", default="probit", choices=("logit", "probit"),
                   help="liver toxicity model: probit = Lyman NTCP of the mean dose "
                        "(default: %(default)s)")
    f.add_argument("--liver-structure", default="normal liver",
                   help="structure of the index table whose dose the toxicity is fitted "
                        "against (default: %(default)s)")
    f.add_argument("--phase", default="delivered", choices=PHASES,
                   help="dose of the index table: delivered (post-treatment) or planned "
                        "(default: %(default)s)")
    f.add_argument("--responders", default="CR,PR",
                   help="categories counted as response (default: %(default)s)")
    f.add_argument("--toxicity-grade", type=int, default=3,
                   help="lowest CTCAE grade counted as toxicity (default: %(default)s)")
    f.add_argument("-o", "--output", required=True, help="response record to write (JSON)")
    f.add_argument("--figure", help="also write the curves as PNG")
    f.add_argument("--json", action="store_true", help="print the record as JSON")
    f.add_argument("--force", action="store_true", help="overwrite existing outputs")
    f.set_defaults(func=cmd_response_fit)
    s = commands.add_parser("synthetic", help="a synthetic cohort with a known true "
                                              "dose-response (tables and truth)")
    s.add_argument("--patients", type=int, default=200, help="patients (default: %(default)s)")
    s.add_argument("--lesions-per-patient", type=int, default=3,
                   help="lesions per patient (default: %(default)s)")
    s.add_argument("--patient-sd", type=float, default=1.0,
                   help="sd of the random patient effect, logit scale (default: %(default)s)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    s.add_argument("--out", required=True, help="output folder (made)")
    s.add_argument("--force", action="store_true", help="replace a non-empty output folder")
    s.set_defaults(func=cmd_response_synthetic)
