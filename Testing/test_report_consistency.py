"""The report on every page: tables keep their heading and never leave one row alone, the
slice rows carry a colour key, the 3D view draws each tumour in its legend colour, isodose
labels are readable, volumes that differ between pages are explained, the header names the
case, and the voxel plan shows when the dose folder holds it."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tareplanner.records import report_tables as tables  # noqa: E402
from tareplanner.records.report_layout import A4_INCHES, BOTTOM_IN, Document  # noqa: E402

#: the first cell of a row is drawn at a known x (the left margin plus the cell padding)
ROW_X_IN = 0.55 + 0.05


def _rows_per_page(doc: Document, names: set) -> list[int]:
    """How many of the table's rows (first cells whose text is in ``names``) each page holds."""
    return [sum(1 for t in fig.texts if t.get_text() in names) for fig in doc.pages]


def _captions(fig) -> list[str]:
    return [t.get_text() for t in fig.texts if t.get_gid() == "table-caption"]


@pytest.mark.parametrize("n_rows, filled_in", [(6, 0.0), (6, 1.0), (5, 3.0), (3, 2.0),
                                               (12, 2.5), (30, 0.0)])
def test_tables_keep_their_heading_and_never_leave_a_single_row(n_rows, filled_in):
    """Bugs caught: a table split across pages without its heading (the exceedance table
    started page 3 headless), and one row alone on a page (the SIR-Spheres report showed one
    row per page). The page is filled so the table must break at several places: every
    page with rows of the table holds at least two of them (a table of three rows or fewer
    stays whole), and every continuation page names the section, '(continued)'."""
    doc = Document(plt, "t", [], "f")
    doc.new_page()
    doc.heading("Uncertainty")
    doc.y_in = A4_INCHES[1] - BOTTOM_IN - filled_in - 0.6
    names = {f"row {i}" for i in range(n_rows)}
    doc.table(["Name", "Value"], [[f"row {i}", "x"] for i in range(n_rows)], [1, 1])
    counts = [c for c in _rows_per_page(doc, names) if c]
    assert sum(counts) == n_rows
    assert all(c >= 2 for c in counts) or n_rows == 1
    if n_rows <= 3:
        assert len(counts) == 1
    first = next(i for i, c in enumerate(_rows_per_page(doc, names)) if c)
    for fig in doc.pages[first + 1:]:
        if any(t.get_text() in names for t in fig.texts):
            assert _captions(fig) == ["Uncertainty (continued)"]
    plt.close("all")


def test_table_at_the_top_of_a_page_is_captioned():
    """A table pushed to a new page by its height says what it is (the section's name)."""
    doc = Document(plt, "t", [], "f")
    doc.new_page()
    doc.heading("Uncertainty")
    doc.paragraph("text")
    doc.y_in = A4_INCHES[1] - BOTTOM_IN - 0.2
    doc.table(["Limit", "P"], [["a", "1"], ["b", "2"]], [1, 1])
    assert _captions(doc.pages[-1]) == ["Uncertainty"]
    plt.close("all")


@pytest.mark.parametrize("left_in", [0.5, 1.0, 1.3])
def test_a_heading_never_stands_alone_at_the_foot_of_a_page(left_in):
    """Bug caught: "Limits applied and their sources" printed as the last line of page 1
    and its table on page 2 (the heading kept 0.9 in of room, the table's first rows needed
    more). With ``left_in`` inches left, a heading (11 pt: 0.08 + 11/72 x 1.45 = 0.30 in)
    followed by a table whose header and first two rows (3 wrapped lines each at 7.5 pt:
    3 x 0.135 + 0.1 = 0.51 in) need more than that goes to the next page with its table,
    once, and without a second "(continued)" caption."""
    doc = Document(plt, "t", [], "f")
    doc.new_page()
    doc.y_in = A4_INCHES[1] - BOTTOM_IN - left_in
    doc.heading("Limits applied and their sources")
    tall = "word " * 60
    doc.table(["Limit", "Source"], [[f"row {i}", tall] for i in range(4)], [1, 6])
    where = [[t.get_text() for t in fig.texts
              if t.get_text().startswith("Limits applied")] for fig in doc.pages]
    assert where == [[], ["Limits applied and their sources"]]
    assert any(t.get_text() == "row 0" for t in doc.pages[1].texts)
    plt.close("all")


