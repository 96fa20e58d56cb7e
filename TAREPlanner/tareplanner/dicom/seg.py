"""DICOM Segmentation (SEG) export of the structures with highdicom, referencing the planning
CT images, so that MIM, SlicerRT (via QuantitativeReporting) or any TPS can read them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import __version__
from ..records.atomic import atomic_path
from .common import ct_datasets


def _codes(kind: str):
    from pydicom.sr.codedict import codes
    if kind == "tumour":
        return codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Tumor
    if kind == "lung":
        return codes.SCT.Organ, codes.SCT.Lung
    if kind in ("liver", "territory"):       # a territory: the liver part one position feeds
        return codes.SCT.Organ, codes.SCT.Liver
    return codes.SCT.Tissue, codes.SCT.Liver          # normal liver (per territory)


def exported_structures(structures) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The masks and kinds a SEG or an RT Structure Set of a plan holds: the structures
    (tumours, normal liver per territory, normal liver, liver, lungs) and each position's
    perfused territory (``territory <position>``, kind ``territory``)."""
    masks, kinds = dict(structures.masks), dict(structures.kinds)
    for name, mask in (getattr(structures, "territories", None) or {}).items():
        masks[f"territory {name}"], kinds[f"territory {name}"] = mask, "territory"
    return masks, kinds


def export_seg(masks: dict[str, np.ndarray], kinds: dict[str, str], ct_folder,
               path: str | Path, series_description: str = "TAREPlanner structures") -> Path:
    """Write a binary DICOM SEG of ``masks`` (boolean [z, y, x] on the CT grid), one segment
    per structure (overlaps allowed), atomically. ``ct_folder``: the CT's folder or files."""
    import highdicom as hd

    from ..errors import FieldValueError

    sources = ct_datasets(ct_folder)
    names = [n for n in masks if masks[n].any()]
    for name in names:  # a segment label is a DICOM LO: cutting it would merge names
        if len(name) > 64:
            raise FieldValueError("SEG segment label", name, "at most 64 characters (a "
                                  "DICOM segment label); shorten the position or tumour name")
    shape = (len(sources), int(sources[0].Rows), int(sources[0].Columns))
    for name in names:
        if masks[name].shape != shape:
            raise ValueError(f"structure {name!r} is {masks[name].shape}, the CT {shape}")
    pixels = np.stack([masks[n] for n in names], axis=-1).astype(np.uint8)
    algorithm = hd.AlgorithmIdentificationSequence(
        name="TAREPlanner", version=__version__,
        family=hd.sr.CodedConcept("123109", "DCM", "Manual Processing"))
    descriptions = []
    for number, name in enumerate(names, start=1):
        category, kind_code = _codes(kinds[name])
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number, segment_label=name,
            segmented_property_category=category, segmented_property_type=kind_code,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
            algorithm_identification=algorithm))
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=950,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="TAREPlanner",
        manufacturer_model_name="tareplanner", software_versions=__version__,
        device_serial_number="0", series_description=series_description)
    with atomic_path(path, overwrite=True) as tmp:
        seg.save_as(tmp)
    return Path(path)


def read_seg(path: str | Path, ct_folder: str | Path) -> dict[str, dict]:
    """Segments of a DICOM SEG on the grid of the CT it references: {label: {"mask": bool
    [z, y, x], "category": meaning, "type": meaning}}."""
    import highdicom as hd

    from ..errors import ImageDataError

    try:
        seg = hd.seg.segread(path)
    except Exception as exc:
        raise ImageDataError(str(path), "unreadable", "a DICOM Segmentation (SEG)",
                             str(exc)) from None
    sources = ct_datasets(ct_folder)
    try:
        pixels = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=[d.SOPInstanceUID for d in sources],
            assert_missing_frames_are_empty=True)
    except Exception as exc:
        where = (f"{Path(ct_folder[0]).parent} ({len(ct_folder)} files)"
                 if isinstance(ct_folder, (list, tuple)) and ct_folder else ct_folder)
        raise ImageDataError(f"{path}:ReferencedSeriesSequence (0008,1115)", "other images",
                             f"a SEG drawn on the CT series in {where}", str(exc)) from None
    out = {}
    for index in range(seg.number_of_segments):
        desc = seg.get_segment_description(index + 1)
        out[desc.segment_label] = {"mask": pixels[..., index] > 0,
                                   "category": desc.segmented_property_category.meaning,
                                   "type": desc.segmented_property_type.meaning}
    return out


def labels_from_seg(segments: dict[str, dict]) -> tuple:
    """(liver, lungs or None, {tumour name: mask}) from SEG segments: the liver is the segment
    labelled "liver" (or the Organ/Liver segment), the lungs "lungs"/"lung" (or Lung), the
    tumours every segment of property type Tumor."""
    by_label = {k.lower(): v for k, v in segments.items()}
    liver = by_label.get("liver") or next(
        (s for s in segments.values() if s["type"] == "Liver" and s["category"] == "Organ"), None)
    lungs = by_label.get("lungs") or by_label.get("lung") or next(
        (s for s in segments.values() if s["type"] == "Lung"), None)
    tumours = {name: s["mask"] for name, s in segments.items() if s["type"] in ("Tumor",
                                                                                 "Neoplasm")}
    return (liver["mask"] if liver else None, lungs["mask"] if lungs else None, tumours)
