"""Mutation testing of the safety-critical code with mutmut, one module at a time.

Usage (from the repository root)::

    python Testing/mutation/run_mutmut.py physics/decay.py      # one module
    python Testing/mutation/run_mutmut.py --list                # the scope and its tests
    python Testing/mutation/run_mutmut.py all                   # every module, one after another
    python Testing/mutation/run_mutmut.py --resume planning.py  # go on with a stopped run
    python Testing/mutation/run_mutmut.py --summary             # the newest line of each module

Each module is mutated in its own scratch folder (``$MUTMUT_WORK``, default
``/tmp/tareplanner-mutmut/<module>``): the package is copied there as ``src/tareplanner`` (the
layout mutmut imports from), with ``Testing/`` and ``docs/``, and a pyproject.toml whose
``[tool.mutmut]`` section names the one file to mutate and the test files that exercise it
(``SCOPE`` below). mutmut runs those tests once to learn which test reaches which function, then
runs, for each mutant, only the tests that reach the mutated function. ``--workers`` (default 1)
sets mutmut's ``--max-children``; the machine is shared, so keep it at 1 or 2.

The result line of each module (killed / survived / timeout / no tests, and the score) is
printed and appended to ``$MUTMUT_WORK/../scores.txt``; survivors are listed with
``mutmut results`` and shown with ``mutmut show NAME`` inside the scratch folder.

``--resume`` goes on with a run that was stopped part-way (its scratch folder exists and the
mutated module is byte for byte the repository's): the rest of the package, ``Testing/``,
``docs/`` and README are brought up to date, mutmut checks the mutants it has not checked yet
(tests added since are traced first), then the survivors of the earlier part are checked again
against the tests as they now stand, and so are the mutants no test reached (tests written for
them since are traced first). Where the module has changed, ``--resume`` starts afresh.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "TAREPlanner" / "tareplanner"

#: module (relative to the package) -> the test files that exercise it (fast ones only;
#: the 'slow' marker is deselected). An item that starts with "-" is a pytest option with its
#: value as the next item (``"-k", "not phantom"`` leaves out the tests that build a whole
#: synthetic patient: each mutant runs in a fresh process, so a patient built by a fixture
#: would be built again for every mutant that reaches it).
#: the partial-volume tests without those that measure a whole synthetic patient (each builds
#: the patient again in every mutant's process: minutes a mutant)
PV_WITHOUT_PATIENT = ("not (truth_without_noise or noisy_spect or assumed_resolution or no_pvc "
                      "or lung_base_margin or measure_)")

#: the ordering tests of Testing/test_guidelines.py without those that plan a whole case
ORDERING_TESTS = ("not test_guidelines or issue_order or edge_of_the_tolerance "
                  "or working_hours_edges or no_time_outside or another_time")

SCOPE: dict[str, list[str]] = {
    "physics/administration.py": ["Testing/test_treatment_day.py", "Testing/test_physics_guards.py",
                                  "Testing/test_record_chain.py"],
    "physics/bsa.py": ["Testing/test_bsa.py", "Testing/test_safety_edges.py",
                       "Testing/test_physics_guards.py"],
    "physics/compartments.py": ["Testing/test_compartments.py", "Testing/test_mutation_references.py",
                                "Testing/test_solver.py", "Testing/test_physics_guards.py"],
    "physics/decay.py": ["Testing/test_decay_and_nuclides.py", "Testing/test_physics_guards.py"],
    "physics/dvh.py": ["Testing/test_mutation_references.py", "Testing/test_voxel_dose.py",
                       "Testing/test_fast_paths.py", "Testing/test_physics_guards.py"],
    "physics/gpu.py": ["Testing/test_gpu_convolution.py", "Testing/test_voxel_dose.py",
                       "Testing/test_physics_guards.py"],
    "physics/kernels.py": ["Testing/test_mutation_references.py", "Testing/test_voxel_dose.py",
                           "Testing/test_physics_guards.py", "Testing/test_kernel_helpers.py"],
    "physics/lung_shunt.py": ["Testing/test_ordering.py", "Testing/test_physics_guards.py"],
    "physics/ordering.py": ["Testing/test_ordering.py", "Testing/test_safety_edges.py",
                            "Testing/test_ordering_alternatives.py",
                            "Testing/test_ordering_whole_vials.py", "Testing/test_guidelines.py",
                            "-k", ORDERING_TESTS],
    "physics/partial_volume.py": ["Testing/test_partial_volume.py", "Testing/test_physics_guards.py",
                                  "-k", PV_WITHOUT_PATIENT],
    "physics/psf_fit.py": ["Testing/test_psf_fit.py", "Testing/test_calibration.py",
                           "Testing/test_equivalent_fwhm.py",
                           "-k", "psf_fit or ball_occupancy or recovers_a_gaussian or keeps_a_tail "
                                 "or pet_gives_a_scale or independent_blur "
                                 "or its_own_equivalent_fwhm or no_fwhm_in_the_bracket"],
    "physics/roi_noise.py": ["Testing/test_roi_noise.py"],
    "physics/solver.py": ["Testing/test_solver.py", "Testing/test_solver_shared_by_hand.py"],
    "physics/uncertainty.py": ["Testing/test_uncertainty.py", "Testing/test_uncertainty_by_hand.py"],
    "physics/voxel_dose.py": ["Testing/test_voxel_dose.py", "Testing/test_mutation_references.py",
                              "Testing/test_physics_guards.py", "Testing/test_voxel_dose_edges.py"],
    "physics/voxel_planning.py": ["Testing/test_voxel_dose.py", "Testing/test_physics_guards.py"],
    "physics/dose_response.py": ["Testing/test_dose_response.py", "Testing/test_response_cli.py",
                                 "Testing/test_dose_response_edges.py",
                                 "Testing/test_dose_response_fit.py"],
    "plan_uncertainty.py": ["Testing/test_uncertainty.py", "Testing/test_uncertainty_by_hand.py",
                            "Testing/test_plan_uncertainty_limits.py"],
    "planning.py": ["Testing/test_planning.py", "Testing/test_safety_edges.py",
                    "Testing/test_mutation_references.py", "Testing/test_case_errors.py",
                    "Testing/test_physics_guards.py", "Testing/test_plan_ordering_record.py",
                    "Testing/test_plan_warnings_edges.py", "Testing/test_plan_limit_sources.py",
                    "Testing/test_plan_whole_vial_edges.py",
                    "Testing/test_plan_lung_mass_record.py",
                    "Testing/test_plan_limits_applied.py", "Testing/test_plan_warning_texts.py",
                    "Testing/test_plan_record_fields.py", "Testing/test_plan_bsa_record.py",
                    "Testing/test_plan_guideline_goals.py", "Testing/test_plan_limit_names.py",
                    "Testing/test_schemas.py"],
    "records/directive.py": ["Testing/test_treatment_day.py", "Testing/test_record_chain.py",
                             "Testing/test_physics_guards.py", "Testing/test_directive_fields.py",
                             "Testing/test_directive_edges.py"],
    "records/administration.py": ["Testing/test_treatment_day.py", "Testing/test_record_chain.py",
                                  "Testing/test_physics_guards.py",
                                  "Testing/test_administration_record.py",
                                  "Testing/test_administration_readings.py",
                                  "Testing/test_administration_lung_criterion.py",
                                  "Testing/test_administration_vial_questions.py",
                                  "Testing/test_administration_reading_refusals.py",
                                  "Testing/test_administration_record_refusals.py",
                                  "Testing/test_administration_record_fields.py"],
    "records/chain.py": ["Testing/test_record_chain.py", "Testing/test_record_links.py"],
    "replan.py": ["Testing/test_record_chain.py", "Testing/test_treatment_day.py",
                  "Testing/test_replan_replay.py"],
    "dosimetry/activity.py": ["Testing/test_dosimetry.py", "Testing/test_verification_activity.py",
                              "Testing/test_activity_check_fields.py",
                              "Testing/test_mutation_references.py", "Testing/test_safety_edges.py",
                              "Testing/test_physics_guards.py"],
    "imaging/partial_volume.py": ["Testing/test_partial_volume.py", "Testing/test_physics_guards.py",
                                  "-k", PV_WITHOUT_PATIENT],
    "imaging/region_noise.py": ["Testing/test_reconstruction_noise.py",
                                "Testing/test_count_limited.py",
                                "-k", "region_noise or post_treatment_mean_doses or "
                                      "count_limited"],
    "imaging/camera_file.py": ["Testing/test_camera_file_reader.py",
                               "Testing/test_calibration_convergence.py",
                               "Testing/test_equivalent_fwhm.py",
                               "-k", "camera_file_reader or hand or word_for_word or "
                                     "larger_of_fit_and_spread or spread_of_a_tailed_psf"],
    "guideline_check.py": ["Testing/test_guideline_check_units.py",
                           "Testing/test_guideline_check_entries.py",
                           "Testing/test_guideline_sources.py", "Testing/test_guidelines.py",
                           "-k", "not on_the_pdf and not outside_working_hours"],
    "web/forms.py": ["Testing/web/test_forms.py"],
    "web/files.py": ["Testing/web/test_files.py", "Testing/web/test_files_containment.py"],
}


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def _items(items: list[str]):
    """Each item of a selection with whether it is a pytest option or an option's value
    (an option such as ``-k`` without ``=`` takes the next item as its value)."""
    value_next = False
    for item in items:
        is_option = value_next or item.startswith("-")
        value_next = item.startswith("-") and "=" not in item
        yield item, is_option


def _selection(items: list[str]) -> list[str]:
    """The test files of ``items`` that exist, with the pytest options among them."""
    return [item for item, is_option in _items(items)
            if is_option or (REPO / item.split("::")[0]).exists()]


def prepare(module: str, work: Path) -> None:
    """A fresh scratch folder for ``module``: src/tareplanner, Testing, docs, pyproject.toml."""
    if work.exists():
        shutil.rmtree(work)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".hypothesis")
    shutil.copytree(PACKAGE, work / "src" / "tareplanner", ignore=ignore)
    shutil.copytree(REPO / "Testing", work / "Testing", ignore=ignore)
    shutil.copytree(REPO / "docs", work / "docs", ignore=ignore)
    shutil.copy2(REPO / "README.md", work / "README.md")
    tests = _selection(SCOPE[module])
    pyproject = (REPO / "pyproject.toml").read_text()
    pyproject += (
        "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f'only_mutate = ["src/tareplanner/{module}"]\n'
        'also_copy = ["Testing", "docs", "README.md"]\n'
        f"pytest_add_cli_args_test_selection = {_toml_list(tests)}\n"
        "pytest_add_cli_args = [\"-q\", \"-p\", \"no:cacheprovider\", \"-m\", \"not slow and not browser\"]\n"
        "timeout_multiplier = 10.0\n"
    )
    (work / "pyproject.toml").write_text(pyproject)


def _selection_of(work: Path) -> list[str] | None:
    """The test selection written into ``work``'s pyproject.toml, or None."""
    import tomllib
    try:
        config = tomllib.loads((work / "pyproject.toml").read_text())
        return list(config["tool"]["mutmut"]["pytest_add_cli_args_test_selection"])
    except (OSError, KeyError, ValueError):
        return None


