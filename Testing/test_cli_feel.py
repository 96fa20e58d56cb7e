"""How the command line feels: progress lines only on a terminal, cheap checks before any
image is read, choices listed in the help, product names in any case, and a suggestion for a
mistyped field name."""

import io
import os
import re

import pytest
import SimpleITK as sitk

from tareplanner import catalogue
from tareplanner.cli import progress as progress_module
from tareplanner.cli.main import build_parser, main
from tareplanner.cli.progress import ENVIRONMENT, Progress, registration_steps
from tareplanner.errors import UnknownNameError
from tareplanner.imaging import readers, registration
from tareplanner.planning import plan_case
from tareplanner.records.case import parse_case


class _ImageRead(Exception):
    """Raised by the patched image reader: reaching it means an image would have been read."""


@pytest.fixture
def no_images(monkeypatch):
    """Every image reader replaced by one that raises, so that a test sees whether a command
    refused its options before reading an image (seconds of work on real images)."""
    def refuse(*args, **kwargs):
        raise _ImageRead(args[0] if args else None)
    monkeypatch.setattr(readers, "read_image", refuse)
    return refuse


def _measure_argv(tmp_path, *extra):
    return ["measure", "--ct", str(tmp_path / "ct"), "--spect", str(tmp_path / "spect"),
            "--liver", str(tmp_path / "liver.nii.gz"),
            "--tumours", str(tmp_path / "tumours.nii.gz"), "--tumour-names", "T1,T2",
            "--position", f"right={tmp_path / 'cbct_r'}",
            "--position", f"left={tmp_path / 'cbct_l'}",
            "--goal", "tumour_dose_gy=250", "--product", "therasphere",
            "-o", str(tmp_path / "case.json"), *extra]


# --- progress lines -----------------------------------------------------------------------

def test_progress_is_silent_when_stderr_is_not_a_terminal(monkeypatch):
    """Bug caught: step lines written into a log file or a pipe (a script's stderr)."""
    monkeypatch.delenv(ENVIRONMENT, raising=False)
    stream = io.StringIO()  # isatty() is False
    p = Progress("measure", stream=stream)
    p.step("reading the CT")
    p.bar(1, 2, "P1")
    assert stream.getvalue() == ""


def test_progress_lines_on_a_pseudo_terminal(monkeypatch):
    """A real pseudo-terminal (os.openpty): isatty() is True, so each step is one line with the
    command's name; --quiet turns them off even there. Bug caught: progress that never shows
    on a terminal, or that --quiet does not silence."""
    monkeypatch.delenv(ENVIRONMENT, raising=False)
    master, slave = os.openpty()
    try:
        with open(slave, "w", closefd=False) as tty:
            assert tty.isatty()
            Progress("dose", stream=tty).step("predictive dose (kernel)")
            Progress("dose", stream=tty, quiet=True).step("must not appear")
        text = os.read(master, 4096).decode()
    finally:
        os.close(master)
        os.close(slave)
    lines = [line for line in text.replace("\r\n", "\n").splitlines() if line]
    assert len(lines) == 1, text
    assert re.fullmatch(r"\[dose +\d+\.\d s\] predictive dose \(kernel\)", lines[0]), lines


def test_progress_forced_on_and_off_by_the_environment(monkeypatch):
    """TAREPLANNER_PROGRESS=1 writes the lines to a non-terminal stream, =0 silences a
    terminal; --quiet wins over the variable."""
    stream = io.StringIO()
    monkeypatch.setenv(ENVIRONMENT, "1")
    Progress("batch", stream=stream).step("one")
    Progress("batch", stream=stream, quiet=True).step("two")
    assert stream.getvalue().count("\n") == 1 and "one" in stream.getvalue()
    monkeypatch.setenv(ENVIRONMENT, "0")
    assert not progress_module.wanted(stream=type("T", (), {"isatty": lambda self: True})())


def test_each_registration_is_announced_with_its_position(monkeypatch):
    """measure's step lines name each CBCT registration as it starts (the long step), in the
    order of the positions. The registration itself is replaced by a stub."""
    monkeypatch.setenv(ENVIRONMENT, "1")
    monkeypatch.setattr(registration, "_register", lambda *a: "done")
    stream = io.StringIO()
    p = Progress("measure", stream=stream)
    image = sitk.Image(4, 4, 4, sitk.sitkFloat32)
    with registration_steps(p, ["right hepatic", "left hepatic"]):
        registration.register_rigid(image, image)
        registration.register_rigid(image, image)
    registration.register_rigid(image, image)  # outside the block: not announced
    lines = stream.getvalue().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == [
        "registering CBCT 1/2 (right hepatic) to the CT",
        "registering CBCT 2/2 (left hepatic) to the CT"]


