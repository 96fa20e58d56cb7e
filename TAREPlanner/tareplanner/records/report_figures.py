"""The report's figures: DVHs, isodose slices, CT-fused orthogonal slices through each
tumour with structure outlines and isodose lines, and a 3D view. Images are drawn in
patient coordinates (DICOM LPS, mm) after reorienting them to the patient axes, so image,
outlines and isodose lines share one frame and cannot be mirrored against each other."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np

A4_INCHES = (8.27, 11.69)

#: DICOM patient axes (LPS): the letter at the negative and at the positive end of each axis
PATIENT_AXIS_LETTERS = {"x": ("R", "L"), "y": ("A", "P"), "z": ("I", "S")}


def structure_colours(names) -> dict:
    """One colour per structure (matplotlib's tab10, tab20 beyond ten structures), so that
    the planned and delivered curves of a structure share it."""
    import matplotlib
    names = list(dict.fromkeys(names))
    cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def _read_dvh_csv(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Dose bins and % volume per structure of a ``dvh_*.csv`` written by the dose command."""
    import csv
    rows = list(csv.reader(path.read_text().splitlines()))
    data = np.array([[float(x) for x in r] for r in rows[1:]], dtype=float)
    data = data.reshape(-1, len(rows[0]))
    names = [c[:-len(" (%)")] if c.endswith(" (%)") else c for c in rows[0][1:]]
    return data[:, 0], {n: data[:, k] for k, n in enumerate(names, start=1)}


def draw_dvh(ax, dose_dir: Path) -> bool:
    """Cumulative DVHs of a dose folder on ``ax``: one colour per structure, planned solid
    and delivered dashed; False when the folder holds no DVH table."""
    from matplotlib.lines import Line2D
    curves = {}
    for phase, name in (("planned", "dvh_planned.csv"), ("delivered", "dvh_delivered.csv")):
        if (dose_dir / name).exists():
            curves[phase] = _read_dvh_csv(dose_dir / name)
    if not curves:
        return False
    structures = [n for phase in curves.values() for n in phase[1]]
    colours = structure_colours(structures)
    for phase, style in (("planned", "-"), ("delivered", "--")):
        if phase not in curves:
            continue
        dose_gy, volumes = curves[phase]
        for name, volume in volumes.items():
            ax.plot(dose_gy, volume, linestyle=style, color=colours[name], lw=1.2,
                    label=f"{name} ({phase})")
    ax.set_xlabel("Dose (Gy)", fontsize=8)
    ax.set_ylabel("Volume (%)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title("Cumulative DVH (solid: planned, dashed: delivered; one colour per "
                 "structure)", fontsize=8.5)
    ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=c, lw=1.5, label=n) for n, c in colours.items()]
    if "delivered" in curves:
        handles += [Line2D([], [], color="black", lw=1.2, label="planned"),
                    Line2D([], [], color="black", lw=1.2, linestyle="--", label="delivered")]
    legend = ax.legend(handles=handles, fontsize=6.5, ncol=2)
    for text in legend.get_texts():
        text.set_parse_math(False)
    return True


def _dvh_page(plt, dose_dir: Path, dose_record: dict):
    """A page with the DVH plot alone (its axes first)."""
    fig = plt.figure(figsize=A4_INCHES)
    draw_dvh(fig.add_axes([0.1, 0.55, 0.8, 0.37]), Path(dose_dir))
    return fig


def _oriented(image):
    """The image reoriented to the DICOM patient axes (index i, j, k along L, P, S, to the
    nearest axis for an oblique image), its array (k, j, i) and voxel-centre coordinates (mm)
    along x (R to L), y (A to P) and z (I to S); and whether the acquisition was oblique."""
    import SimpleITK as sitk
    lps = sitk.DICOMOrient(image, "LPS")
    direction = np.array(lps.GetDirection()).reshape(3, 3)
    oblique = bool(np.abs(direction - np.eye(3)).max() > 1e-6)
    coords = [lps.GetOrigin()[a] + np.arange(lps.GetSize()[a]) * lps.GetSpacing()[a]
              * direction[a, a] for a in range(3)]
    return sitk.GetArrayFromImage(lps), coords, oblique


