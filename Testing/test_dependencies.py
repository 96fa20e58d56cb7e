"""What the Slicer module needs beyond Slicer's own Python (numpy, scipy, SimpleITK, vtk).

The MRML workflow up to voxel dosimetry must run without pydicom, highdicom, matplotlib and
dask; the features that need them fail with a message naming the package, before writing
anything; the module's first-use check finds exactly what is missing or too old.
"""

import json
import subprocess
import sys
import textwrap

from conftest import REPO

from tareplanner import dependencies

BLOCKED = ("pydicom", "highdicom", "matplotlib", "dask", "distributed", "jsonschema")

SCRIPT = textwrap.dedent(f"""
    import importlib.abc, json, sys, tempfile, pathlib
    BLOCK = set({BLOCKED!r})
    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCK:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
    sys.meta_path.insert(0, Blocker())
    importlib.invalidate_caches()

    import numpy as np, SimpleITK as sitk, slicer
    from tareplanner.dependencies import missing
    from tareplanner.imaging.phantom import make_phantom, spec_for_size
    from tareplanner.imaging.phantom_files import label_images
    from tareplanner.mrml import workflow as wf
    from tareplanner.mrml.segmentations import segmentation_from_labels
    from tareplanner.mrml.volumes import volume_node_from_image

    out = {{"missing": [r.distribution for r in missing()]}}
    p = make_phantom(spec_for_size("small", spect_noise=False))
    scene = slicer.vtkMRMLScene()
    ct = volume_node_from_image(scene, p.ct, "CT")
    spect = volume_node_from_image(scene, p.spect, "SPECT")
    labels = label_images(p)
    seg = segmentation_from_labels(scene, labels["tumours"], {{1: "T1", 2: "T2", 3: "T3"}}, ct)
    for name in ("T1", "T2", "T3"):
        wf.set_role(seg, name, "tumour")
    wf.add_mask_segment(seg, ct, "liver", sitk.GetArrayFromImage(labels["liver"]) > 0, "liver")
    wf.add_lungs_from_ct(ct, seg)
    territories = sitk.GetArrayFromImage(labels["territories"])
    for k, name in enumerate(p.cbcts, start=1):
        wf.add_mask_segment(seg, ct, "territory " + name, territories == k, "territory:" + name)
    m = wf.measure_from_nodes(ct, spect, seg)
    record, _ = wf.plan_from_measurement(scene, m, product="therasphere", method="partition",
                                         goal_kind="tumour_dose_gy", goal_value=250)
    nodes, report, _ = wf.predictive_dose_nodes(scene, ct, spect, seg, record)
    out["total_activity_gbq"] = record["total_activity_gbq"]
    out["dose_structures"] = sorted(report)
    folder = pathlib.Path(tempfile.mkdtemp()) / "out"
    try:
        wf.save_outputs(folder, record, m)
    except ImportError as error:
        out["save_error"] = str(error)
    out["written"] = folder.exists() and sorted(x.name for x in folder.iterdir())
    print(json.dumps(out))
""")


def test_workflow_runs_on_slicer_base_libraries_alone():
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO / "TAREPlanner"), "PATH": ""}, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert {"pydicom", "highdicom", "matplotlib"} <= set(out["missing"])
    assert out["total_activity_gbq"] > 0
    assert {"liver", "lungs"} <= set(out["dose_structures"])
    assert "matplotlib" in out["save_error"] and "PDF report" in out["save_error"]
    assert not out["written"]        # nothing partial


def test_missing_finds_old_versions_and_absent_modules(monkeypatch):
    real_version = dependencies.importlib.metadata.version
    monkeypatch.setattr(dependencies.importlib.metadata, "version",
                        lambda d: "2.4.4" if d == "pydicom" else real_version(d))
    names = [r.specifier for r in dependencies.missing()]
    assert "pydicom>=3.0.1" in names
    monkeypatch.setattr(dependencies.importlib.metadata, "version",
                        lambda d: "3.0.1" if d == "pydicom" else real_version(d))
    assert "pydicom>=3.0.1" not in [r.specifier for r in dependencies.missing()]
    absent = dependencies.Requirement("no-such-dist", "no_such_module_tareplanner", None, "x")
    assert dependencies.missing((absent,)) == [absent]


def test_zone_database_check(monkeypatch):
    import zoneinfo

    def no_zones(key):
        raise zoneinfo.ZoneInfoNotFoundError(key)

    monkeypatch.setattr(zoneinfo, "ZoneInfo", no_zones)
    assert "tzdata" in [r.distribution for r in dependencies.missing()]


def test_install_message_and_require_name_the_package():
    reqs = [r for r in dependencies.SLICER_REQUIREMENTS if r.distribution in ("pydicom", "tzdata")]
    text = dependencies.install_message(reqs)
    assert "pydicom>=3.0.1: DICOM reading" in text and "tzdata:" in text
    dependencies.require("pydicom", "matplotlib")   # installed in the test environment


def test_version_comparison():
    v = dependencies._version_tuple
    assert v("3.0.1") > v("3.0.0") and v("3.0.1") >= v("3.0.1") and v("10.0") > v("9.9")
    assert v("3.1.0rc1") == (3, 1, 0) and v("3.0.1.post2") >= v("3.0.1")
