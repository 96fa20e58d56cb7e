"""``tareplanner directive`` and ``tareplanner administer``: the written directive from a plan,
changes to it before the administration, and the administration record from dose-calibrator
readings (docs/treatment-day.md)."""

from __future__ import annotations

import argparse
import sys

from ..errors import FieldValueError


def _read(path: str, field: str):
    from ..records.fields import read_json_file
    return read_json_file(path, field)


def cmd_directive(args: argparse.Namespace) -> int:
    from ..records.atomic import write_json_atomic
    from ..records.directive import directive_from_plan, directive_lines, validate_directive
    from ..records.record_checks import read_plan_record
    from .outputs import check_output_file

    check_output_file(args.output, "-o")
    if args.plan is None:
        raise FieldValueError("plan", None, "a plan record (with --change: the plan the "
                                            "directive was written from)")
    if args.change:
        from ..replan import change_directive
        if args.site is None or args.activity_gbq is None or not args.reason or not args.by:
            raise FieldValueError("--change", args.change, "with --site, --activity-gbq (GBq), "
                                  "--reason and --by")
        directive = validate_directive(_read(args.change, "--change"), args.change)
        directive = change_directive(directive, read_plan_record(args.plan), args.site,
                                     args.activity_gbq, args.reason, args.by,
                                     override_reason=args.override_limits,
                                     plan_label=args.plan, directive_label=args.change)
    else:
        if args.override_limits:
            raise FieldValueError("--override-limits", args.override_limits,
                                  "only with --change")
        directive = directive_from_plan(read_plan_record(args.plan))
    write_json_atomic(args.output, directive, overwrite=args.force, field="-o")
    sys.stdout.write("\n".join(directive_lines(directive)) + "\n")
    print(f"written directive saved to {args.output}")
    return 0


def _site_value(text: str, field: str) -> tuple[str, str]:
    site, sep, value = text.rpartition("=")
    if not sep or not site or not value:
        raise FieldValueError(field, text, "SITE=VALUE")
    return site, value


def _reading(text: str, field: str) -> tuple[str, dict]:
    import math

    site, value = _site_value(text, field)
    activity, sep, time = value.partition("@")
    try:
        gbq = float(activity)
    except ValueError:
        raise FieldValueError(field, text, "SITE=GBQ@TIME, e.g. 'right hepatic=3.2@"
                              "2026-12-01T09:30+01:00' (activity in GBq)") from None
    if not (math.isfinite(gbq) and gbq >= 0):
        raise FieldValueError(f"{field} {text!r}", activity, "an activity in GBq >= 0")
    if not sep:
        raise FieldValueError(field, text, "SITE=GBQ@TIME (the time of the reading)")
    return site, {"activity_gbq": gbq, "time": time}


def readings_from_options(args: argparse.Namespace,
                          fields: dict[str, str] | None = None) -> list[dict]:
    """The readings list (records/administration.py) from --vial/--residual/--administered-at;
    ``fields`` receives, for each reading's place in the list (``readings[0].vial[0]``), the
    option as typed, so that messages name it."""
    sites: dict[str, dict] = {}
    fields = {} if fields is None else fields

    def entry(site):
        return sites.setdefault(site, {"treatment_site": site, "vial": [], "residual": []})
    for option, kind in (("vial", "vial"), ("residual", "residual")):
        for text in getattr(args, option) or []:
            site, reading = _reading(text, f"--{option}")
            e = entry(site)
            index = list(sites).index(site)
            fields[f"readings[{index}].{kind}[{len(e[kind])}]"] = f"--{option} {text!r}"
            e[kind].append(reading)
    for text in args.administered_at or []:
        site, time = _site_value(text, "--administered-at")
        entry(site)["administration_time"] = time
        fields[f"readings[{list(sites).index(site)}]"] = f"--administered-at {text!r}"
    return list(sites.values())


