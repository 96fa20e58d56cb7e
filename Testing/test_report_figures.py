"""The sign-off report's figures, checked on the figure objects and on the rasterised page.

The expected positions come from a hand-built dose image whose hot block sits at a known,
flip-asymmetric place in patient coordinates (DICOM LPS: +x the patient's left, +y posterior,
+z superior), and from the marching-squares rule that puts a level between two voxel centres by
linear interpolation.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from tareplanner.records.report import _dvh_page, isodose_figure  # noqa: E402

SPACING_MM = (4.0, 4.0, 4.0)
SIZE = (40, 30, 20)                 # voxels along the image's own i, j, k axes
#: the hot block, in patient coordinates (mm): voxel centres from .. to, inclusive
BLOCK_X_MM = (-60.0, -32.0)         # patient's right
BLOCK_Y_MM = (-40.0, -20.0)         # anterior
BLOCK_Z_MM = (8.0, 20.0)            # superior half
HOT_GY, BACKGROUND_GY = 400.0, 0.0


def _dose_image(direction) -> sitk.Image:
    """A dose image with the hot block at BLOCK_*_MM whatever the direction cosines: each
    voxel's centre is computed here as origin + D · (index · spacing)."""
    d = np.array(direction, float).reshape(3, 3)
    # choose the origin so that the voxel centres cover x -80..76, y -60..56, z -40..36 mm
    corner_low = np.array([-80.0, -60.0, -40.0])
    extent = (np.array(SIZE) - 1) * SPACING_MM
    origin = corner_low + np.where(np.diag(d) < 0, extent, 0.0)
    k, j, i = np.meshgrid(*(np.arange(n) for n in SIZE[::-1]), indexing="ij")
    index_mm = np.stack([i * SPACING_MM[0], j * SPACING_MM[1], k * SPACING_MM[2]])
    x, y, z = (origin[:, None, None, None] + np.einsum("ab,bkji->akji", d, index_mm))
    inside = ((x >= BLOCK_X_MM[0] - 1e-6) & (x <= BLOCK_X_MM[1] + 1e-6)
              & (y >= BLOCK_Y_MM[0] - 1e-6) & (y <= BLOCK_Y_MM[1] + 1e-6)
              & (z >= BLOCK_Z_MM[0] - 1e-6) & (z <= BLOCK_Z_MM[1] + 1e-6))
    dose = np.where(inside, HOT_GY, BACKGROUND_GY).astype(np.float32)
    # a mild gradient so that the maximum is unique: hottest slice z = 8 mm, row y = -40 mm
    dose[inside] += (1e-4 * (BLOCK_Z_MM[1] - z[inside]) + 1e-4 * (BLOCK_Y_MM[1] - y[inside])
                     ).astype(np.float32)
    image = sitk.GetImageFromArray(dose)
    image.SetSpacing(SPACING_MM)
    image.SetOrigin(tuple(origin))
    image.SetDirection(tuple(d.ravel()))
    return image


IDENTITY = (1, 0, 0, 0, 1, 0, 0, 0, 1)
#: stored right-to-left and posterior-to-anterior (as an RAS-ordered volume reads in LPS)
FLIPPED = (-1, 0, 0, 0, -1, 0, 0, 0, 1)


def _contour_vertices(ax, level: float) -> np.ndarray:
    """Vertices (mm) of the isodose line at ``level`` drawn on ``ax``."""
    from matplotlib.contour import ContourSet
    sets = [c for c in ax.collections if isinstance(c, ContourSet)]
    assert sets, "no isodose lines on the panel"
    cs = sets[0]
    k = list(cs.levels).index(level)
    return np.concatenate([p.vertices for p in cs.get_paths()[k:k + 1] if len(p.vertices)])


def _letters(ax) -> dict[str, tuple[float, float]]:
    """Orientation letters on a panel and their positions (axes fraction: 0 left/bottom)."""
    return {t.get_text(): t.get_position() for t in ax.texts
            if (t.get_gid() or "").startswith("orientation-")}