def _split(selection: list[str]) -> tuple[set[str], list[str]]:
    """The test files of a selection and its pytest options (with their values), in order."""
    files = {item for item, is_option in _items(selection) if not is_option}
    options = [item for item, is_option in _items(selection) if is_option]
    return files, options


def resumable(module: str, work: Path) -> bool:
    """Whether ``work`` holds a run of ``module`` as it stands in the repository, whose
    verdicts the current scope keeps: the same pytest options and no test file left out
    (files added to the scope can only kill more mutants, never make a killed one survive)."""
    copy = work / "src" / "tareplanner" / module
    if not ((work / "mutants").is_dir() and copy.is_file()
            and copy.read_bytes() == (PACKAGE / module).read_bytes()):
        return False
    earlier = _selection_of(work)
    if earlier is None:
        return False
    old_files, old_options = _split(earlier)
    new_files, new_options = _split(_selection(SCOPE[module]))
    return old_options == new_options and old_files <= new_files


def _keep_verdicts_with_the_new_selection(module: str, work: Path) -> None:
    """Write the scope's current test selection into ``work`` and tell mutmut's saved state
    that it is the one its verdicts were reached with (mutmut would otherwise reset them all
    on any change of the selection; :func:`resumable` allows only added test files, which
    cannot revive a killed mutant). The added files' tests are traced by mutmut itself as
    new tests."""
    import hashlib
    tests = _selection(SCOPE[module])
    if _selection_of(work) == tests:
        return
    text = (work / "pyproject.toml").read_text()
    start = text.index("pytest_add_cli_args_test_selection = ")
    end = text.index("\n", start)
    (work / "pyproject.toml").write_text(
        text[:start] + f"pytest_add_cli_args_test_selection = {_toml_list(tests)}" + text[end:])
    stats_path = work / "mutants" / "mutmut-stats.json"
    if stats_path.is_file():
        stats = json.loads(stats_path.read_text())
        # mutmut's fingerprint of the selection: sha256 of repr(tuple(selection)), 12 digits
        stats.setdefault("config_fingerprint", {})["test_selection"] = \
            hashlib.sha256(repr(tuple(tests)).encode()).hexdigest()[:12]
        stats_path.write_text(json.dumps(stats))


