"""Segment editing on the web page's model (tareplanner.web.segment_editing), headless on
trame-slicer's segment editor and slicer-core: each effect changes the chosen segment by the
number of voxels computed by hand or by another tool (numpy, scipy, SimpleITK), an edit marks
the steps that read the segment outdated through the guided workflow's step log (a plan made
before it is refused for the directive), an undo makes them current again, and measuring again
reads the edited masks.

The synthetic patient's CT grid is 2 x 2 x 3 mm (columns i along R-L, rows j along A-P,
slices k along S-I); every expected voxel count below is worked out on that grid.

Needs the 'web' extra (trame-slicer); skipped without it (the default run)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("trame_slicer", reason="needs the 'web' extra (trame-slicer)")

import SimpleITK as sitk  # noqa: E402
import vtk  # noqa: E402
from scipy import ndimage  # noqa: E402
from trame_slicer.core import SlicerApp  # noqa: E402

from tareplanner.mrml import guided  # noqa: E402
from tareplanner.mrml.results import record_from_text_node  # noqa: E402
from tareplanner.mrml.segmentations import masks_from_segmentation  # noqa: E402
from tareplanner.mrml.volumes import image_from_volume_node  # noqa: E402
from tareplanner.web.segment_editing import SegmentEditing  # noqa: E402
from tareplanner.web.session import Session  # noqa: E402

OUTDATED, CURRENT = guided.step_log.OUTDATED, guided.step_log.CURRENT


def _loaded(folder):
    """The synthetic patient loaded as the page loads it, with the page's editor."""
    app = SlicerApp()
    session = Session(app.scene, folder)
    ok, text = session.run("load")
    assert ok, text
    editor = SegmentEditing(session, app.segmentation_editor)
    assert editor.bind()
    return editor


@pytest.fixture
def editing(tmp_path):
    return _loaded(tmp_path)


@pytest.fixture(scope="module")
def unchanged(tmp_path_factory):
    """One loaded patient for the tests that must leave it unchanged."""
    return _loaded(tmp_path_factory.mktemp("unchanged"))


def _ids(editing) -> dict[str, str]:
    return {s["name"]: s["id"] for s in editing.segments()}


def _masks(editing) -> dict[str, np.ndarray]:
    p = editing.session.p
    return masks_from_segmentation(p.segmentation.GetScene(), p.segmentation, p.ctVolume)


def _ras(editing, i: float, j: float, k: float) -> list[float]:
    """The RAS point (mm) of voxel (column i, row j, slice k) of the CT."""
    matrix = vtk.vtkMatrix4x4()
    editing.session.p.ctVolume.GetIJKToRASMatrix(matrix)
    return list(matrix.MultiplyPoint([i, j, k, 1.0])[:3])


def _added(before, after, name) -> np.ndarray:
    return after[name] & ~before[name]


def test_grid_is_the_one_the_counts_are_worked_on(editing):
    """Bug caught: a change of the synthetic CT's grid silently invalidating the hand counts
    below (they are worked out on 2 x 2 x 3 mm)."""
    assert editing.session.p.ctVolume.GetSpacing() == pytest.approx((2.0, 2.0, 3.0))
    assert [s["title"] for s in editing.segments()] == ["T1 (tumour)", "T2 (tumour)",
                                                        "T3 (tumour)", "liver (liver)"]