@pytest.mark.parametrize("direction", [IDENTITY, FLIPPED], ids=["LPS", "flipped-x-y"])
def test_isodose_lines_on_their_region_and_orientation_letters(direction):
    """Bugs caught: isodose lines mirrored against the dose image (image and contour drawn
    with different origins: the 300 Gy line of the demo sat ~6 rows from its region), the
    anatomy shown upside down or left-right swapped for an image whose direction cosines
    are not the identity, letters on the wrong sides, a wrong slice position.

    Hand calculation: the block's voxel centres span x -60..-32 mm (patient's right),
    y -40..-20 mm (anterior), z 8..20 mm; dose 400 Gy inside, 0 outside, 4 mm voxels.
    Between the last inside centre and the first outside centre the dose falls linearly by
    400 Gy over 4 mm, so the 300 Gy line runs 1 mm outside the outermost centres:
    x -61..-31 mm, y -41..-19 mm (axial) and z 7..21 mm (coronal).
    """
    fig = isodose_figure(plt, _dose_image(direction))
    axial, coronal = [ax for ax in fig.axes if ax.get_title()][:2]
    # slice positions: the hottest voxel is at z = 8 mm, y = -40 mm (the gradient above)
    assert "z = +8.0 mm" in axial.get_title()
    assert "y = -40.0 mm" in coronal.get_title()

    v = _contour_vertices(axial, 300)
    assert v[:, 0].min() == pytest.approx(-61.0, abs=1e-3)
    assert v[:, 0].max() == pytest.approx(-31.0, abs=1e-3)
    assert v[:, 1].min() == pytest.approx(-41.0, abs=1e-3)
    assert v[:, 1].max() == pytest.approx(-19.0, abs=1e-3)
    v = _contour_vertices(coronal, 300)
    assert v[:, 0].min() == pytest.approx(-61.0, abs=1e-3)
    assert v[:, 0].max() == pytest.approx(-31.0, abs=1e-3)
    assert v[:, 1].min() == pytest.approx(7.0, abs=1e-3)
    assert v[:, 1].max() == pytest.approx(21.0, abs=1e-3)

    # radiological convention: axial anterior up, patient's right on the image left;
    # coronal superior up, patient's right on the left
    letters = _letters(axial)
    assert letters["A"][1] > 0.9 and letters["P"][1] < 0.1
    assert letters["R"][0] < 0.1 and letters["L"][0] > 0.9
    letters = _letters(coronal)
    assert letters["S"][1] > 0.9 and letters["I"][1] < 0.1
    assert letters["R"][0] < 0.1 and letters["L"][0] > 0.9

    # the block (right, anterior, superior) appears where the letters say: axial top-left,
    # coronal top-left; and the rasterised page shows the hot colour there, not at the
    # mirrored place (what the original bug drew)
    fig.set_dpi(100)
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())
    height = pixels.shape[0]
    hot = np.array(matplotlib.colormaps["inferno"](1.0)[:3]) * 255
    for ax, centre, mirrored in ((axial, (-46.0, -30.0), (-46.0, 26.0)),
                                 (coronal, (-46.0, 14.0), (-46.0, -18.0))):
        box = ax.get_window_extent()
        px, py = ax.transData.transform(centre)
        assert px < (box.x0 + box.x1) / 2 and py > (box.y0 + box.y1) / 2
        rgb = pixels[int(round(height - py)), int(round(px)), :3].astype(float)
        assert np.abs(rgb - hot).max() < 30, rgb
        mx, my = ax.transData.transform(mirrored)
        rgb = pixels[int(round(height - my)), int(round(mx)), :3].astype(float)
        assert rgb.max() < 40, rgb                      # inferno's 0 Gy end is black
    plt.close(fig)


def test_dvh_page_planned_and_delivered_share_a_colour(tmp_path):
    """Bugs caught: planned and delivered curves of one structure drawn in different colours
    (the colour cycle ran on across both files), the wrong line style, a structure's
    curve taken from another column. Expected curves are the CSV columns written here."""
    (tmp_path / "dvh_planned.csv").write_text(
        'dose_gy,"T1 (%)","normal liver (%)","lungs (%)"\n'
        "0,100.0,100.0,100.0\n1,90.0,50.0,10.0\n2,20.0,5.0,0.0\n")
    (tmp_path / "dvh_delivered.csv").write_text(
        'dose_gy,"T1 (%)","normal liver (%)","lungs (%)"\n'
        "0,100.0,100.0,100.0\n1,80.0,40.0,5.0\n2,10.0,2.0,0.0\n")
    record = {"predictive": {"structures": {}}}
    fig = _dvh_page(plt, tmp_path, record)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    expected = {"T1": ([100, 90, 20], [100, 80, 10]), "normal liver": ([100, 50, 5], [100, 40, 2]),
                "lungs": ([100, 10, 0], [100, 5, 0])}
    colours = []
    for name, (planned, delivered) in expected.items():
        p, d = lines[f"{name} (planned)"], lines[f"{name} (delivered)"]
        assert p.get_linestyle() == "-" and d.get_linestyle() == "--"
        assert matplotlib.colors.same_color(p.get_color(), d.get_color())
        np.testing.assert_allclose(p.get_ydata(), planned)
        np.testing.assert_allclose(d.get_ydata(), delivered)
        np.testing.assert_allclose(p.get_xdata(), [0, 1, 2])
        colours.append(matplotlib.colors.to_hex(p.get_color()))
    assert len(set(colours)) == len(colours)            # one colour per structure
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:3] == ["T1", "normal liver", "lungs"] and "delivered" in legend
    plt.close(fig)