def test_a_heading_stays_where_its_content_fits():
    """The same heading with room for the table's first rows stays on its page, above them."""
    doc = Document(plt, "t", [], "f")
    doc.new_page()
    doc.heading("Tumours")
    doc.table(["Name", "Value"], [["row 0", "x"], ["row 1", "y"]], [1, 1])
    [heading] = [t for t in doc.pages[0].texts if t.get_text() == "Tumours"]
    [row] = [t for t in doc.pages[0].texts if t.get_text() == "row 0"]
    assert len(doc.pages) == 1 and heading.get_position()[1] > row.get_position()[1]
    assert _captions(doc.pages[0]) == []
    plt.close("all")


def test_header_names_the_case_by_its_hash_without_an_id():
    """Bug caught: 'case -' in the header of a plan without case id or patient ID."""
    record = {"case_id": None, "input_sha256": "1934a91538132ca2" + "0" * 48}
    lines = tables.identity_lines({}, record)
    assert "case -" not in " ".join(lines)
    assert "case SHA-256 1934a9153813…" in lines[1]
    assert "case C-7" in tables.identity_lines({}, {"case_id": "C-7"})[1]


def test_volumes_that_differ_between_pages_are_explained():
    """The reported 687.1 mL (plan) against 671.5 mL (dose grid) for the left normal liver:
    the dose table shows both and explains the overlap; 1281.0 against 1281.0 is not
    flagged; 1 % is the edge (694.0 against 687.1 is +1.004 %, flagged; 693.9 is +0.99 %,
    not)."""
    record = {"positions": [{"name": "left", "normal_volume_ml": 687.1, "tumours": []},
                            {"name": "right", "normal_volume_ml": 1281.0, "tumours": []}],
              "warnings": [{"code": "measurement:territories-overlap",
                            "message": "territories of right and left overlap (2.2%)"}]}

    def dose(left_ml):
        return {"predictive": {"structures": {
            "normal liver (left)": {"volume_ml": left_ml, "mean_gy": 68.0, "D70": 1,
                                    "D95": 1, "max_gy": 1},
            "normal liver (right)": {"volume_ml": 1281.0, "mean_gy": 76.9, "D70": 1,
                                     "D95": 1, "max_gy": 1}}}}
    columns, rows, _, _, note = tables.dose_indices_table(dose(671.5), record)
    assert rows[0][1:3] == ["671.5", "687.1"]
    assert "671.5 mL here, 687.1 mL in the plan" in note and "overlap" in note
    assert "normal liver (right)" not in note
    assert tables.dose_indices_table(dose(694.0), record)[4] is not None
    assert tables.dose_indices_table(dose(693.9), record)[4] is None


def test_voxel_plan_table_when_the_dose_folder_holds_one():
    record = {"voxel_plan": {"activities_gbq": {"right": 2.5, "left": 1.25},
                             "tumour_goal_fractions": {"T1": 0.8}, "method": "kernel",
                             "structures": {"T1": {"mean_gy": 180.04, "D70": 150.0},
                                            "lungs": {"mean_gy": 9.0, "D70": 5.0}}}}
    activities, goals, _ = tables.voxel_plan_table(record)
    assert activities[1] == [["right", "2.500"], ["left", "1.250"]]
    assert goals[1] == [["T1", "180.0", "150.0", "80%"], ["lungs", "9.0", "5.0", "-"]]
    assert tables.voxel_plan_table({}) is None


def test_dose_labels_say_normal_liver_or_whole_territory():
    """'Perfused' beside 'Normal liver' was read either way: the columns now say which."""
    columns = tables.positions_table({"positions": []})[0]
    assert any(c.startswith("D_N normal liver") for c in columns)
    assert any(c.startswith("D_perf territory with its tumours") for c in columns)


# ------------------------------------------------------------------ figures

