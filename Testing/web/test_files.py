"""The web page's data-folder guard (tareplanner.web.files): nothing outside the --data
folder is served, listed or read: '..', absolute paths, percent-encoded traversal,
backslashes and symbolic links leading out are refused. No web toolkit needed."""

import os

import pytest

from tareplanner.errors import FieldValueError
from tareplanner.web.files import (OutsideDataFolderError, list_folders, relative_name,
                                   resolve_inside)


@pytest.fixture
def data(tmp_path):
    root = tmp_path / "data"
    (root / "output").mkdir(parents=True)
    (root / "output" / "plan.json").write_text("{}")
    (root / "patient" / "ct").mkdir(parents=True)
    (root / "patient" / "ct" / "1.dcm").write_bytes(b"x")
    (tmp_path / "secret.txt").write_text("secret")
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "secret.txt", root / "link-out.txt")
    os.symlink(tmp_path / "outside", root / "folder-out")
    os.symlink(root / "output" / "plan.json", root / "link-in.json")
    return root


def test_files_inside_are_resolved(data):
    assert resolve_inside(data, "output/plan.json") == (data / "output" / "plan.json").resolve()
    assert resolve_inside(data, "patient/ct", kind="dir") == (data / "patient" / "ct").resolve()
    # a link that stays inside is followed
    assert resolve_inside(data, "link-in.json") == (data / "output" / "plan.json").resolve()
    assert relative_name(data, data / "output" / "plan.json") == "output/plan.json"


@pytest.mark.parametrize("name", [
    "../secret.txt", "output/../../secret.txt", "./../secret.txt",
    "%2e%2e/secret.txt", "..%2Fsecret.txt", "%2E%2E%2Fsecret.txt", "output%2F..%2F..%2Fsecret.txt",
    "..\\secret.txt", "output\\..\\..\\secret.txt",
    "/etc/passwd", "//etc/passwd", "~/secret.txt", "",
    "link-out.txt", "folder-out", "output/plan.json\x00.txt",
    "missing.json", "output",
])
def test_anything_else_is_refused(data, name):
    with pytest.raises(OutsideDataFolderError) as error:
        resolve_inside(data, name, field="download")
    assert isinstance(error.value, FieldValueError)
    assert str(error.value).startswith("download: got ")
    assert "inside it" in str(error.value)


def test_absolute_path_of_a_file_inside_is_refused_too(data):
    with pytest.raises(OutsideDataFolderError):
        resolve_inside(data, str(data / "output" / "plan.json"))


def test_folder_list_stays_inside(data):
    folders = list_folders(data)
    assert folders == ["patient", "patient/ct"]      # not output, not the link leading out