#: distance of an orientation letter's centre from the image edge (points): the letter
#: and its box lie wholly inside the image, clear of the axis labels around it
LETTER_INSET_PT = (7.5, 8.5)


def _side_labels(ax, horizontal: str, vertical: str) -> None:
    """Patient-direction letters on the four sides of an image drawn in patient coordinates
    (mm), just inside its edges: each side gets the letter of the end of its axis that lies
    there."""
    ax.apply_aspect()
    box = ax.get_position()
    width_pt, height_pt = (box.width * ax.figure.get_figwidth() * 72,
                           box.height * ax.figure.get_figheight() * 72)
    dx = min(0.12, LETTER_INSET_PT[0] / max(width_pt, 1e-9))
    dy = min(0.12, LETTER_INSET_PT[1] / max(height_pt, 1e-9))
    for axis, limits, sides in ((horizontal, ax.get_xlim(), ((dx, 0.5), (1 - dx, 0.5))),
                                (vertical, ax.get_ylim(), ((0.5, dy), (0.5, 1 - dy)))):
        negative, positive = PATIENT_AXIS_LETTERS[axis]
        low_side, high_side = (negative, positive) if limits[0] < limits[1] else (positive,
                                                                                  negative)
        for letter, (x, y) in zip((low_side, high_side), sides):
            ax.text(x, y, letter, transform=ax.transAxes, ha="center", va="center",
                    fontsize=10, weight="bold", color="white", gid=f"orientation-{letter}",
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "black", "alpha": 0.6,
                          "edgecolor": "none"})