def _option_error(exc, fields: dict[str, str]):
    """A readings error with the option the user typed in place of the reading's place in
    the readings list (``readings[0].vial[0].activity_gbq`` -> ``--vial 'site=26.2@...'``)."""
    from ..errors import TarePlannerInputError

    field = exc.field
    for path in sorted(fields, key=len, reverse=True):
        if field == path or field.startswith(path + "."):
            rest = field[len(path):].lstrip(".")
            rest = {"activity_gbq": "activity (GBq)", "time": "time (ISO 8601 with UTC "
                    "offset)"}.get(rest, rest)
            copy = TarePlannerInputError.__new__(type(exc))
            TarePlannerInputError.__init__(copy, f"{fields[path]} {rest}".strip(), exc.value,
                                           exc.allowed, exc.detail)
            return copy
    return exc


def cmd_administer(args: argparse.Namespace) -> int:
    from ..records.administration import administration_lines, administration_record
    from ..records.atomic import write_json_atomic
    from ..records.directive import validate_directive
    from .outputs import check_output_file

    check_output_file(args.output, "-o")
    directive = validate_directive(_read(args.directive, "directive"), args.directive)
    if args.readings and (args.vial or args.residual or args.administered_at):
        raise FieldValueError("--readings", args.readings,
                              "either a readings file or --vial/--residual/--administered-at")
    fields: dict[str, str] = {}
    readings = _read(args.readings, "--readings") if args.readings else \
        readings_from_options(args, fields)
    if args.readings:
        fields = {f"readings[{i}]": f"--readings {args.readings} readings[{i}]"
                  for i in range(len(readings) if isinstance(readings, list) else 0)}
    from ..errors import TarePlannerInputError
    try:
        record = administration_record(directive, readings,
                                       site_tolerance_fraction=args.site_tolerance,
                                       confirm_reason=args.confirm_readings, fields=fields)
    except TarePlannerInputError as exc:
        raise _option_error(exc, fields) from None
    write_json_atomic(args.output, record, overwrite=args.force, field="-o")
    sys.stdout.write("\n".join(administration_lines(record)) + "\n")
    print(f"administration record written to {args.output}")
    return 0


def add_treatment_day_commands(sub) -> None:
    p = sub.add_parser("directive", help="written directive from a plan record, or a change "
                                         "to a directive before the administration")
    p.add_argument("plan", nargs="?", help="plan record (tareplanner.plan/1); with --change, "
                                           "the plan the directive was written from")
    p.add_argument("--change", metavar="DIRECTIVE",
                   help="change the prescribed activity of one site of this directive: the "
                        "plan is recomputed at the new activities (every dose and limit)")
    p.add_argument("--site", help="treatment site to change (with --change)")
    p.add_argument("--activity-gbq", type=float, help="new prescribed activity (GBq)")
    p.add_argument("--reason", help="why the prescription changes (with --change)")
    p.add_argument("--by", help="authorised user making the change (with --change)")
    p.add_argument("--override-limits", metavar="REASON",
                   help="accept a change that exceeds a limit, for this reason (recorded, and "
                        "shown on every later record and the report)")
    p.add_argument("-o", "--output", required=True,
                   help="directive file to write (its folder must exist)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_directive)

    p = sub.add_parser("administer", help="administration record: delivered activity per "
                                          "site from dose-calibrator readings, checked "
                                          "against the written directive")
    p.add_argument("directive", help="written directive (tareplanner.directive/1)")
    p.add_argument("--readings", help="readings file: a JSON list, one entry per site "
                                      "(docs/treatment-day.md)")
    p.add_argument("--vial", action="append", metavar="SITE=GBQ@TIME",
                   help="vial reading before the administration (repeatable)")
    p.add_argument("--residual", action="append", metavar="SITE=GBQ@TIME",
                   help="residual reading (vial, tubing, catheter) after it (repeatable)")
    p.add_argument("--administered-at", action="append", metavar="SITE=TIME",
                   help="administration time of a site (ISO 8601 with UTC offset)")
    p.add_argument("--confirm-readings", metavar="REASON",
                   help="record readings that are questioned (far from the prescription or "
                        "above the product's largest vial), for this reason")
    p.add_argument("--site-tolerance", type=float, metavar="FRACTION",
                   help="the site's own tolerance on the delivered activity (e.g. 0.10), "
                        "flagged besides the regulatory criterion")
    p.add_argument("-o", "--output", required=True,
                   help="administration record to write (its folder must exist)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_administer)

