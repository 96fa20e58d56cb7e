"""``tareplanner`` command line: the same functions the Slicer module uses.

Exit status: 0 success, 2 bad input (the message names the field, the value and what is
allowed; nothing is written), 1 unexpected failure, 130 interrupted (Ctrl-C), 141 the reader
of standard output went away (a closed pipe, e.g. ``| head -1``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Sequence

from .. import __version__, catalogue
from ..errors import TarePlannerInputError
from ..planning import plan_case
from ..records.atomic import (OutputExistsError, swapped_folder, write_json_atomic,
                              write_text_atomic)
from ..records.case import read_case
from ..records.plan_text import plan_summary
from ..records.record_checks import read_plan_record
from ..physics.lung_shunt import lsf_planar_geometric_mean
from ..imaging.phantom_files import slug
from .dose_commands import add_dose_commands, cmd_dose
from .calibration_commands import add_calibration_commands
from .guideline_commands import add_guideline_commands
from .imaging_commands import add_imaging_commands
from .outputs import check_output_file, output_fault
from .progress import Progress
from .response_commands import add_response_commands
from .treatment_day_commands import add_treatment_day_commands
from .web_commands import add_web_commands

EXIT_OK, EXIT_FAILURE, EXIT_INPUT = 0, 1, 2
#: 128 + signal number, what a shell reports for a program ended by SIGINT / SIGPIPE
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141


def _site_limits(path: str | None) -> tuple[dict | None, str]:
    if not path:
        return None, ""
    return catalogue.read_site_limits(path)


def cmd_plan(args: argparse.Namespace) -> int:
    if args.output:
        check_output_file(args.output, "-o")
    case = read_case(args.case)
    site, label = _site_limits(args.site_limits)
    response = None
    if args.response:
        from ..records.fields import read_json_file
        from ..records.response_record import fit_for_plan
        response = fit_for_plan(args.response, read_json_file)
    record = plan_case(case, site, label, response=response)
    parents = {}
    if args.site_limits:
        from ..records.chain import parent_ref
        parents["site_limits"] = parent_ref(site, args.site_limits,
                                            Path(args.site_limits).read_bytes())
    if response is not None and response.get("kind") == "site":
        # a site's dose-response record, named as every record is (canonical JSON)
        parents["response"] = {"schema": "tareplanner.response/1",
                               "sha256": response["sha256"],
                               "file": Path(args.response).name}
    if parents:
        record.setdefault("parents", {}).update(parents)
    if args.output:
        write_json_atomic(args.output, record, overwrite=args.force, field="-o")
    if args.json:
        json.dump(record, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(plan_summary(record))
        if args.output:
            sys.stdout.write(f"plan record written to {args.output}\n")
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    from ..records.administration import (ADMINISTRATION_SCHEMA, replay_administration,
                                          validate_administration)
    from ..records.fields import read_json_file
    from ..replay import replay

    if len(args.record) > 1:
        return _replay_chain(args)
    args.record = args.record[0]
    document = read_json_file(args.record, "record")
    if isinstance(document, dict) and document.get("schema") == ADMINISTRATION_SCHEMA:
        record = validate_administration(document, args.record)
        result = replay_administration(record)
    else:
        record = read_plan_record(args.record)
        result = replay(record)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    elif result["identical"]:
        print(f"{args.record}: reproduced exactly (recorded with tareplanner "
              f"{record['software']['version']}, replayed with {__version__})")
    else:
        print(f"{args.record}: {len(result['differences'])} difference(s)")
        for d in result["differences"]:
            print(f"    {d['field']}: record {d['record']!r}, replay {d['replay']!r}")
    return EXIT_OK if result["identical"] else EXIT_FAILURE


def _replay_chain(args: argparse.Namespace) -> int:
    """``replay A B C ...``: the links of the chain, then each record recomputed."""
    from ..chain_replay import replay_chain

    result = replay_chain(args.record)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return EXIT_OK if result["identical"] else EXIT_FAILURE
    for line in result["links"]:
        print(f"linked: {line}")
    for r in result["records"]:
        if not r["recomputed"]:
            print(f"{r['record']}: parents checked (not recomputed here)")
        elif r["identical"]:
            print(f"{r['record']}: reproduced exactly")
        else:
            print(f"{r['record']}: {len(r['differences'])} difference(s)")
            for d in r["differences"]:
                print(f"    {d['field']}: record {d['record']!r}, replay {d['replay']!r}")
    print("chain verified: every record names its parents, all given and unchanged"
          + ("" if result["identical"] else "; some records differ from their recomputation"))
    return EXIT_OK if result["identical"] else EXIT_FAILURE


def _report_chain(args: argparse.Namespace, record: dict) -> dict:
    """The records a report shows besides the plan, each checked against the records it
    must belong to (by the hashes they name: records/chain.py): the directive and the
    administration of this plan, the administration of this directive, the dose folder of
    this plan and of this administration, the measurement of this case."""
    from ..records.chain import check_parent, parent_ref, parents_of, read_record_file

    extras: dict = {}
    plan_label = args.record
    if args.directive:
        from ..records.directive import validate_directive
        directive = read_record_file(args.directive, "--directive")
        extras["directive"] = validate_directive(directive.document, args.directive)
        check_parent(directive.document, f"--directive {args.directive}", "plan", record,
                     plan_label)
    if args.administration:
        from ..records.administration import validate_administration
        admin = read_record_file(args.administration, "--administration")
        extras["administration"] = validate_administration(admin.document, args.administration)
        check_parent(admin.document["directive"], f"--administration {args.administration} "
                     "(its directive)", "plan", record, plan_label)
        if args.directive:
            check_parent(admin.document, f"--administration {args.administration}",
                         "directive", extras["directive"], f"--directive {args.directive}")
    measurement_raw = None
    if args.measurement:
        from ..records.record_checks import check_measurement_record
        measurement = read_record_file(args.measurement, "--measurement")
        extras["measurement"] = check_measurement_record(measurement.document,
                                                         args.measurement)
        measurement_raw = measurement.raw
        check_parent(record["case"], f"{plan_label} (its case)", "measurement",
                     measurement.document, f"--measurement {args.measurement}",
                     measurement.raw, required=False)
    if args.dose:
        dose = read_record_file(args.dose, "--dose")
        named = parents_of(dose.document)
        label = f"--dose {args.dose}"
        if "plan" in named:
            check_parent(dose.document, label, "plan", record, plan_label)
        elif dose.document.get("plan_input_sha256") != record["input_sha256"]:
            check_parent({"input_sha256": dose.document.get("plan_input_sha256"),
                          "schema": "tareplanner.plan/1"}, label, "case", record["case"],
                         f"{plan_label} (its case)")
        if "administration" in named and args.administration:
            check_parent(dose.document, label, "administration", admin.document,
                         f"--administration {args.administration}", admin.raw)
        if "measurement" in named and args.measurement:
            check_parent(dose.document, label, "measurement", extras["measurement"],
                         f"--measurement {args.measurement}", measurement_raw)
    shown = {"plan": parent_ref(record, args.record)}
    for key, option in (("directive", args.directive), ("administration", args.administration),
                        ("measurement", args.measurement)):
        if option:
            shown[key] = parent_ref(extras[key], option,
                                    measurement_raw if key == "measurement" else None)
    if args.dose:
        shown["dose"] = parent_ref(dose.document, Path(args.dose) / "dose.json")
    extras["shown"] = shown
    return extras


def cmd_report(args: argparse.Namespace) -> int:
    from ..errors import FieldValueError
    from ..records.fields import read_json_file
    from ..records.identity import entered_identity, option_identity
    from ..records.report import write_report

    check_output_file(args.output, "-o")
    record = read_plan_record(args.record)
    if args.dose:
        from ..records.record_checks import check_dose_folder
        check_dose_folder(args.dose)
    identity = entered_identity(read_json_file(args.identity, "--identity"), "--identity") \
        if args.identity else {}
    identity.update(option_identity({
        "--" + key.replace("_", "-"): getattr(args, key)
        for key in ("patient_name", "patient_id", "birth_date", "sex", "study_date",
                    "institution", "referring_physician")}))
    extras = _report_chain(args, record)
    write_report(record, args.output, dose_dir=args.dose, overwrite=args.force,
                 identity=identity, **extras)
    print(f"report written to {args.output}")
    return EXIT_OK


def cmd_batch(args: argparse.Namespace) -> int:
    from .batch import run_cohort

    try:
        summary = run_cohort(args.cohort, args.out, scheduler=args.scheduler,
                             workers=args.workers, progress=not args.quiet,
                             eud_alpha_per_gy=args.eud_alpha_per_gy)
    except RuntimeError as exc:
        print(f"tareplanner: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    failed = [s for s in summary["statuses"] if s["status"] == "failed"]
    print(f"{summary['patients']} patient(s): {summary['patients'] - len(failed)} done or "
          f"skipped, {len(failed)} failed; {summary['rows']} index rows in "
          f"{Path(args.out) / 'cohort_indices.csv'}")
    for s in failed:
        print(f"    {s['patient_id']}: {s['error']}")
    return EXIT_OK if not failed else EXIT_FAILURE


def cmd_validate(args: argparse.Namespace) -> int:
    case = read_case(args.case)
    site, label = _site_limits(args.site_limits)
    plan_case(case, site, label)  # clinical cut-offs and limits (site limits included)
    print(f"{args.case}: valid {case.document['schema']} case ({case.product}, {case.method}, "
          f"{len(case.positions)} position(s))")
    return EXIT_OK


def demo_case_document() -> dict:
    text = resources.files("tareplanner.examples").joinpath("demo_case.json").read_text("utf-8")
    return json.loads(text)


def cmd_demo(args: argparse.Namespace) -> int:
    """Synthetic patient -> images -> measurement -> case -> plan, all written to OUT."""
    final = Path(args.out)
    if any(p.exists() and not p.is_dir() for p in (final, *final.parents)):
        from ..errors import OutputPathError
        raise OutputPathError("--out", args.out, "a folder (the demo's own)", "a file is in "
                                                                            "the way")
    # the whole set is built in a new generation folder beside the old one and swapped in
    # at the end: a run stopped at any point leaves the earlier set whole, never a mix
    with swapped_folder(final, "--out") as out:
        _demo_into(args, out, final)
    print(f"\nwrote {final / 'report.pdf'}, {final / 'measurement.json'}, "
          f"{final / 'case.json'}, {final / 'plan.json'}, {final / 'plan.txt'}, "
          f"{final / 'directive.json'}, {final / 'administration.json'}, dose maps and DVHs in "
          f"{final / 'dose'}; images and truth in {final / 'phantom'}")
    return EXIT_OK


#: the demo patient's treatment scenario: bilobar treatment of HCC, total bilirubin 0.8 mg/dL
DEMO_SCENARIO = {"intent": "bilobar", "histology": "hcc", "bilirubin_mg_dl": 0.8}


def _demo_into(args: argparse.Namespace, out: Path, final: Path) -> None:
    """The demo's steps, every output written into ``out`` (a new generation folder that
    ``final`` will point to)."""
    import shutil

    from ..imaging.phantom import make_phantom, spec_administering, spec_for_size
    from ..imaging.phantom_files import write_phantom
    from .imaging_commands import cmd_measure

    phantom_dir = out / "phantom"
    print(f"1/4 writing the synthetic patient ({args.size}) to {final / 'phantom'}")
    spec = spec_for_size(args.size, ho166_scout=True)
    truth = write_phantom(make_phantom(spec), phantom_dir)
    print("2/4 measuring volumes, LSF and TNR from the images (CBCT registration per position)")
    d = phantom_dir
    names = ",".join(truth["tumour_labels"])
    measure_args = build_parser().parse_args([
        "measure", "--ct", str(d / "dicom" / "ct"), "--spect", str(d / "dicom" / "spect_maa"),
        "--liver", str(d / "labels" / "liver.nii.gz"),
        "--tumours", str(d / "labels" / "tumours.nii.gz"), "--tumour-names", names,
        *sum((["--position", f"{p['name']}={d / 'dicom' / ('cbct_' + slug(p['name']))}"]
              for p in truth["positions"]), []),
        "--goal", "tumour_dose_gy=250", "--product", "therasphere", "--method", "partition",
        "--treatment-time", truth["y90_pet"]["administration_time"], "--case-id", "DEMO-SYNTH",
        "-o", str(out / "case.json"), "--measurement-output", str(out / "measurement.json"),
        "--force", *(["--quiet"] if args.quiet else [])])
    cmd_measure(measure_args)
    # the synthetic patient's scenario (tareplanner guidelines case.json --intent bilobar
    # --histology hcc --bilirubin 0.8 -o case.json): the EANM 2022 rows that apply to it
    # are checked on the plan and shown in its text and report
    document = json.loads((out / "case.json").read_text(encoding="utf-8"))
    document["scenario"] = dict(DEMO_SCENARIO)
    write_json_atomic(out / "case.json", document, overwrite=True)
    print("3/4 planning, written directive and administration")
    case = read_case(out / "case.json")
    record = plan_case(case)
    summary = plan_summary(record)
    write_json_atomic(out / "plan.json", record, overwrite=True)
    write_text_atomic(out / "plan.txt", summary, overwrite=True)
    sys.stdout.write(summary)
    # the synthetic treatment administers this plan: the Y-90 PET and truth are rebuilt from
    # the planned activity per position (same seed, so the measured images are unchanged)
    progress = Progress("demo", quiet=args.quiet)
    progress.step("rebuilding the Y-90 PET from the planned activities")
    shutil.rmtree(phantom_dir)
    truth = write_phantom(make_phantom(spec_administering(
        spec, {p["name"]: p["activity_gbq"] for p in record["positions"]})), phantom_dir)
    directive, administration = _demo_treatment_day(record, truth, out)
    print("4/4 voxel dosimetry: predictive (MAA) and post-treatment (Y-90 PET), DVHs")
    dose_args = build_parser().parse_args([
        "dose", "--measurement", str(out / "measurement.json"), "--plan", str(out / "plan.json"),
        "--pet", str(d / "dicom" / "pet_y90"), "--out", str(out / "dose"), "--force",
        "--administration", str(out / "administration.json"), "--rtdose", "--seg",
        "--rtstruct", *(["--quiet"] if args.quiet else [])])
    # printed as where the folder will be once the set is swapped in
    cmd_dose(dose_args, shown_as=final / "dose")
    from ..records.report import write_report
    progress.step("writing the PDF report")
    write_report(record, out / "report.pdf", dose_dir=out / "dose", overwrite=True,
                 directive=directive, administration=administration)


def _demo_treatment_day(record: dict, truth: dict, out: Path) -> tuple[dict, dict]:
    """The demo's written directive and a sample administration record: each vial read in the
    dose calibrator an hour before the administration, the residual (the synthetic patient's
    3 %) half an hour after, so that the delivered activity is what the Y-90 PET holds."""
    from datetime import datetime, timedelta

    from ..physics.decay import activity_at
    from ..records.administration import administration_lines, administration_record
    from ..records.directive import directive_from_plan

    directive = directive_from_plan(record)
    write_json_atomic(out / "directive.json", directive, overwrite=True)
    pet = truth["y90_pet"]
    admin = datetime.fromisoformat(pet["administration_time"])
    half_life = record["nuclide"]["half_life_h"]
    readings = []
    for site in directive["positions"]:
        activity = site["prescribed_activity_gbq"]
        vial_time, residual_time = admin - timedelta(hours=1), admin + timedelta(minutes=30)
        readings.append({
            "treatment_site": site["treatment_site"],
            "vial": [{"activity_gbq": round(activity_at(activity, admin, vial_time, half_life), 4),
                      "time": vial_time.isoformat()}],
            "residual": [{"activity_gbq": round(activity_at(
                activity * pet["residual_fraction"], admin, residual_time, half_life), 4),
                "time": residual_time.isoformat()}],
            "administration_time": admin.isoformat()})
    administration = administration_record(directive, readings)
    write_json_atomic(out / "administration.json", administration, overwrite=True)
    print("\n".join(administration_lines(administration)))
    return directive, administration


def cmd_products(args: argparse.Namespace) -> int:
    site, label = _site_limits(args.site_limits)
    for key in catalogue.product_keys():
        p = catalogue.product(key, site, label)
        n = catalogue.nuclide(p.nuclide)
        print(f"{key}: {p.display_name}")
        print(f"    nuclide {n.name} (T1/2 {n.half_life_h} h, "
              f"{n.energy_per_activity_j_per_gbq} J/GBq); methods {', '.join(p.methods)}")
        for name, lim in p.limits.items():
            shown = "none" if lim.value is None else f"{lim.value:g}"
            print(f"    {name:<34} {shown:>6}   {lim.source}")
        t = p.tumour_target_gy
        print(f"    tumour target {t['min']}-{t['max']} Gy   {t['source']}")
    return EXIT_OK


def cmd_lsf(args: argparse.Namespace) -> int:
    import math

    from ..errors import FieldValueError
    from ..physics.lung_shunt import swapped_counts_warning

    for option in ("lung_anterior", "lung_posterior", "liver_anterior", "liver_posterior"):
        value = getattr(args, option)
        if not (math.isfinite(value) and value >= 0):
            raise FieldValueError("--" + option.replace("_", "-"), value,
                                  "background-corrected counts in the ROI, a finite number "
                                  ">= 0")
    result = lsf_planar_geometric_mean(args.lung_anterior, args.lung_posterior,
                                       args.liver_anterior, args.liver_posterior)
    warning = swapped_counts_warning(result)
    if args.json:
        print(json.dumps({"lung_shunt_fraction": result.lung_shunt_fraction,
                          "lung_geometric_mean_counts": result.lung_geometric_mean_counts,
                          "liver_geometric_mean_counts": result.liver_geometric_mean_counts,
                          "method": result.method,
                          "warnings": [warning] if warning else []}))
    else:
        print(f"LSF {result.lung_shunt_fraction:.4f} ({result.lung_shunt_fraction:.2%}); "
              f"GM lung {result.lung_geometric_mean_counts:.1f}, GM liver "
              f"{result.liver_geometric_mean_counts:.1f} counts")
        if warning:
            print(f"WARNING [{warning['code']}] {warning['message']}")
    if warning:
        print(f"tareplanner: warning: {warning['message']}", file=sys.stderr)
    return EXIT_OK


class _Parser(argparse.ArgumentParser):
    """Command-line errors on one line (no usage block), exit status 2; a mistyped choice
    (a command, --method, --lung-mass) gets the closest one suggested. A negative number in
    any notation (``-1.2e4`` too) is a value, not an option, so that the command refuses it
    by name rather than answering "expected one argument"."""

    def __init__(self, *args, **kwargs):
        import re

        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(
            r"^-(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^-(inf|nan|infinity)$", re.IGNORECASE)

    def error(self, message: str):
        self.exit(EXIT_INPUT, f"{self.prog}: error: {_with_suggestion(message)} "
                              f"(see {self.prog} --help)\n")


def _with_suggestion(message: str) -> str:
    """argparse's "invalid choice: 'X' (choose from 'A', 'B')" with "; did you mean 'A'?"."""
    import re

    from ..records.fields import suggestion

    found = re.search(r"invalid choice: '(.*?)' \(choose from (.*)\)$", message)
    if not found:
        return message
    hint = suggestion(found.group(1), re.findall(r"'([^']*)'", found.group(2)))
    return f"{message}; {hint}" if hint else message


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tareplanner",
        description="Plan and verify liver radioembolization (TARE/SIRT).")
    parser.add_argument("--version", action="version", version=f"tareplanner {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plan", help="plan activities from a case file (tareplanner.case/1)")
    p.add_argument("case", help="case JSON file")
    p.add_argument("--json", action="store_true", help="print the plan record as JSON")
    p.add_argument("-o", "--output", help="write the plan record to this file (atomically; "
                                          "its folder must exist)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("--site-limits", help="site limits file (tareplanner.site-limits/1)")
    p.add_argument("--response", metavar="FIT",
                   help="dose-response fit (tareplanner.response/1 file, or published:KEY): "
                        "probability of tumour response and liver toxicity at the planned "
                        "doses (information, never limits)")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("replay", help="recompute a plan record or an administration record "
                                       "and report any difference (exit 1 when one differs); "
                                       "given several records, verify the chain they form")
    p.add_argument("record", nargs="+",
                   help="plan record (tareplanner.plan/1) or administration record "
                        "(tareplanner.administration/1); or every record of a chain "
                        "(measurement, case, plan, directive, administration, dose folder, "
                        "site limits): each parent named must be among them and unchanged "
                        "(exit 2 otherwise)")
    p.add_argument("--json", action="store_true",
                   help="print the comparison as JSON (identical, and each differing field "
                        "with its recorded and replayed value)")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("report", help="PDF report of a plan record (and its dosimetry)")
    p.add_argument("record", help="plan record (tareplanner.plan/1)")
    p.add_argument("-o", "--output", required=True,
                   help="PDF file to write (its folder must exist)")
    p.add_argument("--dose", help="folder written by tareplanner dose (DVH, verification, "
                                  "dose on the CT slices, 3D view)")
    p.add_argument("--measurement", help="measurement record whose CT and label maps the "
                                         "slices show (default: the one the plan's case names)")
    p.add_argument("--directive", help="written directive (tareplanner.directive/1) of the plan")
    p.add_argument("--administration", help="administration record "
                                             "(tareplanner.administration/1) of the plan")
    p.add_argument("--identity", help="JSON file of patient and study identity (patient_name, "
                                      "patient_id, birth_date, sex, study_date, institution, "
                                      "referring_physician), for images without DICOM headers")
    p.add_argument("--patient-name", help="patient's name (over the case's and --identity's)")
    p.add_argument("--patient-id", help="patient ID")
    p.add_argument("--birth-date", help="birth date, YYYY-MM-DD")
    p.add_argument("--sex", help="M, F or O")
    p.add_argument("--study-date", help="study date, YYYY-MM-DD")
    p.add_argument("--institution", help="institution")
    p.add_argument("--referring-physician", help="referring physician")
    p.add_argument("--force", action="store_true", help="overwrite an existing PDF")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("batch", help="cohort dosimetry on Dask -> one table of dose indices")
    p.add_argument("cohort", help="CSV: patient_id, measurement, plan[, pet, administration_time]")
    p.add_argument("--out", required=True, help="output folder, made with any missing parent "
                                                "folders (resumable)")
    p.add_argument("--scheduler", help="address of an existing Dask scheduler")
    p.add_argument("--workers", type=int, help="local worker processes (default 1)")
    p.add_argument("--eud-alpha-per-gy", type=float, metavar="ALPHA",
                   help="also an eud_gy column: each structure's equivalent uniform dose "
                        "(Niemierko) from its DVH with this radiosensitivity (per Gy; a study "
                        "choice, stated with the fit)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar on stderr (it is drawn only on a terminal)")
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("validate", help="check a case file and report the first problem "
                                         "(it is planned, so clinical cut-offs are checked too)")
    p.add_argument("case", help="case JSON file (tareplanner.case/1)")
    p.add_argument("--site-limits", help="site limits file (tareplanner.site-limits/1)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("demo", help="synthetic patient end to end: images -> case -> plan")
    p.add_argument("-o", "--out", default="tareplanner-demo", metavar="DIR",
                   help="output folder, made with any missing parent folders; its phantom/ "
                        "subfolder is replaced (default: %(default)s)")
    p.add_argument("--size", default="small", choices=("small", "standard", "large"),
                   help="voxel size of the synthetic patient's images: small, standard or "
                        "large (default: %(default)s, so that the whole workflow runs in "
                        "about half a minute; tareplanner phantom defaults to standard)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress lines on stderr (they are written only to a terminal)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("products", help="list products, limits and their sources")
    p.add_argument("--site-limits", help="site limits file (tareplanner.site-limits/1)")
    p.set_defaults(func=cmd_products)

    p = sub.add_parser("lsf", help="lung shunt fraction from planar anterior/posterior counts")
    for organ, view in (("lung", "anterior"), ("lung", "posterior"), ("liver", "anterior"),
                        ("liver", "posterior")):
        p.add_argument(f"--{organ}-{view}", type=float, required=True,
                       help=f"counts in the {organ} ROI of the {view} view")
    p.add_argument("--json", action="store_true",
                   help="print the LSF and both geometric means as JSON")
    p.set_defaults(func=cmd_lsf)

    add_imaging_commands(sub)
    add_calibration_commands(sub)
    add_dose_commands(sub)
    add_treatment_day_commands(sub)
    add_web_commands(sub)
    add_guideline_commands(sub)
    add_response_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Bad input, and an output that cannot be written (a folder without
    write permission, a full disk): one line on stderr, status 2. Ctrl-C (KeyboardInterrupt)
    in any command: one line on stderr, status 130, no traceback (files are written
    atomically, so nothing is left half-written). A closed standard output (``| head``):
    status 141, quietly, as the Python documentation recommends (the rest of the output goes
    to os.devnull so that the interpreter's final flush does not fail again)."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        try:
            code = args.func(args)
        except TarePlannerInputError as exc:
            print(f"tareplanner: error: {exc}", file=sys.stderr)
            return EXIT_INPUT
        except OutputExistsError as exc:
            print(f"tareplanner: error: {exc}", file=sys.stderr)
            return EXIT_INPUT
        except ValueError as exc:  # raised by physics functions on out-of-range numbers
            print(f"tareplanner: error: {exc}", file=sys.stderr)
            return EXIT_INPUT
        except BrokenPipeError:
            raise
        except OSError as exc:  # an unwritable folder, a full disk, a quota: the output's fault
            output = next((str(getattr(args, name)) for name in ("out", "output", "outdir")
                           if getattr(args, name, None)), None)
            print(f"tareplanner: error: {output_fault(exc, output)}", file=sys.stderr)
            return EXIT_INPUT
        sys.stdout.flush()  # a closed pipe shows here, while the error can still be handled
        return code
    except KeyboardInterrupt as exc:
        message = str(exc) or "interrupted"
        try:
            print(f"tareplanner: {message}", file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE


def _discard_stdout() -> None:
    """Point standard output at os.devnull (docs.python.org, signal module, 'Note on
    SIGPIPE'), so that the flush at exit does not raise BrokenPipeError again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