def test_paint_adds_the_brush_voxels_worked_by_hand(editing):
    """Bugs caught: a brush in screen units or of the radius taken as the diameter, a disc
    more than one slice thick, a paint that takes the voxels from the other segments (the
    liver holds the tumours: segments overlap).

    Sphere of diameter 8.8 mm (radius 4.4 mm) centred on a voxel of the 2 x 2 x 3 mm grid:
    voxels whose centre is within 4.4 mm, i.e. 4(i^2 + j^2) + 9 k^2 <= 19.36:
    k = 0: i^2 + j^2 <= 4.84 -> (0,0), 4 x (1,0), 4 x (1,1), 4 x (2,0) = 13;
    k = +-1: i^2 + j^2 <= 2.59 -> 1 + 4 + 4 = 9 each; |k| = 2 gives 36 > 19.36. Total 31.
    (No voxel centre lies within 4 % of the radius, so the brush's polygonal sphere gives
    the same count: the nearest inside is sqrt(17) = 4.12 mm, the nearest outside 4.47 mm.)

    Disc (the slice views' brush) of diameter 18 mm in the axial view: one slice, voxels with
    (2i)^2 + (2j)^2 <= 81, i.e. i^2 + j^2 <= 20.25: i = 0: |j| <= 4 -> 9; |i| = 1, 2:
    |j| <= 4 -> 4 x 9 = 36; |i| = 3: |j| <= 3 -> 2 x 7 = 14; |i| = 4: |j| <= 2 -> 2 x 5 = 10.
    Total 69 (nearest inside sqrt(20) = 4.47 voxels, outside 5: clear of the 32-gon)."""
    ids = _ids(editing)
    editing.select(ids["T1"])
    before = _masks(editing)
    editing.set_brush(8.8, sphere=True)
    editing.paint([_ras(editing, 10, 10, 10)])
    after = _masks(editing)
    added = _added(before, after, "T1")
    assert int(added.sum()) == 31
    assert np.argwhere(added).mean(axis=0) == pytest.approx([10, 10, 10])   # [k, j, i]
    for name in ("T2", "T3", "liver"):
        assert np.array_equal(after[name], before[name]), name

    editing.set_brush(18.0, sphere=False)
    editing.paint([_ras(editing, 40, 20, 12)], plane="axial")
    again = _masks(editing)
    disc = _added(after, again, "T1")
    assert int(disc.sum()) == 69
    assert set(np.argwhere(disc)[:, 0]) == {12}                  # one axial slice
    # the disc lies in the plane of the view it is drawn in: one coronal row, one sagittal
    # column
    for plane, axis, index in (("coronal", 1, 60), ("sagittal", 2, 100)):
        previous = again
        editing.paint([_ras(editing, 100, 60, 45)], plane=plane)
        again = _masks(editing)
        layer = np.argwhere(_added(previous, again, "T1"))
        assert len(layer) and set(layer[:, axis]) == {index}, plane


def test_erase_removes_the_brush_and_undo_restores(editing):
    """Bugs caught: erase taking the voxels of another segment, or a disc erasing other than
    what the same disc paints; undo not restoring the voxels. Paint a disc (69 voxels, see
    above) outside every tumour, erase the same disc: T1 is voxel for voxel what it was;
    undo twice (the erase, the paint) likewise; redo gives the painted disc back."""
    editing.select(_ids(editing)["T1"])
    editing.set_brush(18.0, sphere=False)
    original = _masks(editing)
    point = _ras(editing, 40, 20, 12)
    editing.paint([point])
    painted = _masks(editing)
    assert int(painted["T1"].sum() - original["T1"].sum()) == 69
    editing.paint([point], erase=True)
    erased = _masks(editing)
    assert np.array_equal(erased["T1"], original["T1"])
    assert np.array_equal(erased["liver"], original["liver"])
    editing.undo()
    assert np.array_equal(_masks(editing)["T1"], painted["T1"])
    editing.undo()
    assert np.array_equal(_masks(editing)["T1"], original["T1"])
    editing.redo()
    assert np.array_equal(_masks(editing)["T1"], painted["T1"])


def test_threshold_sets_the_segment_to_the_range_inside_the_editable_area(editing):
    """Bugs caught: the threshold adding to the segment instead of setting it (Slicer's
    Threshold effect sets it), exclusive bounds, a threshold leaking outside the editable
    area. Expected by numpy on the CT array: inside the liver, the voxels from 40 to 70 HU
    inclusive; outside the liver the segment is left as it was."""
    p = editing.session.p
    ids = _ids(editing)
    ct = sitk.GetArrayFromImage(image_from_volume_node(p.ctVolume))
    before = _masks(editing)
    editing.select(ids["T2"])
    editing.set_area(ids["liver"])
    editing.threshold(40, 70)
    after = _masks(editing)
    liver = before["liver"]
    expected = (liver & (ct >= 40) & (ct <= 70)) | (before["T2"] & ~liver)
    assert (ct[liver] == 40).any() or (ct[liver] == 70).any()    # the bounds are met
    assert np.array_equal(after["T2"], expected)
    assert not np.array_equal(after["T2"], before["T2"])
    assert np.array_equal(after["liver"], liver)
    ok, text = editing.run("threshold range", value=[80, 20])
    assert not ok and text.startswith("threshold: got 80 to 20 HU")