# ------------------------------------------------------------------ page geometry of the slices

VOXEL_MM = 6.0
#: voxel centres: x -180..174 (60), y -132..126 (44), z -120..120 (41) mm
GRID = {"x": -180.0 + VOXEL_MM * np.arange(60), "y": -132.0 + VOXEL_MM * np.arange(44),
        "z": -120.0 + VOXEL_MM * np.arange(41)}
TUMOUR_MM = (-60.0, 0.0, 0.0)


def _anatomy() -> dict:
    """A body (40 HU in air), a liver sphere, a tumour of 12 mm radius at TUMOUR_MM and
    lungs above z = 60 mm, on the reoriented (k, j, i) grid; the dose falls from 400 Gy at
    the tumour's centre as 400 exp(-r / 15 mm), so the 300, 200, 150, 100 and 50 Gy lines
    are circles of radius 15 ln(400 / D) = 4.3, 10.4, 14.7, 20.8 and 31.2 mm: five lines
    within 27 mm, where matplotlib's clabel piled their labels on each other."""
    z, y, x = np.meshgrid(GRID["z"], GRID["y"], GRID["x"], indexing="ij")
    r = np.sqrt((x - TUMOUR_MM[0]) ** 2 + (y - TUMOUR_MM[1]) ** 2 + (z - TUMOUR_MM[2]) ** 2)
    body = (x / 170) ** 2 + (y / 120) ** 2 < 1
    liver = ((x + 40) ** 2 + y ** 2 + z ** 2 < 80 ** 2) & body
    return {"dose": (400.0 * np.exp(-r / 15.0)).astype(np.float32),
            "ct": np.where(body, 40.0, -1000.0).astype(np.float32),
            "masks": {"liver": liver, "lungs": body & (z > 60), "T1": r < 12},
            "tumours": ["T1"], "coords": (GRID["x"], GRID["y"], GRID["z"]), "oblique": False}


def _boxes(texts, renderer):
    return [(t, t.get_window_extent(renderer)) for t in texts
            if t.get_visible() and t.get_text().strip()]


def _axis_texts(ax):
    """Title, axis labels and tick labels of a panel (or a colour bar)."""
    return ([ax.title, ax.xaxis.label, ax.yaxis.label] + ax.get_xticklabels()
            + ax.get_yticklabels())


def _overlap(a, b) -> bool:
    """Boxes overlapping by more than a hair (0.5 px: boxes that touch do not count)."""
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > 0.5) and (min(a.y1, b.y1) - max(a.y0, b.y0)
                                                          > 0.5)