def refresh(module: str, work: Path) -> None:
    """Bring everything but the mutated module in ``work`` up to date with the repository
    (mutmut copies the package's other files and ``also_copy`` into ``mutants/`` each run)."""
    ignore_pyc = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".hypothesis")

    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = set(ignore_pyc(folder, names))
        if Path(folder).resolve() == (PACKAGE / module).parent.resolve():
            skipped.add(Path(module).name)
        return skipped

    shutil.copytree(PACKAGE, work / "src" / "tareplanner", ignore=ignore, dirs_exist_ok=True)
    for name in ("Testing", "docs"):
        shutil.rmtree(work / name, ignore_errors=True)
        shutil.copytree(REPO / name, work / name, ignore=ignore_pyc)
    shutil.copy2(REPO / "README.md", work / "README.md")


def results(work: Path) -> dict[str, list[str]]:
    out = subprocess.run(["mutmut", "results", "--all", "true"], cwd=work, capture_output=True,
                         text=True).stdout
    by_status: dict[str, list[str]] = {}
    for line in out.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name:
            by_status.setdefault(status, []).append(name)
    return by_status


def run(module: str, workers: int, root: Path, resume: bool = False) -> str:
    work = root / module.replace("/", "-").removesuffix(".py")
    resumed = resume and resumable(module, work)
    earlier = results(work) if resumed else {}
    # the survivors and the mutants no test reached: tests written since may reach them
    earlier_survivors = earlier.get("survived", []) + earlier.get("no tests", [])
    if resumed:
        refresh(module, work)
        _keep_verdicts_with_the_new_selection(module, work)
    else:
        prepare(module, work)
    # mutmut puts mutants/src first on sys.path itself; a PYTHONPATH would hide the mutants
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.setdefault("MPLBACKEND", "Agg")
    start = time.monotonic()
    command = ["mutmut", "run", "--max-children", str(workers)]
    proc = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    if earlier_survivors:  # checked again against the tests as they now stand
        again = subprocess.run(command + earlier_survivors, cwd=work, env=env,
                               capture_output=True, text=True)
        log += again.stdout + again.stderr
    minutes = (time.monotonic() - start) / 60
    (work / "mutmut-run.log").write_text(log)
    by = results(work)
    killed = len(by.get("killed", [])) + len(by.get("timeout", [])) + len(by.get("segfault", []))
    survived = by.get("survived", [])
    untested = by.get("no tests", [])
    total = killed + len(survived) + len(untested)
    score = 100.0 * killed / total if total else float("nan")
    line = (f"{module}: {total} mutants, {killed} killed, {len(survived)} survived, "
            f"{len(untested)} not reached by a test; score {score:.1f} %; {minutes:.1f} min "
            f"({workers} worker{'s' if workers > 1 else ''}{', resumed' if resumed else ''}); "
            f"rc {proc.returncode}")
    with open(root / "scores.txt", "a") as f:
        f.write(time.strftime("%Y-%m-%d %H:%M ") + line + "\n")
        for name in survived + untested:
            f.write(f"    {name}\n")
    return line