def test_islands_keep_the_largest_and_remove_the_small_at_their_edge(editing):
    """Bugs caught: islands counted 26-connected, or the minimum size taken as 'at most'.
    A 31-voxel sphere (see the paint test) painted into T2 far from it: 'keep largest'
    leaves the largest 6-connected component (scipy.ndimage.label); 'remove small' keeps an
    island of exactly the minimum size (31) and removes it at 32."""
    editing.select(_ids(editing)["T2"])
    editing.set_brush(8.8, sphere=True)
    original = _masks(editing)["T2"]
    labels, count = ndimage.label(original)
    largest = labels == (1 + int(np.argmax(ndimage.sum(original, labels, range(1, count + 1)))))
    editing.paint([_ras(editing, 10, 10, 10)])
    with_blob = _masks(editing)["T2"]
    assert int(with_blob.sum() - original.sum()) == 31
    editing.islands("keep largest")
    assert np.array_equal(_masks(editing)["T2"], largest)

    editing.paint([_ras(editing, 10, 10, 10)])
    blob = _masks(editing)["T2"]
    editing.islands("remove small", 31)
    assert np.array_equal(_masks(editing)["T2"], blob)          # 31 >= 31: kept
    editing.islands("remove small", 32)
    labels, count = ndimage.label(blob)
    sizes = ndimage.sum(blob, labels, range(1, count + 1))
    expected = np.isin(labels, 1 + np.flatnonzero(sizes >= 32))
    assert np.array_equal(_masks(editing)["T2"], expected)

    editing.paint([_ras(editing, 10, 10, 10)])
    editing.island_at(_ras(editing, 10, 10, 10), "remove clicked")
    assert np.array_equal(_masks(editing)["T2"], expected)


def test_smoothing_median_matches_scipy_and_closing_fills_a_hole(editing):
    """Bugs caught: a kernel in voxels instead of mm, a smoothing that leaks into the other
    segments. Median with a 6 mm kernel on 2 x 2 x 3 mm: the nearest odd number of voxels to
    6/2 = 3 columns and rows and 6/3 = 2 slices (rounded up to 3): a 3 x 3 x 3 median, which
    scipy.ndimage.median_filter gives independently. A one-voxel hole (erased with a 1 mm
    sphere) is filled by a closing and a one-voxel speck removed by an opening."""
    ids = _ids(editing)
    editing.select(ids["T1"])
    editing.set_brush(8.8, sphere=True)
    editing.paint([_ras(editing, 60, 40, 30)])          # a bump to smooth away
    before = _masks(editing)
    editing.smooth("median", 6.0)
    after = _masks(editing)
    expected = ndimage.median_filter(before["T1"].astype(np.uint8), size=3,
                                     mode="constant").astype(bool)
    assert not np.array_equal(expected, before["T1"])
    assert np.array_equal(after["T1"], expected)
    assert np.array_equal(after["liver"], before["liver"])

    centre = np.round(np.argwhere(after["T1"]).mean(axis=0)).astype(int)   # [k, j, i]
    assert after["T1"][tuple(centre)]
    editing.set_brush(1.0, sphere=True)
    editing.paint([_ras(editing, centre[2], centre[1], centre[0])], erase=True)
    holed = _masks(editing)["T1"]
    assert int(after["T1"].sum() - holed.sum()) == 1
    editing.smooth("closing", 6.0)
    closed = _masks(editing)["T1"]
    assert closed[tuple(centre)] and np.all(closed >= holed)

    editing.paint([_ras(editing, 10, 10, 10)])           # a one-voxel speck
    specked = _masks(editing)["T1"]
    assert specked[10, 10, 10]
    editing.smooth("opening", 6.0)
    opened = _masks(editing)["T1"]
    assert not opened[10, 10, 10] and np.all(opened <= specked)


