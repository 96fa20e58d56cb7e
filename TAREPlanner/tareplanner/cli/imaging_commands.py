"""``tareplanner phantom`` and ``tareplanner measure``: the imaging path of the command line."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import SimpleITK as sitk

from ..errors import FieldValueError, ImageDataError
from ..imaging.arrays import image_array
from ..physics.solver import GOAL_KINDS
from ..records.atomic import OutputExistsError, write_json_atomic


def parse_goal(text: str, field: str = "--goal") -> tuple[str | None, dict]:
    """``[POSITION:]KIND=VALUE`` or ``[POSITION:]maximum`` -> (position or None, goal)."""
    position, _, spec = text.rpartition(":")
    kind, _, value = spec.partition("=")
    kind = kind.strip()
    if kind == "maximum" and not value:
        return position or None, {"maximum": True}
    if kind not in GOAL_KINDS or kind == "maximum":
        raise FieldValueError(field, text, "[POSITION:]KIND=VALUE with KIND one of "
                              + ", ".join(k for k in GOAL_KINDS if k != "maximum")
                              + ", or [POSITION:]maximum")
    try:
        number = float(value)
    except ValueError:
        raise FieldValueError(field, text, "a number after '='") from None
    if number <= 0:
        raise FieldValueError(field, text, "a value > 0")
    return position or None, {kind: number}


def _named_paths(items: list[str], field: str) -> list[tuple[str, str]]:
    pairs = []
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise FieldValueError(field, item, "NAME=PATH")
        pairs.append((name.strip(), path.strip()))
    return pairs


def _read_label(path: str, field: str) -> sitk.Image:
    from ..imaging.readers import read_image

    loaded = read_image(path)
    return sitk.Cast(sitk.Round(loaded.image), sitk.sitkUInt8)


def _labels_from_dicom_structures(args, ct):
    """Label inputs from a DICOM SEG (on the DICOM planning CT) or RT Structure Set; the label
    maps are written beside the measurement record so that later steps can read them."""
    import numpy as np

    from ..imaging.measure import LabelInputs

    option, source = ("--seg", args.seg) if args.seg else ("--rtstruct", args.rtstruct)
    if args.seg:
        from ..records.dicom_seg import labels_from_seg, read_seg
        if not Path(args.ct).is_dir():
            raise FieldValueError("--seg", args.seg, "a SEG with a DICOM CT folder as --ct")
        liver, lungs, tumours = labels_from_seg(read_seg(args.seg, args.ct))
    else:
        from ..records.dicom_rtstruct import read_rtstruct
        rois = read_rtstruct(args.rtstruct, ct.image)
        by_name = {k.lower(): v for k, v in rois.items()}
        liver = by_name.get("liver")
        lungs = by_name.get("lungs", by_name.get("lung"))
        wanted = ([n.strip() for n in args.tumour_rois.split(",")] if args.tumour_rois else
                  [n for n in rois if n.lower() not in ("liver", "lungs", "lung", "body",
                                                        "external")])
        missing = [n for n in wanted if n not in rois]
        if missing:
            raise FieldValueError("--tumour-rois", missing, "ROI names of the structure set: "
                                  + ", ".join(rois))
        tumours = {n: rois[n] for n in wanted}
    if liver is None:
        raise FieldValueError(option, source, "structures with one named 'liver'")
    if not args.measurement_output:
        raise FieldValueError("--measurement-output", None,
                              "a measurement record path (the SEG's label maps go beside it)")
    folder = Path(args.measurement_output).with_name(
        Path(args.measurement_output).stem + "_structure_labels")
    folder.mkdir(parents=True, exist_ok=True)

    def save(name, array):
        image = sitk.GetImageFromArray(array.astype(np.uint8))
        image.CopyInformation(ct.image)
        path = folder / f"{name}.nii.gz"
        sitk.WriteImage(image, str(path), useCompression=True)
        return image, str(path)

    liver_img, liver_path = save("liver", liver)
    tumour_map = np.zeros(liver.shape, np.uint8)
    names = list(tumours)
    for k, name in enumerate(names, start=1):
        tumour_map[tumours[name] & (tumour_map == 0)] = k
    tumour_img, tumour_path = save("tumours", tumour_map)
    sources = {"liver": liver_path, "tumours": tumour_path, option.lstrip("-"): str(source)}
    lung_img = None
    if lungs is not None:
        lung_img, sources["lungs"] = save("lungs", lungs)
    return LabelInputs(liver=liver_img, tumours=tumour_img,
                       tumour_names={k: n for k, n in enumerate(names, start=1)},
                       lungs=lung_img, sources=sources)


def cmd_phantom(args: argparse.Namespace) -> int:
    from ..imaging.phantom import make_phantom, spec_for_size
    from ..imaging.phantom_files import write_phantom

    overrides = {"seed": args.seed, "ho166_scout": args.ho166_scout, "pet": not args.no_pet}
    if args.no_noise:
        overrides.update(spect_noise=False, ct_noise_hu=0.0, cbct_noise_hu=0.0)
    if args.no_blur:
        overrides.update(spect_fwhm_mm=0.0)
    try:
        spec = spec_for_size(args.size, **overrides)
    except ValueError as exc:
        raise FieldValueError("--size", args.size, "small, standard or large") from exc
    try:
        truth = write_phantom(make_phantom(spec), args.outdir)
    except FileExistsError as exc:
        raise OutputExistsError(str(exc)) from None
    print(f"synthetic patient written to {args.outdir} ({args.size}; truth.json holds the "
          f"ground truth: LSF {truth['lung_shunt_fraction']:.3f}, liver "
          f"{truth['volumes_ml']['liver']:.0f} mL)")
    return 0


def cmd_measure(args: argparse.Namespace) -> int:
    from ..imaging.measure import (LabelInputs, PositionImages, case_from_measurement, measure,
                                   parse_manual_tnr)
    from ..imaging.readers import read_image
    from ..records.case import parse_case

    if args.output and Path(args.output).exists() and not args.force:
        raise OutputExistsError(f"{args.output} exists; use --force to overwrite it")
    goals_default, goals = None, {}
    for text in args.goal or []:
        position, goal = parse_goal(text)
        if position is None:
            goals_default = goal
        else:
            goals[position] = goal
    ct = read_image(args.ct, modality="CT", units="HU")
    spect = read_image(args.spect, modality="NM", units=args.spect_units)
    if args.seg and args.rtstruct:
        raise FieldValueError("--rtstruct", args.rtstruct, "either --seg or --rtstruct")
    if args.seg or args.rtstruct:
        labels = _labels_from_dicom_structures(args, ct)
    else:
        if not args.liver:
            raise FieldValueError("--liver", None, "a liver label map (or --seg)")
        names = [n.strip() for n in args.tumour_names.split(",")] if args.tumour_names else []
        labels = LabelInputs(liver=_read_label(args.liver, "--liver"),
                             tumours=_read_label(args.tumours, "--tumours")
                             if args.tumours else None,
                             tumour_names={i + 1: n for i, n in enumerate(names)},
                             lungs=_read_label(args.lungs, "--lungs") if args.lungs else None,
                             sources={k: v for k, v in (("liver", args.liver),
                                                        ("tumours", args.tumours),
                                                        ("lungs", args.lungs)) if v})
    positions = []
    for name, path in _named_paths(args.position, "--position"):
        positions.append(PositionImages(name=name, cbct=read_image(path, modality="CT",
                                                                   units="HU")))
    if args.territories:
        territory_names = [n.strip() for n in (args.territory_names or "").split(",") if n]
        territory_map = _read_label(args.territories, "--territories")
        ids = sorted(int(v) for v in set(image_array(territory_map).ravel()) if v)
        if territory_names and len(territory_names) != len(ids):
            raise FieldValueError("--territory-names", args.territory_names,
                                  f"{len(ids)} names, one per territory label {ids}")
        for k, label in enumerate(ids):
            name = territory_names[k] if territory_names else f"position {label}"
            positions.append(PositionImages(name=name, territory=territory_map == label))
    if not positions:
        raise FieldValueError("--position", None,
                              "at least one NAME=CBCT_PATH, or --territories LABELS")
    missing = [p.name for p in positions if p.name not in goals and goals_default is None]
    if missing and args.method != "bsa":
        raise FieldValueError("--goal", None, "a goal for every position (missing: "
                              + ", ".join(missing) + ")")
    label_dir = None
    if args.measurement_output:
        label_dir = Path(args.measurement_output).with_suffix("").with_name(
            Path(args.measurement_output).stem + "_labels")
    measurement = measure(ct, spect, labels, positions,
                          lung_base_margin_mm=args.lung_base_margin_mm,
                          save_labels_to=label_dir)
    text = json.dumps(measurement, indent=2) + "\n"
    try:
        case = case_from_measurement(
            measurement, product=args.product, method=args.method,
            goals={p.name: goals.get(p.name, goals_default) for p in positions},
            treatment_time=args.treatment_time, use_ct_lung_mass=args.lung_mass_from_ct,
            case_id=args.case_id, measurement_file=args.measurement_output,
            measurement_sha256=hashlib.sha256(text.encode()).hexdigest(),
            manual_lung_shunt_fraction=args.manual_lsf,
            manual_tnr=parse_manual_tnr(args.manual_tnr or "", "--manual-tnr"))
        parse_case(case)  # a measured case must be a valid case before anything is kept
    except Exception:
        if label_dir is not None:
            import shutil
            shutil.rmtree(label_dir, ignore_errors=True)
        raise
    if args.measurement_output:
        write_json_atomic(args.measurement_output, measurement, overwrite=args.force)
    if args.output:
        write_json_atomic(args.output, case, overwrite=args.force)
    else:
        json.dump(case, sys.stdout, indent=2)
        sys.stdout.write("\n")
    lsf = measurement["lung_shunt"]
    print(f"LSF {lsf['lung_shunt_fraction']:.2%} ({lsf['method']}); "
          + "; ".join(f"{p['name']}: {p['perfused_volume_ml']:.0f} mL perfused, TNR "
                      + ", ".join(f"{t['name']} {t['tnr']:.2f}" for t in p["tumours"])
                      for p in measurement["positions"]), file=sys.stderr)
    for w in measurement["warnings"]:
        print(f"warning [{w['code']}] {w['message']}", file=sys.stderr)
    return 0


def add_imaging_commands(sub) -> None:
    p = sub.add_parser("phantom", help="write the synthetic patient (DICOM, NIfTI, truth)")
    p.add_argument("outdir")
    p.add_argument("--size", default="standard", help="small, standard or large")
    p.add_argument("--seed", type=int, default=20261122)
    p.add_argument("--ho166-scout", action="store_true", help="also write a Ho-166 scout SPECT")
    p.add_argument("--no-pet", action="store_true", help="no post-treatment Y-90 PET")
    p.add_argument("--no-noise", action="store_true", help="noise-free images")
    p.add_argument("--no-blur", action="store_true", help="SPECT without system blur")
    p.set_defaults(func=cmd_phantom)

    p = sub.add_parser("measure", help="volumes, LSF and TNR from images -> case file")
    p.add_argument("--ct", required=True, help="CT (DICOM folder or NIfTI/NRRD/MHA)")
    p.add_argument("--spect", required=True, help="MAA or Ho-166 scout SPECT (same frame as CT)")
    p.add_argument("--spect-units", default="counts",
                   help="units of a non-DICOM SPECT (default: counts)")
    p.add_argument("--liver", help="liver label map (tumours included)")
    p.add_argument("--seg", help="DICOM SEG on the DICOM CT with segments 'liver', 'lungs' "
                                 "(optional) and tumours (property type Tumor); replaces "
                                 "--liver/--tumours/--lungs")
    p.add_argument("--rtstruct", help="DICOM RT Structure Set with ROIs 'liver', 'lungs' "
                                      "(optional) and tumours; replaces --liver/--tumours/--lungs")
    p.add_argument("--tumour-rois", help="comma-separated tumour ROI names of --rtstruct "
                                         "(default: every ROI but liver, lungs, body)")
    p.add_argument("--tumours", help="tumour label map (1..n)")
    p.add_argument("--tumour-names", help="comma-separated names of tumour labels 1..n")
    p.add_argument("--lungs", help="lung label map (default: segmented from the CT)")
    p.add_argument("--position", action="append", metavar="NAME=CBCT",
                   help="an injection position and its contrast CBCT (repeatable)")
    p.add_argument("--territories", help="territory label map (1..P) instead of CBCTs")
    p.add_argument("--territory-names", help="comma-separated names of territory labels")
    p.add_argument("--goal", action="append", metavar="[POSITION:]KIND=VALUE",
                   help="goal of every position, or of one position (repeatable)")
    p.add_argument("--product", required=True)
    p.add_argument("--method", default="partition")
    p.add_argument("--treatment-time", help="ISO 8601 with UTC offset")
    p.add_argument("--case-id")
    p.add_argument("--lung-base-margin-mm", type=float, default=0.0,
                   help="exclude lung within this distance of the liver from the LSF")
    p.add_argument("--manual-lsf", type=float, metavar="FRACTION",
                   help="LSF entered by hand (fraction, e.g. 0.05): replaces the measured one, "
                        "recorded as a manual entry")
    p.add_argument("--manual-tnr", metavar="T1=3.2,T2=2.5",
                   help="TNRs entered by hand: replace the measured ones, recorded as manual "
                        "entries")
    p.add_argument("--lung-mass-from-ct", action="store_true",
                   help="use the CT densitovolumetric lung mass instead of 1 kg")
    p.add_argument("-o", "--output", help="case file to write (default: print)")
    p.add_argument("--measurement-output", help="measurement record to write")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_measure)


__all__ = ["add_imaging_commands", "parse_goal", "ImageDataError"]