def test_measure_writes_nothing_on_stderr_when_not_a_terminal(tmp_path, no_images, capsys,
                                                              monkeypatch):
    """Under pytest stderr is captured (not a terminal): a measure that reaches the images
    has written no progress line before it."""
    monkeypatch.delenv(ENVIRONMENT, raising=False)
    with pytest.raises(_ImageRead):
        main(_measure_argv(tmp_path))
    assert capsys.readouterr().err == ""


# --- cheap checks before any image is read ------------------------------------------------

@pytest.mark.parametrize("extra, field", [
    (["--manual-lsf", "1.5"], "--manual-lsf"),
    (["--manual-lsf", "-0.1"], "--manual-lsf"),
    (["--manual-lsf", "nan"], "--manual-lsf"),
    (["--goal", "tumour_dose_gy=-3"], "--goal"),
    (["--goal", "middle:tumour_dose_gy=200"], "--goal"),
    (["--goal", "tumor_dose=200"], "--goal"),
    (["--product", "sirspheres"], "--product"),
    (["--method", "bsa"], "--method"),            # bsa is for SIR-Spheres only
    (["--method", "partiton"], "--method"),
    (["--manual-tnr", "T9=3"], "--manual-tnr"),
    (["--treatment-time", "2026-12-01T10:00:00"], "--treatment-time"),  # no UTC offset
    (["--position", "right=elsewhere"], "--position"),  # the same name twice
])
def test_bad_options_refused_before_any_image_is_read(tmp_path, no_images, capsys, extra, field):
    """Bug caught: a typing error in a value entered by hand, a goal, the product or the
    method found only after the CT, the SPECT and every CBCT had been read and registered
    (tens of seconds). The patched reader raises if it is reached; the command must instead
    return 2 with one line naming the option."""
    assert main(_measure_argv(tmp_path, *extra)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"tareplanner: error: {field}"), err


def test_a_position_without_goal_is_refused_before_any_image(tmp_path, no_images, capsys):
    argv = _measure_argv(tmp_path)
    argv[argv.index("--goal"):argv.index("--goal") + 2] = ["--goal", "right:tumour_dose_gy=250"]
    assert main(argv) == 2
    assert "missing: left" in capsys.readouterr().err


def test_goal_for_an_unknown_territory_name_refused_before_any_image(tmp_path, no_images,
                                                                     capsys):
    """With --territories and --territory-names the positions are known from the names: a
    goal for another name is refused before the label map is read."""
    argv = ["measure", "--ct", "ct", "--spect", "spect", "--liver", "liver.nii.gz",
            "--territories", "territories.nii.gz", "--territory-names", "right,left",
            "--goal", "tumour_dose_gy=250", "--goal", "middle:normal_dose_gy=50",
            "--product", "therasphere"]
    assert main(argv) == 2
    assert "--goal: got ['middle']; allowed: position names: right, left" in \
        capsys.readouterr().err


def test_dose_with_pet_and_post_spect_refused_before_any_file_is_read(tmp_path, no_images,
                                                                      capsys):
    assert main(["dose", "--measurement", str(tmp_path / "m.json"), "--plan",
                 str(tmp_path / "p.json"), "--pet", "pet", "--post-spect", "spect",
                 "--administered-gbq", "2", "--out", str(tmp_path / "d")]) == 2
    assert "either --pet or --post-spect" in capsys.readouterr().err


# --- product names in any case ------------------------------------------------------------

@pytest.mark.parametrize("given", ["TheraSphere", "THERASPHERE", " therasphere "])
def test_product_name_in_any_case_on_the_command_line(tmp_path, no_images, given):
    """Bug caught: 'TheraSphere' (the manufacturer's spelling) refused by measure. The check
    passes and the command goes on to read the images (the patched reader is reached)."""
    argv = _measure_argv(tmp_path)
    argv[argv.index("--product") + 1] = given
    with pytest.raises(_ImageRead):
        main(argv)


@pytest.mark.parametrize("given, key", [("TheraSphere", "therasphere"),
                                        ("SIR-Spheres", "sir-spheres"),
                                        ("QUIREMSPHERES", "quiremspheres")])