def test_slice_rows_aligned_letters_clear_of_labels_isodose_labels_apart():
    """Bugs caught on the dose-on-anatomy page: the axial image's 'L' drawn over the coronal
    image's axis label (panels placed at a fixed pitch with too little room between them),
    isodose labels piled on one another around a tumour, and the three images of a row at
    different heights (equal-aspect images shrunk inside equal boxes).

    Expected geometry, from the grid above: the axial image is 360 x 264 mm, the coronal
    360 x 246 mm and the sagittal 264 x 246 mm (voxel-centre span + one voxel); drawn at one
    height, their widths must stand in those ratios and their tops, bottoms and titles line
    up. Every orientation letter lies inside its own image and overlaps no title, axis label
    or tick label of any panel or colour bar; panels (with their labels) do not overlap;
    isodose labels overlap neither each other nor a letter, and at least two of the five
    lines around the tumour get a label, each on its own line."""
    from tareplanner.records.report import anatomy_row
    from tareplanner.records.report_layout import Document

    doc = Document(plt, "title", [], "footer")
    doc.new_page("Dose on the anatomy")
    anatomy = _anatomy()
    centre = (int(np.argmin(np.abs(GRID["z"] - TUMOUR_MM[2]))),
              int(np.argmin(np.abs(GRID["y"] - TUMOUR_MM[1]))),
              int(np.argmin(np.abs(GRID["x"] - TUMOUR_MM[0]))))
    axes, bar = anatomy_row(doc, anatomy, centre, "T1")
    fig = doc.fig
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frames = [ax.get_window_extent(renderer) for ax in axes]

    # one height, widths in the ratio of the images' extents, tops and titles in line
    extents_mm = [(360.0, 264.0), (360.0, 246.0), (264.0, 246.0)]
    for frame, (w, h) in zip(frames, extents_mm):
        assert frame.height == pytest.approx(frames[0].height, abs=0.5)
        assert frame.y0 == pytest.approx(frames[0].y0, abs=0.5)
        assert frame.width / frame.height == pytest.approx(w / h, rel=0.01)
    titles = [ax.title.get_window_extent(renderer) for ax in axes]
    assert max(t.y0 for t in titles) - min(t.y0 for t in titles) < 0.5
    assert all(frames[k].x1 < frames[k + 1].x0 for k in range(2))

    labels = [box for ax in (*axes, bar) for _, box in _boxes(_axis_texts(ax), renderer)]
    letters = []
    for ax, frame in zip(axes, frames):
        own = [(t, b) for t, b in _boxes(ax.texts, renderer)
               if (t.get_gid() or "").startswith("orientation-")]
        assert sorted(t.get_text() for t, _ in own) == sorted(
            {"axial": "ALPR", "coronal": "ILRS", "sagittal": "AIPS"}[
                ax.get_title().split()[0]])
        for text, box in own:
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1, text.get_text()
            assert frame.y0 <= box.y0 and box.y1 <= frame.y1, text.get_text()
            clash = [b for b in labels if _overlap(box, b)]
            assert not clash, (ax.get_title(), text.get_text(), clash)
            letters.append(box)
    tight = [ax.get_tightbbox(renderer) for ax in axes]
    assert all(not _overlap(tight[k], tight[k + 1]) for k in range(2))

    centres = {"axial": (TUMOUR_MM[0], TUMOUR_MM[1]), "coronal": (TUMOUR_MM[0], TUMOUR_MM[2]),
               "sagittal": (TUMOUR_MM[1], TUMOUR_MM[2])}
    for ax in axes:
        texts = [t for t, _ in _boxes(ax.texts, renderer) if t.get_gid() == "isodose-label"]
        isodose = [t.get_window_extent(renderer) for t in texts]
        # the lines are 1.6 to 11.5 pt from the centre at this scale: two labels fit
        assert len(isodose) >= 2, ax.get_title()
        for text in texts:                  # each label sits on its own line
            level = float(text.get_text().split()[0])
            (u, v), (cu, cv) = text.get_position(), centres[ax.get_title().split()[0]]
            assert math.hypot(u - cu, v - cv) == pytest.approx(15 * math.log(400 / level),
                                                                abs=2.5), text.get_text()
        for k, box in enumerate(isodose):
            assert not any(_overlap(box, other) for other in isodose[k + 1:]), ax.get_title()
            assert not any(_overlap(box, letter) for letter in letters)
            frame = ax.get_window_extent(renderer)
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1
    plt.close(fig)


def test_isodose_figure_labels_do_not_overlap():
    """The standalone isodose page places its labels the same way: on the hand-built block
    (400 Gy in, 0 out, 4 mm voxels) the 50 to 300 Gy lines all run within 4 mm of each other
    around it, so clabel's labels overlapped; here no two label boxes overlap."""
    fig = isodose_figure(plt, _dose_image(IDENTITY))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in [ax for ax in fig.axes if ax.get_title()][:2]:
        boxes = [b for t, b in _boxes(ax.texts, renderer) if t.get_gid() == "isodose-label"]
        letters = [b for t, b in _boxes(ax.texts, renderer)
                   if (t.get_gid() or "").startswith("orientation-")]
        assert boxes
        for k, box in enumerate(boxes):
            assert not any(_overlap(box, other) for other in boxes[k + 1:] + letters)
    plt.close(fig)