def summary(roots: list[Path]) -> list[str]:
    """The newest result line of each module in the ``scores.txt`` of ``roots`` (runs may
    have used several scratch roots) and the scope's total over them."""
    import re
    pattern = re.compile(r"^(\S+ \S+) (\S+): (\d+) mutants, (\d+) killed, (\d+) survived, "
                         r"(\d+) not reached")
    newest: dict[str, tuple] = {}
    for root in roots:
        scores = root / "scores.txt"
        if not scores.is_file():
            continue
        for line in scores.read_text().splitlines():
            match = pattern.match(line)
            if match:
                stamp, module = match.group(1), match.group(2)
                numbers = tuple(int(match.group(k)) for k in (3, 4, 5, 6))
                if module not in newest or stamp >= newest[module][0]:
                    newest[module] = (stamp, numbers)
    out = []
    total = [0, 0, 0, 0]
    for module in SCOPE:
        if module not in newest:
            out.append(f"{module}: not run")
            continue
        stamp, (mutants, killed, survived, unreached) = newest[module]
        total = [a + b for a, b in zip(total, (mutants, killed, survived, unreached))]
        out.append(f"{module}: {killed}/{mutants} killed ({100 * killed / mutants:.1f} %), "
                   f"{survived} survived, {unreached} not reached ({stamp})")
    if total[0]:
        out.append(f"total: {total[1]}/{total[0]} killed ({100 * total[1] / total[0]:.1f} %), "
                   f"{total[2]} survived, {total[3]} not reached")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="modules relative to tareplanner/, or 'all'")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--summary", nargs="*", metavar="ROOT", default=None,
                        help="print the newest result of each module in the scores.txt of "
                             "these scratch roots (default $MUTMUT_WORK) and the total")
    parser.add_argument("--resume", action="store_true",
                        help="go on with a stopped run of an unchanged module (else start afresh)")
    args = parser.parse_args(argv)
    if args.summary is not None:
        roots = [Path(r) for r in args.summary] or [
            Path(os.environ.get("MUTMUT_WORK", "/tmp/tareplanner-mutmut"))]
        print("\n".join(summary(roots)))
        return 0
    if args.list or not args.modules:
        for module, tests in SCOPE.items():
            print(f"{module}: {' '.join(tests)}")
        return 0
    modules = list(SCOPE) if args.modules == ["all"] else args.modules
    unknown = [m for m in modules if m not in SCOPE]
    if unknown:
        print(f"not in the scope: {', '.join(unknown)} (see --list)", file=sys.stderr)
        return 2
    root = Path(os.environ.get("MUTMUT_WORK", "/tmp/tareplanner-mutmut"))
    root.mkdir(parents=True, exist_ok=True)
    for module in modules:
        print(run(module, args.workers, root, args.resume), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
