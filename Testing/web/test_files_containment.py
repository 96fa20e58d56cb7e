"""The data-folder guard (tareplanner.web.files) against the ways a containment check goes
wrong, each test naming the bug it catches. The expected answers are written out by hand
from the folder built in the fixture: which names lie inside it, which outside, and the
message each refusal must carry (field, the value given, what is allowed)."""

import os

import pytest

from tareplanner.web.files import (OUTPUT_SUBFOLDER, OutsideDataFolderError, content_type,
                                   list_folders, relative_name, resolve_inside)


@pytest.fixture
def tree(tmp_path):
    """tmp/data (the data folder) beside tmp/data-evil, a sibling whose name starts with the
    data folder's name; links inside data lead to the sibling."""
    data = tmp_path / "data"
    evil = tmp_path / "data-evil"
    (data / "a" / "b" / "c" / "d").mkdir(parents=True)
    (data / ".hidden").mkdir()
    (data / "output" / "run").mkdir(parents=True)
    (data / "plan.json").write_text("{}")
    evil.mkdir()
    (evil / "secret.json").write_text("{}")
    os.symlink(evil / "secret.json", data / "to-sibling.json")
    os.symlink(evil, data / "sibling-folder")
    return data


def test_a_sibling_folder_sharing_the_name_prefix_is_outside(tree):
    """Bug caught: containment tested as a string prefix (str(target).startswith(str(root))):
    /tmp/x/data-evil/secret.json starts with /tmp/x/data and would be served."""
    for name, kind in (("to-sibling.json", "file"), ("sibling-folder", "dir"),
                       ("sibling-folder/secret.json", "file"), ("to-sibling.json", "any")):
        with pytest.raises(OutsideDataFolderError) as error:
            resolve_inside(tree, name, kind=kind)
        assert error.value.value == name
        assert error.value.allowed == ("a path relative to the data folder, inside it (links "
                                       "leading out of it are not followed)")
    assert "sibling-folder" not in list_folders(tree)


def test_the_data_folder_itself_is_inside(tree):
    """Bug caught: 'target != root' dropped (the folder itself refused) or the test turned
    round. '.' names the data folder; it is a folder, not a file."""
    assert resolve_inside(tree, ".", kind="dir") == tree.resolve()
    assert resolve_inside(tree, ".", kind="any") == tree.resolve()
    with pytest.raises(OutsideDataFolderError):
        resolve_inside(tree, ".", kind="file")


@pytest.mark.parametrize("name, why", [
    ("", "an empty path or a NUL byte is not"),
    ("plan.json\x00", "an empty path or a NUL byte is not"),
    ("plan%2Ejson", "percent-encoded characters are not decoded"),
    ("a\\b", "backslashes are not"),
    ("/plan.json", "absolute paths are not"),
    ("~/plan.json", "absolute paths are not"),
    ("a/../plan.json", "'..' is not"),
    ("missing.json", "it does not exist"),
    ("a", "a file"),
])
def test_each_refusal_names_field_value_and_reason(tree, name, why):
    """Bug caught: a refusal that loses the value given, the field or the reason (the
    message is what the page shows); and the default field being anything but 'path'."""
    with pytest.raises(OutsideDataFolderError) as error:
        resolve_inside(tree, name)
    assert (error.value.field, error.value.value) == ("path", name)
    assert error.value.allowed == f"a path relative to the data folder, inside it ({why})"


def test_a_file_asked_for_as_a_folder_is_refused_with_the_reason(tree):
    """Bug caught: kind='dir' not checked (a file handed to the folder reader)."""
    with pytest.raises(OutsideDataFolderError) as error:
        resolve_inside(tree, "plan.json", field="folder", kind="dir")
    assert (error.value.field, error.value.value) == ("folder", "plan.json")
    assert error.value.allowed.endswith("(a folder)")


def test_a_missing_name_is_refused_whatever_the_kind(tree):
    """Bug caught: the target resolved non-strictly: with kind='any' a name that does not
    exist would come back as a path."""
    for kind in ("any", "dir", "file"):
        with pytest.raises(OutsideDataFolderError) as error:
            resolve_inside(tree, "nothing/here", kind=kind)
        assert error.value.allowed.endswith("(it does not exist)")


def test_percent_without_an_encoding_is_a_plain_name(tree):
    """Bug caught: every '%' refused ('and' turned to 'or'), or the decoding test inverted:
    '100%' does not decode to anything else, so it is an ordinary file name."""
    (tree / "100%").write_text("x")
    assert resolve_inside(tree, "100%") == (tree / "100%").resolve()
    (tree / "x~").write_text("x")                       # a '~' that does not start the name
    assert resolve_inside(tree, "x~") == (tree / "x~").resolve()
    (tree / "..x").write_text("x")                      # a name starting with two dots
    assert resolve_inside(tree, "..x") == (tree / "..x").resolve()


def test_folder_list_depth_hidden_and_output(tree):
    """Bug caught: the depth limit off by one, hidden folders listed, the output folder or
    the kind of the check changed. By hand: a, a/b, a/b/c are within 3 levels (a/b/c/d is
    the 4th); .hidden and output are left out; sibling-folder leads out."""
    assert list_folders(tree) == ["a", "a/b", "a/b/c"]
    assert list_folders(tree, depth=1) == ["a"]
    assert list_folders(tree, exclude=()) == ["a", "a/b", "a/b/c", OUTPUT_SUBFOLDER,
                                              f"{OUTPUT_SUBFOLDER}/run"]
    assert OUTPUT_SUBFOLDER == "output"


def test_relative_name_and_content_type(tree):
    """Bug caught: names not relative to the data folder, or an unknown type not sent as
    bytes (application/octet-stream, RFC 2046 s. 4.5.1)."""
    assert relative_name(tree, tree / "a" / "b") == "a/b"
    assert content_type(tree / "plan.json") == "application/json"
    assert content_type(tree / "blob.unknownext") == "application/octet-stream"


def test_a_data_folder_that_does_not_exist_is_the_servers_error(tmp_path):
    """Bug caught: the data folder resolved non-strictly: a missing --data folder would list
    no folders and refuse every request as if the page had asked for something outside,
    hiding the server's misconfiguration. Expected: FileNotFoundError (not a refusal)."""
    missing = tmp_path / "no-such-folder"
    with pytest.raises(FileNotFoundError):
        list_folders(missing)
    with pytest.raises(FileNotFoundError):
        relative_name(missing, missing / "a")
    with pytest.raises(FileNotFoundError):
        resolve_inside(missing, "a", kind="any")