def test_product_name_in_any_case_in_a_case_file(base_case, given, key):
    """The case is read with the catalogue key, and the plan record carries the key (not the
    spelling of the file). Keys from data/products.json."""
    base_case["product"] = given
    if key != "therasphere":
        base_case["method"] = "single-compartment"
        base_case["positions"][0]["goal"] = {"normal_dose_gy": 40}
    case = parse_case(base_case)
    assert case.product == key
    assert plan_case(case)["product"]["key"] == key


def test_unknown_product_lists_the_keys(base_case):
    base_case["product"] = "Sirtex"
    with pytest.raises(UnknownNameError) as info:
        parse_case(base_case)
    for key in catalogue.product_keys():
        assert key in str(info.value)


# --- did you mean -------------------------------------------------------------------------

def test_mistyped_case_field_gets_a_suggestion(base_case):
    """Bug caught: 'lung_shunt_fractoin' answered with the list of every allowed field and no
    hint of which one was meant."""
    base_case["lung_shunt_fractoin"] = base_case.pop("lung_shunt_fraction")
    with pytest.raises(UnknownNameError) as info:
        parse_case(base_case)
    assert "did you mean 'lung_shunt_fraction'?" in str(info.value)


def test_mistyped_nested_field_and_site_limits_field_get_a_suggestion(base_case, tmp_path):
    base_case["positions"][0]["normal_volume"] = base_case["positions"][0].pop(
        "normal_volume_ml")
    with pytest.raises(UnknownNameError) as info:
        parse_case(base_case)
    assert "did you mean 'normal_volume_ml'?" in str(info.value)
    site = {"schema": catalogue.SITE_LIMITS_SCHEMA, "site": "X", "lung_mas": "ct",
            "products": {}}
    with pytest.raises(UnknownNameError) as info:
        catalogue.validate_site_limits(site)
    assert "did you mean 'lung_mass'?" in str(info.value)
    site = {"schema": catalogue.SITE_LIMITS_SCHEMA, "products": {"therasphere":
                                                                 {"normal_liver": 70}}}
    with pytest.raises(UnknownNameError) as info:
        catalogue.validate_site_limits(site)
    assert "did you mean 'normal_liver_gy'?" in str(info.value)


def test_far_from_any_field_gets_no_suggestion(base_case):
    base_case["colour"] = "blue"
    with pytest.raises(UnknownNameError) as info:
        parse_case(base_case)
    assert "did you mean" not in str(info.value)


# --- help lists the choices ---------------------------------------------------------------

def _help(command):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return " ".join(sub.choices[command].format_help().split())


def test_help_lists_products_methods_goals_and_lung_mass():
    text = _help("measure")
    for word in (*catalogue.product_keys(), "single-compartment", "partition", "bsa",
                 "tumour_dose_gy", "normal_dose_gy", "ct,convention", "--quiet"):
        assert word in text, word
    assert "kernel" in _help("dose") and "ldm" in _help("dose") and "--quiet" in _help("dose")
    assert "--quiet" in _help("demo")


# --- every option has a help text ---------------------------------------------------------

def _subparsers(parser, path=("tareplanner",)):
    """(command path, parser) for the main parser and every subcommand, recursively."""
    import argparse
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _subparsers(sub, path + (name,))