@pytest.mark.parametrize("what, options, field", [
    ("brush", {"diameter_mm": "abc"}, "brush diameter (mm): got 'abc'"),
    ("brush", {"diameter_mm": 0.0}, "brush diameter (mm): got '0.0'"),
    ("brush", {"diameter_mm": float("nan")}, "brush diameter (mm): got 'nan'"),
    ("brush", {"diameter_mm": 1e9}, "brush diameter (mm): got '1000000000.0'"),
    ("brush", {"sphere": "yes"}, "sphere brush: got 'yes'"),
    ("select", {"value": "../liver"}, "segment to edit: got '../liver'"),
    ("effect", {"value": "scissors"}, "effect: got 'scissors'"),
    ("threshold range", {"value": [1, "x" * 5000]}, "threshold to (HU): got 'xxxx"),
    ("threshold range", {"value": None}, "threshold range: got 'None'"),
    ("islands minimum", {"value": -1}, "minimum island size (voxels): got '-1'"),
    ("islands minimum", {"value": 2.5}, "minimum island size (voxels): got '2.5'"),
    ("islands mode", {"value": "split"}, "islands: got 'split'"),
    ("smoothing kernel", {"value": float("inf")}, "smoothing kernel (mm): got 'inf'"),
    ("area", {"value": "nope"}, "editable area: got 'nope'"),
    ("undo", {}, "undo: got nothing to undo"),
    ("format disk", {}, "segment editor action: got 'format disk'"),
])
def test_bad_settings_are_refused_naming_the_field(unchanged, what, options, field):
    """Bug caught: a setting from the page (or a forged request) reaching the editor
    unchecked. Each is refused with the field, the value and what is allowed, and the
    segments are left as they were."""
    editing = unchanged
    before = _masks(editing)
    ok, text = editing.run(what, **options)
    assert not ok and text.startswith(field) and "allowed" in text, text
    assert editing.message == (text, True)
    after = _masks(editing)
    assert all(np.array_equal(after[name], before[name]) for name in before)


def test_no_patient_no_editing(tmp_path):
    """Bug caught: the editor acting on a scene with no segmentation (a traceback)."""
    app = SlicerApp()
    editing = SegmentEditing(Session(app.scene, tmp_path), app.segmentation_editor)
    assert editing.segments() == [] and editing.summary() == ""
    ok, text = editing.run("effect", value="paint")
    assert not ok and "load a patient" in text


def test_an_edit_of_the_liver_outdates_the_steps_that_read_it_and_undo_restores(editing):
    """Bug caught: an edit on the page not reaching the step log (the registration and the
    segmentation step read the liver), or an undo leaving them outdated although the
    segments are as they were."""
    session = editing.session
    ok, text = session.run("lungs")
    assert ok, text
    assert guided.statuses(session.p)["segmentation"].state == CURRENT
    editing.select(_ids(editing)["liver"])
    editing.set_brush(18.0, sphere=False)
    ok, text = editing.run("effect", value="paint")
    assert ok
    editing.paint([_ras(editing, 40, 20, 12)])
    states = guided.statuses(session.p)
    assert states["segmentation"].state == OUTDATED
    assert "liver changed" in states["segmentation"].reason
    assert "[OUTDATED: " in session.panel_titles()["segmentation"]
    assert "outdated: segmentation" in editing.summary()
    ok, text = editing.run("undo")
    assert ok and "outdated" not in text
    assert guided.statuses(session.p)["segmentation"].state == CURRENT