def _isodose_panel(fig, rect, plane, cols_mm, rows_mm, horizontal: str, vertical: str,
                   levels, title: str, *, top_is_low: bool):
    """One slice with its isodose lines, image and contours both in patient coordinates (mm),
    so they cannot be drawn mirrored against each other."""
    ax = fig.add_axes(rect)
    half_c = abs(cols_mm[1] - cols_mm[0]) / 2 if len(cols_mm) > 1 else 0.5
    half_r = abs(rows_mm[1] - rows_mm[0]) / 2 if len(rows_mm) > 1 else 0.5
    shown = ax.imshow(plane, cmap="inferno", origin="lower", interpolation="nearest",
                      extent=(cols_mm[0] - half_c, cols_mm[-1] + half_c,
                              rows_mm[0] - half_r, rows_mm[-1] + half_r), aspect="equal")
    contours = None
    if levels and plane.shape[0] > 1 and plane.shape[1] > 1:
        contours = ax.contour(cols_mm, rows_mm, plane, levels=levels, colors="white",
                              linewidths=0.7)
    if top_is_low:
        ax.set_ylim(rows_mm[-1] + half_r, rows_mm[0] - half_r)
    ax.set_xlabel(f"{horizontal} (mm)", fontsize=7)
    ax.set_ylabel(f"{vertical} (mm)", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.set_title(title, fontsize=9)
    _side_labels(ax, horizontal, vertical)
    fig.colorbar(shown, ax=ax, label="Gy", shrink=0.8)
    if contours is not None:
        label_isodoses(ax, contours, fontsize=ISODOSE_LABEL_PT)
    return ax


ISODOSE_LEVELS_GY = (50, 100, 150, 200, 300)


def isodose_figure(plt, image, title: str = "Isodose slices (planned dose)"):
    """Axial (anterior up, patient's right on the image left) and coronal (superior up,
    patient's right on the left) slices through the dose maximum of a dose image (Gy), with
    isodose lines, orientation letters and the slice positions in patient coordinates."""
    dose, (x_mm, y_mm, z_mm), oblique = _oriented(image)
    k, j, _ = np.unravel_index(int(np.argmax(dose)), dose.shape)
    fig = plt.figure(figsize=A4_INCHES)
    fig.text(0.06, 0.965, title, fontsize=14, weight="bold", va="top")
    note = ("Patient coordinates (DICOM LPS, mm): x towards the patient's left, y posterior, "
            "z superior. Radiological view: patient's right on the image left.")
    if oblique:
        note += " Oblique image: axes labelled by their nearest patient direction."
    fig.text(0.06, 0.935, note, fontsize=7, va="top", wrap=True)
    peak = float(dose.max())
    levels = [v for v in ISODOSE_LEVELS_GY if v < peak]
    _isodose_panel(fig, [0.1, 0.5, 0.8, 0.38], dose[k], x_mm, y_mm, "x", "y", levels,
                   f"axial slice at z = {z_mm[k]:+.1f} mm (through the dose maximum, "
                   f"{peak:.0f} Gy)", top_is_low=True)
    _isodose_panel(fig, [0.1, 0.05, 0.8, 0.38], dose[:, j, :], x_mm, z_mm, "x", "z", levels,
                   f"coronal slice at y = {y_mm[j]:+.1f} mm (through the dose maximum)",
                   top_is_low=False)
    return fig




#: CT window of the fused slices (HU): level 40, width 400, a soft-tissue window
CT_WINDOW_HU = (-160.0, 240.0)
#: dose below this fraction of the maximum is left transparent over the CT
DOSE_OVERLAY_FLOOR = 0.10
OUTLINE_COLOURS = {"liver": "#7fd17f", "lungs": "#7fb2ff"}
#: isodose labels on the slices (points): readable on a printed page
ISODOSE_LABEL_PT = 7.0
TUMOUR_COLOURS = ("#00e5ff", "#ff4fd8", "#ffe14d", "#ff8c1a", "#b388ff", "#ffffff")


def fused_panel(ax, cols_mm, rows_mm, dose_plane, *, ct_plane=None, outlines=(),
                levels=(), horizontal: str, vertical: str, title: str, top_is_low: bool,
                vmax: float | None = None):
    """One slice in patient coordinates (mm): the CT in a soft-tissue window with the dose
    over it (or the dose alone), isodose lines (gid ``isodose``, drawn first), structure
    outlines (``outlines``: (name, mask plane, colour); gid ``outline-<name>``) and the
    orientation letters. ``vmax``: the dose at the top of the colour scale (Gy), the same
    for every panel of a page. Returns the dose image artist (for a colour bar)."""
    import numpy.ma as ma
    half_c = abs(cols_mm[1] - cols_mm[0]) / 2 if len(cols_mm) > 1 else 0.5
    half_r = abs(rows_mm[1] - rows_mm[0]) / 2 if len(rows_mm) > 1 else 0.5
    extent = (cols_mm[0] - half_c, cols_mm[-1] + half_c, rows_mm[0] - half_r,
              rows_mm[-1] + half_r)
    peak = float(vmax) if vmax is not None else (
        float(np.nanmax(dose_plane)) if dose_plane.size else 0.0)
    if ct_plane is not None:
        ax.imshow(ct_plane, cmap="gray", vmin=CT_WINDOW_HU[0], vmax=CT_WINDOW_HU[1],
                  origin="lower", interpolation="nearest", extent=extent, aspect="equal")
        shown = ax.imshow(ma.masked_less(dose_plane, DOSE_OVERLAY_FLOOR * max(peak, 1e-9)),
                          cmap="turbo", alpha=0.45, origin="lower", interpolation="nearest",
                          extent=extent, aspect="equal", vmin=0, vmax=peak)
        line_colour = "white"
    else:
        shown = ax.imshow(dose_plane, cmap="inferno", origin="lower", interpolation="nearest",
                          extent=extent, aspect="equal", vmax=vmax)
        line_colour = "white"
    contours = None
    if levels and dose_plane.shape[0] > 1 and dose_plane.shape[1] > 1:
        used = [v for v in levels if dose_plane.min() < v < dose_plane.max()]
        if used:
            contours = ax.contour(cols_mm, rows_mm, dose_plane, levels=used,
                                  colors=line_colour, linewidths=0.8)
            contours.set_gid("isodose")
    for name, mask, colour in outlines:
        if mask.any() and not mask.all() and mask.shape[0] > 1 and mask.shape[1] > 1:
            outline = ax.contour(cols_mm, rows_mm, mask.astype(np.float32), levels=[0.5],
                                 colors=[colour], linewidths=0.9, linestyles="--")
            outline.set_gid(f"outline-{name}")
    if top_is_low:
        ax.set_ylim(extent[3], extent[2])
    ax.set_xlabel(f"{horizontal} (mm)", fontsize=6, labelpad=1.5)
    ax.set_ylabel(f"{vertical} (mm)", fontsize=6, labelpad=1.5)
    ax.tick_params(labelsize=5.5, length=2.5, pad=1.5)
    ax.set_title(title, fontsize=7, pad=3)
    ax.title.set_parse_math(False)
    _side_labels(ax, horizontal, vertical)
    if contours is not None:
        label_isodoses(ax, contours, fontsize=ISODOSE_LABEL_PT)
    return shown


def label_isodoses(ax, contours, *, fontsize: float, fmt: str = "{:g} Gy") -> list:
    """One label per isodose level, horizontal on a dark box, placed on its line where it
    overlaps no other label, no orientation letter and stays inside the panel (matplotlib's
    clabel piles the labels of nearby lines on each other around a small tumour). A level
    with no free place on its line is left unlabelled: its colour and the colour bar still
    give it. The labels have gid ``isodose-label``; returns them."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    ax.apply_aspect()
    frame = ax.get_window_extent(renderer)
    margin = fontsize * 0.3 * fig.dpi / 72          # clear space around each label (px)
    taken = [t.get_window_extent(renderer).padded(margin) for t in ax.texts
             if (t.get_gid() or "").startswith("orientation-")]
    placed = []
    for level, segments in zip(contours.levels, contours.allsegs):
        candidates = _label_candidates(segments)
        if not candidates:
            continue
        text = ax.text(*candidates[0], fmt.format(level), fontsize=fontsize, color="white",
                       ha="center", va="center", gid="isodose-label", parse_math=False,
                       bbox={"boxstyle": "round,pad=0.15", "facecolor": "black",
                             "alpha": 0.55, "edgecolor": "none"})
        for point in candidates:
            text.set_position(point)
            box = text.get_window_extent(renderer).padded(margin)
            inside = (box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0
                      and box.y1 <= frame.y1)
            if inside and not any(box.overlaps(other) for other in taken):
                taken.append(box)
                placed.append(text)
                break
        else:
            text.remove()
    return placed


def _label_candidates(segments, per_line: int = 24) -> list[tuple[float, float]]:
    """Places for a level's label on its lines (mm): points spread along each line, the
    longest line first and, on each, from its middle outwards."""
    lines = sorted((np.asarray(seg) for seg in segments if len(seg) > 1),
                   key=lambda seg: -np.linalg.norm(np.diff(seg, axis=0), axis=1).sum())
    points = []
    for line in lines:
        steps = np.linalg.norm(np.diff(line, axis=0), axis=1)
        along = np.concatenate([[0.0], np.cumsum(steps)])
        if along[-1] <= 0:
            continue
        fractions = np.linspace(0, 1, per_line, endpoint=False) + 0.5 / per_line
        order = np.argsort(np.abs(fractions - 0.5), kind="stable")
        for f in fractions[order]:
            points.append((float(np.interp(f * along[-1], along, line[:, 0])),
                           float(np.interp(f * along[-1], along, line[:, 1]))))
    return points


def _resampled(image, reference, interpolator):
    import SimpleITK as sitk
    return sitk.Resample(image, reference, sitk.Transform(), interpolator, 0.0,
                         sitk.sitkFloat32)


def load_anatomy(dose_dir: Path, measurement: dict | None) -> dict:
    """The planned dose (Gy) and, with a measurement record whose files read, the CT and
    the liver, lung and tumour masks, all on the CT grid and reoriented to the patient
    axes: ``{"dose", "ct", "masks": {name: array}, "tumours": [names], "coords": (x, y, z),
    "oblique"}`` (``ct`` None without a measurement)."""
    import SimpleITK as sitk

    from ..imaging.readers import read_image
    dose_image = sitk.ReadImage(str(Path(dose_dir) / "dose_planned_gy.nii.gz"), sitk.sitkFloat32)
    if measurement is None:
        return anatomy_from_images(dose_image)
    ct = read_image(measurement["inputs"]["ct"]["source"]).image
    labels = measurement["inputs"]["labels"]
    masks = {"liver": read_image(labels["liver"]).image > 0.5}
    lungs = (measurement.get("label_outputs") or {}).get("lungs")
    if lungs and Path(lungs).exists():
        masks["lungs"] = read_image(lungs).image > 0.5
    tumours = {}
    if labels.get("tumours"):
        tumour_map = sitk.Cast(read_image(labels["tumours"]).image, sitk.sitkInt32)
        tumours = {name: tumour_map == int(value)
                   for name, value in (measurement.get("tumour_labels") or {}).items()}
    return anatomy_from_images(dose_image, ct, masks, tumours)


def anatomy_from_images(dose_image, ct=None, masks: dict | None = None,
                        tumours: dict | None = None) -> dict:
    """What :func:`load_anatomy` returns, from images in memory (the Slicer module's and web
    page's scene): the planned dose, the CT (None: the dose alone), the liver and lung masks
    (``masks``: name -> binary image) and the tumour masks (name -> binary image), any grid,
    resampled to the CT's (nearest neighbour for masks) and reoriented to the patient axes."""
    import SimpleITK as sitk
    if ct is None:
        dose, coords, oblique = _oriented(dose_image)
        return {"dose": dose, "ct": None, "masks": {}, "tumours": [], "coords": coords,
                "oblique": oblique}
    ct_array, coords, oblique = _oriented(_resampled(ct, ct, sitk.sitkLinear))
    dose, _, _ = _oriented(_resampled(dose_image, ct, sitk.sitkLinear))

    def mask(image):
        return _oriented(_resampled(sitk.Cast(image, sitk.sitkUInt8), ct,
                                    sitk.sitkNearestNeighbor))[0] > 0

    out = {name: mask(image) for name, image in (masks or {}).items()}
    names = []
    for name, image in (tumours or {}).items():
        out[name] = mask(image)
        if out[name].any():
            names.append(name)
    return {"dose": dose, "ct": ct_array, "masks": out, "tumours": names,
            "coords": coords, "oblique": oblique}


def outline_colours(anatomy: dict) -> dict:
    colours = dict(OUTLINE_COLOURS)
    for k, name in enumerate(anatomy["tumours"]):
        colours[name] = TUMOUR_COLOURS[k % len(TUMOUR_COLOURS)]
    return colours


def orthogonal_row(axes, anatomy: dict, centre: tuple[int, int, int], label: str,
                   levels) -> object:
    """Axial, coronal and sagittal slices through voxel ``centre`` (k, j, i of the
    reoriented arrays) on three axes; returns the last dose image artist."""
    k, j, i = centre
    x_mm, y_mm, z_mm = anatomy["coords"]
    dose, ct = anatomy["dose"], anatomy["ct"]
    colours = outline_colours(anatomy)

    def outlines(cut):
        return [(n, cut(m), colours.get(n, "white")) for n, m in anatomy["masks"].items()]

    planes = (
        (lambda a: a[k], x_mm, y_mm, "x", "y", True, f"axial z = {z_mm[k]:+.1f} mm"),
        (lambda a: a[:, j, :], x_mm, z_mm, "x", "z", False, f"coronal y = {y_mm[j]:+.1f} mm"),
        (lambda a: a[:, :, i], y_mm, z_mm, "y", "z", False,
         f"sagittal x = {x_mm[i]:+.1f} mm"))
    shown = None
    for ax, (cut, cols, rows, h, v, top_low, where) in zip(axes, planes):
        shown = fused_panel(ax, cols, rows, cut(dose), ct_plane=None if ct is None else cut(ct),
                            outlines=outlines(cut), levels=levels, horizontal=h, vertical=v,
                            title=where if label is None else f"{label}: {where}",
                            top_is_low=top_low, vmax=float(dose.max()))
    return shown


#: a row of orthogonal slices on a page (inches): room above each image for its title, left
#: of it for the tick labels and the axis label, below it for the same; the least gap
#: between panels; the colour bar's gap, width and the room for its ticks and label
ROW_TITLE_IN, ROW_LEFT_IN, ROW_BOTTOM_IN, ROW_GAP_IN = 0.2, 0.4, 0.32, 0.08
COLOUR_BAR_IN = (0.08, 0.08, 0.42)


def slice_extents_mm(anatomy: dict) -> list[tuple[float, float]]:
    """Width and height (mm) of the axial (x by y), coronal (x by z) and sagittal (y by z)
    images of an anatomy: the voxel centres' span plus one voxel."""
    def span(c):
        return abs(c[-1] - c[0]) + (abs(c[1] - c[0]) if len(c) > 1 else 1.0)
    x, y, z = (span(c) for c in anatomy["coords"])
    return [(x, y), (x, z), (y, z)]


def row_layout(extents_mm, width_in: float, max_height_in: float):
    """One height for the three images of a row (so that their tops, bottoms and titles
    line up) and each image's left edge and width (inches from the left of the text
    block), each image's box of its own width-to-height ratio (so that aspect 'equal'
    leaves it as placed), with room for the axis labels between them and for the colour
    bar after them. Returns (height, [(left, width), ...], colour bar left)."""
    ratios = [w / h for w, h in extents_mm]
    fixed = len(ratios) * ROW_LEFT_IN + (len(ratios) - 1) * ROW_GAP_IN + sum(COLOUR_BAR_IN)
    height = max(0.3, min(max_height_in, (width_in - fixed) / sum(ratios)))
    spare = max(0.0, width_in - fixed - height * sum(ratios))
    gap = ROW_GAP_IN + spare / len(ratios)
    boxes, left = [], 0.0
    for ratio in ratios:
        left += ROW_LEFT_IN
        boxes.append((left, height * ratio))
        left += height * ratio + gap
    return height, boxes, boxes[-1][0] + boxes[-1][1] + COLOUR_BAR_IN[0]


def tumour_centre(mask: np.ndarray) -> tuple[int, int, int]:
    """The voxel nearest the tumour's centre of mass that lies in the tumour."""
    voxels = np.argwhere(mask)
    centre = voxels.mean(axis=0)
    return tuple(int(v) for v in voxels[np.argmin(((voxels - centre) ** 2).sum(axis=1))])


@contextmanager
def vtk_messages_captured(vtk):
    """VTK's messages kept from the terminal for the block: its output window replaced by a
    string window and its logger's terminal output turned off (both restored afterwards).
    Yields a list that holds, once the block ends, the ERROR messages VTK gave (warnings,
    such as the X server missing on a machine that then renders through EGL, are dropped)."""
    previous = vtk.vtkOutputWindow.GetInstance()
    cutoff = vtk.vtkLogger.GetCurrentVerbosityCutoff()
    window = vtk.vtkStringOutputWindow()
    vtk.vtkOutputWindow.SetInstance(window)
    vtk.vtkLogger.SetStderrVerbosity(vtk.vtkLogger.VERBOSITY_OFF)
    errors: list[str] = []
    try:
        yield errors
    finally:
        vtk.vtkOutputWindow.SetInstance(previous)
        vtk.vtkLogger.SetStderrVerbosity(cutoff)
        errors += vtk_errors(window.GetOutput())


def vtk_errors(text: str) -> list[str]:
    """The ERROR messages of VTK's output window text, one line each."""
    import re
    blocks = [b.strip() for b in re.split(r"\n\s*\n", str(text or "")) if b.strip()]
    return [" ".join(line.strip() for line in block.splitlines()[1:] or block.splitlines())
            for block in blocks if block.startswith("ERROR")]


def render_3d(anatomy: dict, isodose_gy: float, size_px: int = 900,
              problems: list | None = None) -> np.ndarray | None:
    """An anterior view (patient's right on the image left, superior up) of the liver
    (translucent), the tumours and the ``isodose_gy`` surface of the planned dose, rendered
    off screen with VTK; an RGB array, or None when VTK cannot render here. VTK prints
    nothing on the terminal meanwhile; its error messages are appended to ``problems``
    (for the report to show)."""
    try:
        import vtk
        from vtk.util import numpy_support
    except ImportError:
        if problems is not None:
            problems.append("VTK is not installed")
        return None
    with vtk_messages_captured(vtk) as errors:
        image = _render_3d(vtk, numpy_support, anatomy, isodose_gy, size_px)
    if problems is not None:
        problems += errors
    return image


def _render_3d(vtk, numpy_support, anatomy: dict, isodose_gy: float, size_px: int):
    x_mm, y_mm, z_mm = anatomy["coords"]
    spacing = [abs(c[1] - c[0]) if len(c) > 1 else 1.0 for c in (x_mm, y_mm, z_mm)]

    def surface(array, level):
        data = vtk.vtkImageData()
        data.SetDimensions(array.shape[2], array.shape[1], array.shape[0])
        data.SetSpacing(*spacing)
        data.SetOrigin(x_mm[0], y_mm[0], z_mm[0])
        flat = np.ascontiguousarray(array, dtype=np.float32).ravel()
        data.GetPointData().SetScalars(numpy_support.numpy_to_vtk(flat, deep=True))
        edges = vtk.vtkFlyingEdges3D()
        edges.SetInputData(data)
        edges.SetValue(0, level)
        smooth = vtk.vtkWindowedSincPolyDataFilter()
        smooth.SetInputConnection(edges.GetOutputPort())
        smooth.SetNumberOfIterations(15)
        smooth.SetPassBand(0.1)
        normals = vtk.vtkPolyDataNormals()
        normals.SetInputConnection(smooth.GetOutputPort())
        mapper = vtk.vtkPolyDataMapper()
        mapper.SetInputConnection(normals.GetOutputPort())
        mapper.ScalarVisibilityOff()
        return mapper

    import matplotlib.colors as mcolors
    renderer = vtk.vtkRenderer()
    renderer.SetBackground(1, 1, 1)
    # the tumours on a layer of their own, above the translucent liver and isodose surface
    # and unshaded, so that each is drawn in exactly its legend colour (seen through the
    # liver and the red isodose surface, cyan turned teal-grey and yellow orange)
    tumours = vtk.vtkRenderer()
    tumours.SetLayer(1)
    tumours.InteractiveOff()
    items = []
    if "liver" in anatomy["masks"]:
        items.append((anatomy["masks"]["liver"], 0.5, "#b5651d", 0.12, renderer))
    colours = outline_colours(anatomy)
    if float(anatomy["dose"].max()) > isodose_gy:
        items.append((anatomy["dose"], isodose_gy, "#ff2020", 0.35, renderer))
    for name in anatomy["tumours"]:
        items.append((anatomy["masks"][name], 0.5, colours[name], 1.0, tumours))
    for array, level, colour, opacity, layer in items:
        actor = vtk.vtkActor()
        actor.SetMapper(surface(array.astype(np.float32), level))
        actor.GetProperty().SetColor(*mcolors.to_rgb(colour))
        actor.GetProperty().SetOpacity(opacity)
        if layer is tumours:
            actor.GetProperty().SetAmbient(1.0)
            actor.GetProperty().SetDiffuse(0.0)
            actor.GetProperty().SetSpecular(0.0)
        layer.AddActor(actor)
    window = vtk.vtkRenderWindow()
    window.SetOffScreenRendering(1)
    window.SetNumberOfLayers(2)
    window.AddRenderer(renderer)
    window.AddRenderer(tumours)
    window.SetSize(size_px, size_px)
    tumours.SetActiveCamera(renderer.GetActiveCamera())
    renderer.ResetCamera()
    camera = renderer.GetActiveCamera()
    focal = camera.GetFocalPoint()
    distance = camera.GetDistance()
    # anterior view: the camera in front of the patient (-y in LPS), superior (+z) up
    camera.SetPosition(focal[0], focal[1] - distance, focal[2])
    camera.SetViewUp(0, 0, 1)
    renderer.ResetCamera()
    try:
        window.Render()
        grab = vtk.vtkWindowToImageFilter()
        grab.SetInput(window)
        grab.Update()
        image = grab.GetOutput()
        w, h, _ = image.GetDimensions()
        rgb = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(h, w, -1)
    finally:
        window.Finalize()
    return np.flipud(rgb[:, :, :3]).copy()