def test_every_option_and_positional_of_every_command_has_a_help_text():
    """Bug caught: `replay --json`, `lsf --json`, `report --force`, `validate CASE`,
    `measure --case-id` listed in --help with nothing beside them. Every argument argparse
    shows (all but the hidden, argparse.SUPPRESS ones) must say what it is."""
    import argparse
    missing = []
    commands = 0
    for path, parser in _subparsers(build_parser()):
        commands += 1
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{' '.join(path)} {c.dest}" for c in action._choices_actions
                            if not (c.help or "").strip()]
                continue
            if action.help == argparse.SUPPRESS:
                continue
            if not (action.help or "").strip():
                missing.append(f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
    assert commands > 10                                 # the walk reached the subcommands
    assert missing == []


def test_help_says_what_replay_replays_and_why_the_sizes_differ():
    """replay also replays administration records; phantom's default size (standard) is not
    the demo's (small), and both helps say so."""
    replay = _help("replay")
    assert "administration record" in replay and "tareplanner.administration/1" in replay
    phantom, demo = _help("phantom"), _help("demo")
    assert "default: standard" in phantom and "demo uses small" in phantom
    assert "default: small" in demo and "phantom defaults to standard" in demo
    assert build_parser().parse_args(["demo"]).size == "small"
    assert build_parser().parse_args(["demo", "-o", "DIR"]).out == "DIR"
    assert build_parser().parse_args(["phantom", "x"]).size == "standard"


# --- did you mean, for names and choices --------------------------------------------------

def test_mistyped_product_and_method_on_the_command_line_get_a_suggestion(tmp_path, no_images,
                                                                          capsys):
    """Bug caught: '--product therasfere' answered with the list of products and no hint,
    while a mistyped case field got one."""
    argv = _measure_argv(tmp_path)
    argv[argv.index("--product") + 1] = "therasfere"
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tareplanner: error: --product: got 'therasfere'")
    assert "did you mean 'therasphere'?" in err
    argv = _measure_argv(tmp_path, "--method", "partiton")
    assert main(argv) == 2
    assert "did you mean 'partition'?" in capsys.readouterr().err
    argv = _measure_argv(tmp_path, "--goal", "tumor_dose_gy=200")
    assert main(argv) == 2
    assert "did you mean 'tumour_dose_gy'?" in capsys.readouterr().err


@pytest.mark.parametrize("argv, hint", [
    (["plna", "case.json"], "did you mean 'plan'?"),
    (["dose", "--method", "kernal", "--measurement", "m", "--plan", "p", "--out", "d"],
     "did you mean 'kernel'?"),
    (["measure", "--lung-mass", "convension", "--ct", "c", "--spect", "s", "--product", "x"],
     "did you mean 'convention'?"),
])
def test_mistyped_choice_of_argparse_gets_a_suggestion(capsys, argv, hint):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice" in err and hint in err, err


def test_mistyped_product_and_method_in_a_case_file_get_a_suggestion(base_case):
    base_case["product"] = "Therasfere"
    with pytest.raises(UnknownNameError) as info:
        parse_case(base_case)
    assert "did you mean 'therasphere'?" in str(info.value)
    base_case["product"], base_case["method"] = "therasphere", "partiton"
    with pytest.raises(UnknownNameError) as info:
        parse_case(base_case)
    assert "did you mean 'partition'?" in str(info.value)


def test_unknown_field_message_says_unknown_field_not_got(base_case):
    """Bug caught: "patient.heigth_cm: got 'heigth_cm'; allowed: fields id, ..." for a
    mistyped field: the field's name given as if it were its value. The allowed fields are
    those of a case's patient block (docs/case-format.md)."""
    base_case["patient"]["heigth_cm"] = 170
    with pytest.raises(UnknownNameError) as info:
        parse_case(base_case)
    message = str(info.value)
    assert message.startswith("patient: unknown field 'heigth_cm'; did you mean 'height_cm'? "
                              "allowed: id, height_cm, weight_kg"), message
    assert "got" not in message
    top = dict(base_case)
    del top["patient"]
    top["lung_shunt_fractoin"] = top.pop("lung_shunt_fraction")
    with pytest.raises(UnknownNameError) as info:
        parse_case(top)
    assert str(info.value).startswith("unknown field 'lung_shunt_fractoin'; did you mean "
                                      "'lung_shunt_fraction'? allowed: schema, ")


# --- file outputs need an existing folder -------------------------------------------------

def test_file_outputs_refuse_a_missing_folder(tmp_path, base_case, write_case, no_images,
                                              capsys):
    """Bug caught: `plan -o /nonexistent/dir/plan.json` made /nonexistent/dir (a mistyped
    folder name left the record where nobody looks). Every file output refuses a missing
    folder with exit 2, naming the option and the folder, and makes nothing."""
    case = str(write_case(base_case, "input_case.json"))
    missing = tmp_path / "no such folder" / "deeper"
    for argv, option in (
            (["plan", case, "-o", str(missing / "plan.json")], "-o"),
            (["report", "plan.json", "-o", str(missing / "report.pdf")], "-o"),
            (["directive", "plan.json", "-o", str(missing / "directive.json")], "-o"),
            (["administer", "directive.json", "-o", str(missing / "admin.json")], "-o"),
            (_measure_argv(tmp_path)[:-2] + ["-o", str(missing / "case.json")], "-o"),
            (_measure_argv(tmp_path) + ["--measurement-output", str(missing / "m.json")],
             "--measurement-output")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(f"tareplanner: error: {option}: got '{missing}"), err
        assert f"the folder {missing} does not exist" in err
        assert not (tmp_path / "no such folder").exists()
