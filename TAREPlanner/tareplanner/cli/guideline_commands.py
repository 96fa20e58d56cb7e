"""``tareplanner guidelines``: the dose thresholds that hold for a case's scenario, the goals
they suggest, and the scenario written into a case.

    tareplanner guidelines --all                       every row with its source and level
    tareplanner guidelines case.json                   the rows of the case's scenario
    tareplanner guidelines case.json --intent bilobar --histology hcc --bilirubin 0.8 \\
        -o case-hcc.json                               the case with that scenario
"""

from __future__ import annotations

import argparse
import copy
import json
import sys

from .. import catalogue, guidelines as gl
from ..errors import MissingFieldError
from ..guideline_check import case_rows, facts_for
from ..records.atomic import write_json_atomic
from ..records.case import parse_case
from ..records.fields import read_json_file
from .outputs import check_output_file


def _row_line(r: gl.Row, reason: str | None = None) -> str:
    scope = ("every intent" if r.intents == gl.ANY else "/".join(r.intents)) + ", " + \
        ("every histology" if r.histologies == gl.ANY else "/".join(r.histologies))
    when = "; ".join(f"{p['field']} {p['op']} {p.get('value', '')}".strip() for p in r.when)
    value = (f"products.{r.product_limit}" if r.product_limit else r.threshold_text())
    return (f"  {r.id}\n      {gl.QUANTITY_LABELS[r.quantity]} {value} ({r.printed}); "
            f"{r.kind}; {r.product}; {scope}" + (f"; when {when}" if when else "")
            + f"\n      {r.source()}, LOE {r.loe}"
            + (f"\n      {gl.site_change_text(r.site_change)}" if r.site_change else "")
            + (f"\n      not evaluated: {reason}" if reason else ""))


def cmd_guidelines(args: argparse.Namespace) -> int:
    site, label = (catalogue.read_site_limits(args.site_limits) if args.site_limits
                   else (None, ""))
    if args.all:
        rows = gl.site_rows(site, label)
        if args.json:
            json.dump([r.__dict__ for r in rows], sys.stdout, indent=2, ensure_ascii=False,
                      default=str)
            sys.stdout.write("\n")
        else:
            print(f"{len(rows)} rows (tareplanner/data/guidelines.json):")
            print("\n".join(_row_line(r) for r in rows))
        return 0
    if not args.case:
        raise MissingFieldError("case", "a case file, or --all for every row")
    if args.output:
        check_output_file(args.output, "-o")
    document = copy.deepcopy(read_json_file(args.case, "case file"))
    options = {"intent": args.intent, "histology": args.histology,
               "bilirubin_mg_dl": args.bilirubin}
    if any(v is not None for v in options.values()) or args.prior_treatment:
        scenario = dict(document.get("scenario") or {}) if isinstance(document, dict) else {}
        scenario.update({k: v for k, v in options.items() if v is not None})
        if args.prior_treatment:
            scenario["prior_treatment"] = True
        document["scenario"] = scenario
    case = parse_case(document)  # validates the scenario too (did you mean, NaN, < 0)
    rows = case_rows(case, site, label)
    suggestions = gl.suggestions(case.product, case.scenario, facts_for(case), site, label)
    if args.output:
        write_json_atomic(args.output, document, overwrite=args.force, field="-o")
    if args.json:
        json.dump({"scenario": case.scenario.as_dict() if case.scenario else None,
                   "rows": [dict(r.__dict__, not_evaluated=reason) for r, reason in rows.rows],
                   "suggestions": suggestions}, sys.stdout, indent=2, ensure_ascii=False,
                  default=str)
        sys.stdout.write("\n")
        return 0
    if case.scenario is None:
        print(f"{case.product}: no scenario given (--intent, --histology, --bilirubin): only "
              "the rows that hold in every scenario apply")
    else:
        s = case.scenario
        print(f"{case.product}: {s.intent}, {s.histology}, bilirubin "
              f"{'not given' if s.bilirubin_mg_dl is None else f'{s.bilirubin_mg_dl:g} mg/dL'}"
              f", compromised liver {'yes' if s.liver_compromised else 'no'}, prior treatment "
              f"{'yes' if s.prior_treatment else 'no'}")
    print(f"{len(rows.rows)} rows apply:")
    print("\n".join(_row_line(r, reason) for r, reason in rows.rows))
    print("goal suggestions:" if suggestions else "goal suggestions: none for this scenario")
    for g in suggestions:
        (kind, value), = g["goal"].items()
        print(f"  {kind} {value:g}  ({g['printed']}{'; ' + g['condition'] if g['condition'] else ''}"
              f"; {g['source']}, LOE {g['loe']})")
    if args.output:
        print(f"case with the scenario written to {args.output}")
    return 0


def add_guideline_commands(sub) -> None:
    p = sub.add_parser("guidelines", help="dose thresholds of a scenario (EANM 2022, IFU), "
                                          "goal suggestions; write a case's scenario")
    p.add_argument("case", nargs="?", help="case JSON file")
    p.add_argument("--intent", help="segmentectomy, lobectomy, unilobar (lobar), bilobar "
                                    "(whole-liver)")
    p.add_argument("--histology", help="hcc, icc, mcrc, net, other")
    p.add_argument("--bilirubin", type=float, help="total bilirubin, mg/dL")
    p.add_argument("--prior-treatment", action="store_true",
                   help="prior chemotherapy or liver-directed treatment")
    p.add_argument("-o", "--output", help="write the case with the scenario to this file")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("--site-limits", help="site limits file (promoted or changed rows)")
    p.add_argument("--all", action="store_true", help="list every row of the table")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=cmd_guidelines)
