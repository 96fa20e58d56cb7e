"""The extension's CMake files, configured against a stand-in Slicer package.

A real build needs the Slicer SDK; here ``find_package(Slicer)`` finds a stand-in whose
``slicerMacroBuildScriptedModule`` records what the module would install. The test then
checks that the installed module carries every file the Python package carries (sources and
data files of pyproject's package-data), the .ui and icons, and that the extension metadata
the Extensions Index shows is filled in.
"""

import shutil
import subprocess
import tomllib

import pytest

from conftest import REPO

STAND_IN = {
    "SlicerConfig.cmake": """
set(Slicer_USE_FILE ${CMAKE_CURRENT_LIST_DIR}/UseSlicer.cmake)
set(Slicer_EXTENSION_GENERATE_CONFIG ${CMAKE_CURRENT_LIST_DIR}/Empty.cmake)
set(Slicer_EXTENSION_CPACK ${CMAKE_CURRENT_LIST_DIR}/Empty.cmake)
""",
    "Empty.cmake": "",
    "UseSlicer.cmake": """
macro(slicerMacroBuildScriptedModule)
  cmake_parse_arguments(MY "WITH_GENERIC_TESTS" "NAME" "SCRIPTS;RESOURCES" ${ARGN})
  set(_out "NAME=${MY_NAME}\\n")
  foreach(_f ${MY_SCRIPTS})
    string(APPEND _out "SCRIPT=${_f}\\n")
  endforeach()
  foreach(_f ${MY_RESOURCES})
    string(APPEND _out "RESOURCE=${_f}\\n")
  endforeach()
  foreach(_v HOMEPAGE CATEGORY CONTRIBUTORS DESCRIPTION ICONURL SCREENSHOTURLS DEPENDS)
    string(APPEND _out "EXTENSION_${_v}=${EXTENSION_${_v}}\\n")
  endforeach()
  file(WRITE ${CMAKE_BINARY_DIR}/module-files.txt "${_out}")
endmacro()
""",
}


@pytest.fixture(scope="module")
def configured(tmp_path_factory):
    cmake = shutil.which("cmake")
    assert cmake, "cmake is needed (pip install cmake, part of the test extra)"
    root = tmp_path_factory.mktemp("cmake")
    stand_in = root / "Slicer"
    stand_in.mkdir()
    for name, text in STAND_IN.items():
        (stand_in / name).write_text(text)
    build = root / "build"
    run = subprocess.run([cmake, "-S", str(REPO), "-B", str(build), f"-DSlicer_DIR={stand_in}"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    entries = {}
    for line in (build / "module-files.txt").read_text().splitlines():
        key, _, value = line.partition("=")
        entries.setdefault(key, []).append(value)
    return entries


def _package_files():
    """Files the pip package installs from TAREPlanner/tareplanner, relative to TAREPlanner/."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    base = REPO / "TAREPlanner"
    files = {p.relative_to(base).as_posix() for p in (base / "tareplanner").rglob("*.py")}
    for package, patterns in config["tool"]["setuptools"]["package-data"].items():
        folder = base.joinpath(*package.split("."))
        for pattern in patterns:
            files |= {p.relative_to(base).as_posix() for p in folder.glob(pattern)}
    return files


def test_the_module_installs_every_file_of_the_core_package(configured):
    installed = set(configured["SCRIPT"]) | set(configured["RESOURCE"])
    package = _package_files()
    assert any(f.endswith(".csv") for f in package) and any(f.endswith(".txt") for f in package)
    missing = package - installed
    assert not missing, sorted(missing)
    assert configured["NAME"] == ["TAREPlanner"]
    assert "TAREPlanner.py" in configured["SCRIPT"]
    resources = {p.relative_to(REPO / "TAREPlanner").as_posix()
                 for p in (REPO / "TAREPlanner" / "Resources").rglob("*") if p.is_file()}
    assert {"Resources/UI/TAREPlanner.ui", "Resources/Icons/TAREPlanner.png",
            "Resources/Icons/TAREPlannerSyntheticPatient.png"} <= resources <= installed


def test_every_listed_file_exists(configured):
    for name in configured["SCRIPT"] + configured["RESOURCE"]:
        assert (REPO / "TAREPlanner" / name).is_file(), name


def test_extension_metadata_is_filled_in(configured):
    homepage = configured["EXTENSION_HOMEPAGE"][0]
    assert homepage.startswith("https://github.com/")
    raw = homepage.replace("https://github.com/", "https://raw.githubusercontent.com/") + "/main/"
    urls = configured["EXTENSION_ICONURL"][0].split() + \
        configured["EXTENSION_SCREENSHOTURLS"][0].split()
    assert len(urls) >= 2
    for url in urls:      # images of this repository, at the paths they have here
        assert url.startswith(raw), url
        assert (REPO / url[len(raw):]).is_file(), url
    assert configured["EXTENSION_CATEGORY"] == ["Nuclear Medicine"]
    assert len(configured["EXTENSION_DESCRIPTION"][0]) > 80