def test_an_edit_outdates_the_plan_and_measuring_again_reads_the_edited_masks(editing):
    """Bugs caught: an edited segment leaving the plan current (the directive then written
    from a plan of the old segments), or measuring again reading the original masks.

    Half of T1 is erased (the erase effect with a box for a brush, its face between two
    columns of voxels at T1's median column): T1 becomes the original voxels on the other
    side of that face (numpy on the original mask), within one voxel layer of half. Half of
    the lungs likewise. The measurement then and the plan are outdated, the directive is
    refused, the registration (which reads the liver only) stays current. Measuring again
    gives T1's volume and counts and the lungs' volume and counts from the edited masks:
    volume = voxels x 0.012 mL; counts = the SPECT read onto the CT grid at each voxel's
    centre (SimpleITK nearest-neighbour resampling) x the voxel volume ratio, summed over
    the mask (docs: imaging/quantities)."""
    session = editing.session
    for action in ("registration", "lungs", "territories", "measurement", "plan"):
        ok, text = session.run(action)
        assert ok, f"{action}: {text}"
    assert session.missing()["directive"] == ""
    p = session.p
    original = _masks(editing)
    ids = _ids(editing)
    ids.update({s["name"]: s["id"] for s in editing.segments()})
    lungs = next(s["name"] for s in editing.segments() if s["role"] == "lung")
    spacing = p.ctVolume.GetSpacing()
    voxel_ml = spacing[0] * spacing[1] * spacing[2] / 1000.0
    kept = {}
    for name in ("T1", lungs):
        mask = original[name]
        k, j, i = np.nonzero(mask)
        cut = int(np.median(i))
        # a box from the face between columns cut-1 and cut to far beyond the mask: its
        # centre on a voxel, half-lengths of whole voxels plus a half
        half = np.array([mask.shape[2], mask.shape[1], mask.shape[0]], float)   # i, j, k
        box = vtk.vtkCubeSource()
        box.SetXLength((2 * half[0] + 1) * spacing[0])
        box.SetYLength((2 * half[1] + 1) * spacing[1])
        box.SetZLength((2 * half[2] + 1) * spacing[2])
        closed = vtk.vtkTriangleFilter()            # one closed surface (shared corners)
        clean = vtk.vtkCleanPolyData()
        clean.SetInputConnection(box.GetOutputPort())
        closed.SetInputConnection(clean.GetOutputPort())
        closed.Update()
        editing.select(ids[name])
        editing.paint([_ras(editing, cut + half[0], np.median(j), np.median(k))], erase=True,
                      glyph=closed.GetOutput())
        kept[name] = mask.copy()
        kept[name][:, :, cut:] = False
        after = _masks(editing)[name]
        assert np.array_equal(after, kept[name]), name
        layer = max(int(mask[:, :, c].sum()) for c in range(mask.shape[2]))
        assert abs(int(after.sum()) - int(mask.sum()) / 2) <= layer, name
    states = guided.statuses(p)
    assert states["registration"].state == CURRENT
    assert states["measurement"].state == OUTDATED
    assert "segments changed" in states["measurement"].reason
    assert states["plan"].state == OUTDATED
    assert "outdated measurement step" in states["plan"].reason
    assert "plan is outdated" in session.missing()["directive"]
    ok, text = session.run("directive")
    assert not ok and "plan is outdated" in text
    assert p.directiveRecord is None

    ok, text = session.run("measurement")
    assert ok, text
    record = record_from_text_node(p.measurementRecord)
    spect = image_from_volume_node(p.spectVolume)
    ct = image_from_volume_node(p.ctVolume)
    counts = sitk.GetArrayFromImage(sitk.Resample(
        sitk.Cast(spect, sitk.sitkFloat32), ct, sitk.Transform(), sitk.sitkNearestNeighbor,
        0.0, sitk.sitkFloat32)).astype(np.float64) * (np.prod(spacing)
                                                      / np.prod(spect.GetSpacing()))
    assert record["volumes_ml"]["tumours"]["T1"] == pytest.approx(
        kept["T1"].sum() * voxel_ml, rel=1e-9)
    [t1] = [t for position in record["positions"] for t in position["tumours"]
            if t["name"] == "T1"]
    assert t1["volume_ml"] == pytest.approx(kept["T1"].sum() * voxel_ml, rel=1e-9)
    assert t1["counts"] == pytest.approx(counts[kept["T1"]].sum(), rel=1e-5)
    uncorrected = record["lung_shunt_uncorrected"]
    assert uncorrected["lung_volume_ml"] == pytest.approx(kept[lungs].sum() * voxel_ml,
                                                          rel=1e-9)
    assert uncorrected["lung_counts"] == pytest.approx(counts[kept[lungs]].sum(), rel=1e-5)
    assert guided.statuses(p)["plan"].state == OUTDATED
    ok, text = session.run("plan")
    assert ok, text
    assert session.missing()["directive"] == ""
    ok, text = session.run("directive")
    assert ok, text
