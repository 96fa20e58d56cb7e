"""Figures of docs/slicer-module.md and the Sample Data thumbnail of the module.

Runs the module's guided steps (``tareplanner.mrml.guided``, exactly what the Slicer panel
calls) headless on slicer-core, on the synthetic patient, and draws each step's result from
the nodes it made: slices with matplotlib, the 3D isodose view with VTK off-screen rendering.

    pip install -e ".[test]"
    python docs/figures/make_slicer_figures.py

Writes docs/figures/slicer-*.png, TAREPlanner/Resources/Icons/TAREPlannerSyntheticPatient.png
and prints the numbers quoted in the guide.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402
import slicer  # noqa: E402
import vtk  # noqa: E402

from tareplanner.mrml import guided  # noqa: E402
from tareplanner.mrml.isodose import surface_ras  # noqa: E402
from tareplanner.mrml.results import record_from_text_node  # noqa: E402
from tareplanner.mrml.segmentations import masks_from_segmentation  # noqa: E402
from tareplanner.mrml.volumes import image_from_volume_node  # noqa: E402
from tareplanner.mrml.workflow import registration_from_transform_node, roles  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ROOT / "docs" / "figures"
THUMBNAIL = ROOT / "TAREPlanner" / "Resources" / "Icons" / "TAREPlannerSyntheticPatient.png"
SEGMENT_COLOURS = {"liver": "#c8a165", "tumour": "#e8413c", "lung": "#6fb6e8",
                   "territory": "#8fd16f"}


def _ct_window(a):
    return np.clip((a + 160.0) / 400.0, 0, 1)


def _coronal(array, y):
    return array[::-1, y, :]


def _aspect(image):
    sx, _, sz = image.GetSpacing()
    return sz / sx


def registration_figure(p, out):
    ct = image_from_volume_node(p.ctVolume)
    cbct = image_from_volume_node(p.positions[0].cbct)
    placed = registration_from_transform_node(p.positions[0].cbct.GetParentTransformNode())
    before = sitk.Resample(cbct, ct, sitk.Transform(), sitk.sitkLinear, -1000.0)
    after = sitk.Resample(cbct, ct, placed, sitk.sitkLinear, -1000.0)
    ct_a = sitk.GetArrayFromImage(ct)
    y = ct_a.shape[1] // 2
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    for ax, moved, title in ((axes[0], before, "before: CBCT as acquired"),
                             (axes[1], after, "after: CBCT under its transform node")):
        m = sitk.GetArrayFromImage(moved)
        ax.imshow(_ct_window(_coronal(ct_a, y)), cmap="gray", aspect=_aspect(ct))
        ax.imshow(np.ma.masked_less(_ct_window(_coronal(m, y)), 0.35), cmap="magma",
                  alpha=0.45, aspect=_aspect(ct))
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.suptitle(f"Step 2, registration of CBCT '{p.positions[0].name}' to the CT (coronal)",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _role_kind(role):
    return role.split(":")[0]


def segments_figure(p, out):
    ct = image_from_volume_node(p.ctVolume)
    ct_a = sitk.GetArrayFromImage(ct)
    masks = masks_from_segmentation(p.ctVolume.GetScene(), p.segmentation, p.ctVolume)
    segment_roles = roles(p.segmentation)
    liver = masks["liver"]
    y = int(np.argmax(liver.sum(axis=(0, 2))))
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(_ct_window(_coronal(ct_a, y)), cmap="gray", aspect=_aspect(ct))
    for name, role in segment_roles.items():
        plane = _coronal(masks[name], y).astype(float)
        if plane.any():
            style = "--" if role.startswith("territory") else "-"
            ax.contour(plane, levels=[0.5], colors=SEGMENT_COLOURS[_role_kind(role)],
                       linewidths=1.3, linestyles=style)
    handles = [plt.Line2D([], [], color=c, label=k) for k, c in SEGMENT_COLOURS.items()]
    ax.legend(handles=handles, loc="lower right", fontsize=8)
    ax.set_title("Step 3, segments with roles (territories dashed), coronal", fontsize=10)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def isodose_figure(scene, p, out):
    ct = image_from_volume_node(p.ctVolume)
    dose_node = guided.dose_volume_node(scene, "plan")
    dose = sitk.Resample(image_from_volume_node(dose_node), ct, sitk.Transform(),
                         sitk.sitkLinear, 0.0)
    d = sitk.GetArrayFromImage(dose)
    ct_a = sitk.GetArrayFromImage(ct)
    table = dose_node.GetDisplayNode().GetColorNode()
    levels = [float(v) for v in table.GetAttribute("TAREPlanner.LevelsGy").split(",")]
    colours = [tuple(guided_colour(table, levels, v)) for v in levels]
    k = int(np.argmax(d.max(axis=(1, 2))))
    fig, ax = plt.subplots(figsize=(6.4, 5.4))
    ax.imshow(_ct_window(ct_a[k]), cmap="gray")
    bands = np.digitize(d[k], levels)          # 0 below the lowest level
    rgba = np.zeros(bands.shape + (4,))
    for band, colour in enumerate(colours, start=1):
        rgba[bands == band] = (*colour, 0.35)
    ax.imshow(rgba)
    contours = ax.contour(d[k], levels=levels, colors=colours, linewidths=1.2)
    ax.clabel(contours, fmt="%g Gy", fontsize=7)
    ax.set_title(f"Step 5, planned dose with isodoses at {', '.join(f'{v:g}' for v in levels)}"
                 " Gy (axial)", fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return levels


def guided_colour(table, levels, level):
    """Colour of a level from the dose colour table (the entry at that dose)."""
    top = levels[-1]
    index = min(table.GetNumberOfColors() - 1,
                int(np.ceil(level / top * (table.GetNumberOfColors() - 1))))
    rgba = [0.0] * 4
    table.GetColor(index, rgba)
    return rgba[:3]


def render_3d(scene, p, out, size=(900, 700)):
    """Liver, tumours and isodose surfaces, rendered off-screen with VTK."""
    renderer = vtk.vtkRenderer()
    renderer.SetBackground(1, 1, 1)
    window = vtk.vtkRenderWindow()
    window.SetOffScreenRendering(1)
    window.AddRenderer(renderer)
    window.SetSize(*size)
    masks = masks_from_segmentation(scene, p.segmentation, p.ctVolume)
    ijk_to_ras = vtk.vtkMatrix4x4()
    p.ctVolume.GetIJKToRASMatrix(ijk_to_ras)
    for name, role in roles(p.segmentation).items():
        if role not in ("liver", "tumour"):
            continue
        smooth = vtk.vtkWindowedSincPolyDataFilter()
        smooth.SetInputData(surface_ras(masks[name].astype(np.uint8), 0.5, ijk_to_ras))
        smooth.SetNumberOfIterations(15)
        mapper = vtk.vtkPolyDataMapper()
        mapper.SetInputConnection(smooth.GetOutputPort())
        mapper.ScalarVisibilityOff()
        actor = vtk.vtkActor()
        actor.SetMapper(mapper)
        colour = SEGMENT_COLOURS[role]
        actor.GetProperty().SetColor(*[int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
        actor.GetProperty().SetOpacity(0.18 if role == "liver" else 0.9)
        renderer.AddActor(actor)
    models = scene.GetNodesByClass("vtkMRMLModelNode")
    for i in range(models.GetNumberOfItems()):
        model = models.GetItemAsObject(i)
        if model.GetAttribute(guided.STEP_TAG) != "plan":
            continue
        mapper = vtk.vtkPolyDataMapper()
        mapper.SetInputData(model.GetPolyData())
        mapper.ScalarVisibilityOff()
        actor = vtk.vtkActor()
        actor.SetMapper(mapper)
        display = model.GetDisplayNode()
        actor.GetProperty().SetColor(*display.GetColor())
        actor.GetProperty().SetOpacity(0.35)
        renderer.AddActor(actor)
    camera = renderer.GetActiveCamera()
    camera.SetViewUp(0, 0, 1)
    camera.SetPosition(0, -1, 0.25)
    camera.SetFocalPoint(0, 0, 0)
    renderer.ResetCamera()
    camera.Zoom(1.35)
    window.Render()
    grab = vtk.vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.Update()
    writer = vtk.vtkPNGWriter()
    writer.SetFileName(str(out))
    writer.SetInputConnection(grab.GetOutputPort())
    writer.Write()


def dvh_figure(p, out):
    planned = record_from_text_node(p.plannedDoseReport)["report"]
    delivered = record_from_text_node(p.deliveredDoseReport)["report"]
    fig, ax = plt.subplots(figsize=(7, 4.4))
    for k, (name, r) in enumerate(planned.items()):
        colour = f"C{k}"
        ax.plot(r["dvh"]["dose_gy"], r["dvh"]["volume_percent"], "-", color=colour, label=name)
        if name in delivered:
            d = delivered[name]["dvh"]
            ax.plot(d["dose_gy"], d["volume_percent"], "--", color=colour)
    ax.set_xlabel("Dose (Gy)")
    ax.set_ylabel("Volume (%)")
    ax.set_xlim(0, 600)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Steps 5 and 6, DVH: planned (solid) and delivered from Y-90 PET (dashed)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def thumbnail(p, out):
    ct = image_from_volume_node(p.ctVolume)
    spect = sitk.Resample(image_from_volume_node(p.spectVolume), ct, sitk.Transform(),
                          sitk.sitkLinear, 0.0)
    ct_a, s = sitk.GetArrayFromImage(ct), sitk.GetArrayFromImage(spect)
    y = int(np.argmax(s.sum(axis=(0, 2))))
    fig = plt.figure(figsize=(1.28, 1.28), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(_ct_window(_coronal(ct_a, y)), cmap="gray", aspect=_aspect(ct))
    plane = _coronal(s, y)
    ax.imshow(np.ma.masked_less(plane, plane.max() * 0.08), cmap="hot", alpha=0.6,
              aspect=_aspect(ct))
    ax.axis("off")
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main() -> int:
    FIGURES.mkdir(parents=True, exist_ok=True)
    scene = slicer.vtkMRMLScene()
    p = guided.Parameters()
    guided.load_synthetic_patient(scene, p)
    thumbnail(p, THUMBNAIL)
    summary = {"registration": guided.register_positions(scene, p)}
    registration_figure(p, FIGURES / "slicer-step2-registration.png")
    guided.add_lungs(p)
    summary["segments"] = guided.add_territories(p)
    segments_figure(p, FIGURES / "slicer-step3-segments.png")
    summary["measurement"] = guided.measure(scene, p)
    guided.update_position(p, 1, goalKind="normal_dose_gy", goalValue=40.0)
    summary["plan"] = guided.plan(scene, p)
    levels = isodose_figure(scene, p, FIGURES / "slicer-step5-isodose.png")
    render_3d(scene, p, FIGURES / "slicer-step5-3d.png")
    summary["verification"] = guided.verify(scene, p)
    dvh_figure(p, FIGURES / "slicer-step6-dvh.png")
    with tempfile.TemporaryDirectory() as tmp:
        p.outputFolder = str(Path(tmp) / "out")
        summary["save"] = guided.save(scene, p).replace(tmp, "<folder>")
    summary["steps"] = {s: st.text for s, st in guided.statuses(p).items()}
    summary["isodose_levels_gy"] = levels
    p.lungBaseMarginMm = 15.0
    summary["after changing the lung-base margin"] = {
        s: st.text for s, st in guided.statuses(p).items()}
    json.dump(summary, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
