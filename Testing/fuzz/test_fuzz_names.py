"""Names that end up in file names, DICOM labels and the PDF: positions, tumours, case and
patient identifiers. The rule (docs/cli.md): 1 to 64 characters (the DICOM LO length),
no control characters, no path separator, not '.' or '..'."""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from .hostile import FUZZ
from tareplanner.errors import FieldValueError
from tareplanner.records.fields import check_name


@FUZZ
@given(name=st.text(max_size=80))
def test_accepted_names_are_safe_everywhere(tmp_path_factory, name):
    """Every accepted name is a single file-name component inside its folder, fits a DICOM
    LO element, holds no line break or control character (one PDF line), and survives a
    JSON round trip; every other name is refused naming the field (before: any non-empty
    string passed, '..' or 'a/b' included)."""
    try:
        check_name(name, "positions[0].name")
    except FieldValueError as exc:
        assert exc.field == "positions[0].name"
        return
    assert 1 <= len(name) <= 64 and name.strip()
    assert not any(unicodedata.category(c).startswith("C") for c in name)
    assert "/" not in name and "\\" not in name and name.strip() not in (".", "..")
    folder = tmp_path_factory.mktemp("names")
    path = folder / f"{name}.json"
    assert path.resolve().parent == folder.resolve()
    path.write_text(json.dumps({"name": name}, ensure_ascii=False), encoding="utf-8")
    assert json.loads(path.read_text(encoding="utf-8"))["name"] == name


@pytest.mark.parametrize("name", ["a/b", "a\\b", ".", "..", " .. ", "", "   ", "x" * 65,
                                  "a\nb", "a\rb", "a\tb", "\x00", "a\x1b[31m", "\u202e",
                                  "\u2028", "\ud800"])
def test_hostile_names_refused(name):
    with pytest.raises(FieldValueError, match="positions"):
        check_name(name, "positions")


def test_seg_label_longer_than_64_refused_not_cut(phantom_dir, tmp_path):
    """A structure named from a long position name ('normal liver (...)') was cut to 64
    characters in the SEG, so two structures could share a label; now refused by name and
    nothing written."""
    from tareplanner.dicom.seg import export_seg
    ct = phantom_dir / "dicom" / "ct"
    files = sorted(ct.iterdir())
    import pydicom
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    shape = (len(files), int(first.Rows), int(first.Columns))
    mask = np.zeros(shape, bool)
    mask[10:12, 20:30, 20:30] = True
    name = "normal liver (" + "x" * 60 + ")"
    out = tmp_path / "seg.dcm"
    with pytest.raises(FieldValueError, match="SEG segment label"):
        export_seg({name: mask}, {name: "normal"}, ct, out)
    assert list(tmp_path.iterdir()) == []


@FUZZ
@given(counts=st.lists(st.one_of(st.floats(0, 1e308), st.sampled_from([0.0, 1e308, 5e-324])),
                       min_size=4, max_size=4))
def test_lsf_counts_give_a_fraction_or_a_named_refusal(counts):
    """Planar counts up to 1e308: the LSF printed is a finite fraction equal to
    GM_lung / (GM_lung + GM_liver) computed in logarithms, or the counts are refused (exit
    2); before, sqrt(1e308 * 1e308) overflowed and 'LSF nan' was printed with exit 0."""
    import math

    from .hostile import run_cli
    outcome = run_cli(["lsf", "--lung-anterior", repr(counts[0]), "--lung-posterior",
                       repr(counts[1]), "--liver-anterior", repr(counts[2]),
                       "--liver-posterior", repr(counts[3]), "--json"])
    if outcome.code == 2:
        assert len(outcome.err.strip().splitlines()) == 1
        return
    assert outcome.code == 0, outcome.err
    lsf = json.loads(outcome.out, parse_constant=pytest.fail)["lung_shunt_fraction"]
    assert 0.0 <= lsf <= 1.0
    la, lp, va, vp = counts
    if min(counts) > 0:
        log_ratio = 0.5 * (math.log(va) + math.log(vp) - math.log(la) - math.log(lp))
        assert lsf == pytest.approx(1.0 / (1.0 + math.exp(log_ratio)) if log_ratio < 700
                                    else 0.0, rel=1e-9, abs=1e-300)


def test_phantom_output_that_is_a_file_refused(sandbox):
    """phantom OUT and demo --out where the folder (or a parent) is a file: tracebacks
    (NotADirectoryError, FileExistsError) before."""
    a_file = sandbox.out / "file"
    a_file.write_text("x")
    from .hostile import assert_refused, snapshot
    before = snapshot(sandbox.out)
    for target in (a_file, a_file / "sub"):
        assert_refused(sandbox.run(["phantom", target, "--size", "small"]), "OUT",
                       out=sandbox.out, out_before=before)
    assert_refused(sandbox.run(["phantom", sandbox.out / "p", "--seed", "-1"]), "--seed",
                   out=sandbox.out, out_before=before)
    for target in (a_file, a_file / "sub"):
        assert_refused(sandbox.run(["demo", "--out", target]), "--out", out=sandbox.out,
                       out_before=before)