def _anatomy() -> dict:
    """A liver sphere of radius 80 mm with two tumours (T1 at x = -40, T2 at x = +40 mm,
    radius 15 mm) and a dose of 150 Gy within 25 mm of their centres, 60 Gy elsewhere in
    the liver: the 100 Gy isodose surface encloses each tumour, as in a treatment."""
    g = -120.0 + 4.0 * np.arange(61)
    z, y, x = np.meshgrid(g, g, g, indexing="ij")
    liver = x ** 2 + y ** 2 + z ** 2 < 80 ** 2
    t1 = (x + 40) ** 2 + y ** 2 + z ** 2 < 15 ** 2
    t2 = (x - 40) ** 2 + y ** 2 + z ** 2 < 15 ** 2
    near = ((x + 40) ** 2 + y ** 2 + z ** 2 < 25 ** 2) | ((x - 40) ** 2 + y ** 2 + z ** 2
                                                       < 25 ** 2)
    dose = np.where(near, 150.0, np.where(liver, 60.0, 0.0)).astype(np.float32)
    return {"dose": dose, "ct": np.where(liver, 40.0, -1000.0).astype(np.float32),
            "masks": {"liver": liver, "lungs": z > 100, "T1": t1, "T2": t2},
            "tumours": ["T1", "T2"], "coords": (g, g, g), "oblique": False}


def test_3d_tumour_colours_equal_the_legend():
    """Bug caught: T1 cyan drawn teal-grey and T3 yellow drawn orange, seen through the
    translucent liver and the red isodose surface. Each tumour's rendered colour
    (its pixels in its half of the image: the patient's right on the image left) is its
    legend colour within 2 of 255, over most of its disk."""
    from tareplanner.records.report_figures import outline_colours, render_3d

    anatomy = _anatomy()
    image = render_3d(anatomy, 100.0, size_px=240)
    if image is None:
        pytest.skip("VTK cannot render off screen here")
    colours = outline_colours(anatomy)
    for name, half in (("T1", slice(0, 120)), ("T2", slice(120, 240))):
        want = np.round(np.array(mcolors.to_rgb(colours[name])) * 255)
        exact = np.abs(image[:, half].astype(int) - want).max(axis=2) <= 2
        # the tumour's disk: radius 15 mm of a view about 2 x 80 mm wide in 240 px is about
        # 20 px, so some 1000 px; a colour blended with the liver's has none
        assert exact.sum() > 300, f"{name}: {exact.sum()} px of its legend colour {want}"


def test_isodose_labels_at_least_7_pt_and_colour_key_on_slice_rows():
    from tareplanner.records.report import anatomy_row
    from tareplanner.records.report_figures import outline_colours

    anatomy = _anatomy()
    doc = Document(plt, "t", [], "f")
    doc.new_page()
    anatomy_row(doc, anatomy, (30, 30, 20), "T1")
    fig = doc.pages[-1]
    labels = [t for ax in fig.axes for t in ax.texts if t.get_text().endswith(" Gy")]
    assert labels and min(t.get_fontsize() for t in labels) >= 7
    swatches = {p.get_gid(): p.get_facecolor() for p in fig.patches
                if str(p.get_gid()).startswith("colour-key-")}
    colours = outline_colours(anatomy)
    for name in ("liver", "lungs", "T1", "T2"):
        assert mcolors.to_hex(swatches[f"colour-key-{name}"]) == mcolors.to_hex(colours[name])
    key_text = [t.get_text() for t in fig.texts if t.get_gid() == "colour-key"]
    assert {"liver", "lungs", "T1", "T2"} <= set(key_text)
    plt.close("all")


@pytest.mark.parametrize("text", ["measurement:spect-resolution-assumed",
                                  "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
                                  "whole-normal-liver-limit-scaled"])
def test_wrapped_cell_text_stays_inside_its_column(text):
    """Bug caught: the warning code 'measurement:spect-resolution-assumed' printed across the
    border of its column into the message (the wrap estimate took 0.53 em a glyph; DejaVu
    Sans lower case measures 0.556 em). Each wrapped line's rendered width, measured with
    matplotlib's text path, fits the column less its padding."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    from tareplanner.records.report_layout import wrap
    column_in, size = 1.55, 7.5
    for line in wrap(text, column_in - 0.1, size):
        path = TextPath((0, 0), line, size=size, prop=FontProperties(family="DejaVu Sans"))
        assert path.get_extents().width / 72 <= column_in - 0.1, line
