"""``tareplanner phantom`` and ``tareplanner measure``: the imaging path of the command line."""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path

import SimpleITK as sitk

from ..errors import FieldValueError, ImageDataError, TarePlannerInputError
from ..imaging.arrays import image_array
from ..physics.solver import GOAL_KINDS
from ..records.atomic import OutputExistsError, write_json_atomic
from ..records.case import product_key_of
from ..records.fields import check_name, suggestion
from .outputs import check_output_file
from .progress import Progress, registration_steps


def parse_goal(text: str, field: str = "--goal") -> tuple[str | None, dict]:
    """``[POSITION:]KIND=VALUE`` or ``[POSITION:]maximum`` -> (position or None, goal)."""
    position, _, spec = text.rpartition(":")
    kind, _, value = spec.partition("=")
    kind = kind.strip()
    if position:
        check_name(position, f"{field} position")
    if kind == "maximum" and not value:
        return position or None, {"maximum": True}
    if kind not in GOAL_KINDS or kind == "maximum":
        raise FieldValueError(field, text, "[POSITION:]KIND=VALUE with KIND one of "
                              + ", ".join(k for k in GOAL_KINDS if k != "maximum")
                              + ", or [POSITION:]maximum", suggestion(kind, GOAL_KINDS))
    try:
        number = float(value)
    except ValueError:
        raise FieldValueError(field, text, "a number after '='") from None
    if not math.isfinite(number) or number <= 0:
        raise FieldValueError(field, text, "a finite value > 0")
    return position or None, {kind: number}


def _named_paths(items: list[str], field: str) -> list[tuple[str, str]]:
    pairs = []
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise FieldValueError(field, item, "NAME=PATH")
        pairs.append((check_name(name.strip(), f"{field} name"), path.strip()))
    return pairs


def read_input(path: str, option: str, *, modalities: tuple[str, ...] = (), **kwargs):
    """An image given on the command line; errors name ``option``. A DICOM image must be of
    one of ``modalities`` (when given): a SPECT as --ct is refused, not measured."""
    from ..imaging.readers import read_image

    try:
        loaded = read_image(path, **kwargs)
    except TarePlannerInputError as exc:
        raise exc.within(option) from None
    is_dicom = "format" not in loaded.meta
    if modalities and is_dicom and loaded.modality not in modalities:
        raise ImageDataError(f"{option} {path}:Modality (0008,0060)", loaded.modality,
                             " or ".join(modalities))
    return loaded


def _read_label(path: str, field: str) -> sitk.Image:
    """A label map: whole numbers 0 to 255 (no negative, fractional or larger values, which
    a cast to 8 bits would wrap or round)."""
    import numpy as np

    image = read_input(path, field).image
    values = image_array(image)
    low, high = float(values.min()), float(values.max())
    if low < 0 or high > 255:
        raise ImageDataError(f"{field} {path}:voxel values", f"{low:g} to {high:g}",
                             "label numbers 0 to 255")
    if not np.array_equal(values, np.round(values)):
        raise ImageDataError(f"{field} {path}:voxel values", "fractional values",
                             "whole label numbers (a label map, not an interpolated image)")
    return sitk.Cast(image, sitk.sitkUInt8)


def _physical_box(image: sitk.Image):
    """Lower and upper corners (mm, LPS) of the space an image's voxels cover."""
    import itertools

    import numpy as np

    size = image.GetSize()
    corners = [image.TransformContinuousIndexToPhysicalPoint([c - 0.5 for c in corner])
               for corner in itertools.product(*[(0, n) for n in size])]
    corners = np.array(corners)
    return corners.min(axis=0), corners.max(axis=0)


def check_overlap(image: sitk.Image, reference: sitk.Image, option: str, path: str,
                   reference_option: str = "--ct") -> None:
    """Refuse an image whose field of view does not meet the CT's."""
    import numpy as np

    low, high = _physical_box(image)
    ref_low, ref_high = _physical_box(reference)
    overlap = np.minimum(high, ref_high) - np.maximum(low, ref_low)
    if np.any(overlap <= 0):
        raise ImageDataError(f"{option} {path}:geometry",
                             f"[{', '.join(f'{v:.0f}' for v in low)}] to "
                             f"[{', '.join(f'{v:.0f}' for v in high)}] mm",
                             f"an image that overlaps the {reference_option} image "
                             f"([{', '.join(f'{v:.0f}' for v in ref_low)}] to "
                             f"[{', '.join(f'{v:.0f}' for v in ref_high)}] mm, same frame "
                             "of reference)")


def _labels_on_ct(label: sitk.Image, ct: sitk.Image, option: str, path: str):
    """The label numbers present once ``label`` is on the CT grid."""
    import numpy as np

    check_overlap(label, ct, option, path)
    on_ct = sitk.Resample(label, ct, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return [int(v) for v in np.unique(image_array(on_ct)) if v]


def _labels_from_dicom_structures(args, ct, folder: Path):
    """Label inputs from a DICOM SEG (on the DICOM planning CT) or RT Structure Set; the label
    maps are written into ``folder`` (beside the measurement record) so that later steps can
    read them."""
    import numpy as np

    from ..imaging.measure import LabelInputs

    option, source = ("--seg", args.seg) if args.seg else ("--rtstruct", args.rtstruct)
    if args.seg:
        from ..dicom.seg import labels_from_seg, read_seg
        if not Path(args.ct).is_dir():
            raise FieldValueError("--seg", args.seg, "a SEG with a DICOM CT folder as --ct")
        try:
            liver, lungs, tumours = labels_from_seg(read_seg(args.seg, args.ct))
        except TarePlannerInputError as exc:
            raise exc.within("--seg") from None
    else:
        from ..dicom.rtstruct import read_rtstruct
        try:
            rois = read_rtstruct(args.rtstruct, ct.image)
        except TarePlannerInputError as exc:
            raise exc.within("--rtstruct") from None
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
    if not liver.any():
        raise ImageDataError(f"{option} {source}:liver", "no voxels on the CT grid",
                             "a liver structure inside the CT")
    for name, mask in tumours.items():
        check_name(name, f"{option} tumour name")
        if not mask.any():
            raise ImageDataError(f"{option} {source}:{name}", "no voxels on the CT grid",
                                 "tumour structures inside the CT")

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
    from ..imaging.phantom_files import slug, write_phantom

    from ..errors import OutputPathError
    if getattr(args, "iec", False):
        from .iec_commands import cmd_phantom_iec
        return cmd_phantom_iec(args)
    outdir = Path(args.outdir)
    blocking = next((p for p in (outdir, *outdir.parents) if p.exists() and not p.is_dir()),
                    None)
    if blocking is not None:
        raise OutputPathError("OUT", args.outdir, "a folder (empty or new)",
                              f"{blocking} is a file")
    if not 0 <= args.seed < 2 ** 32:
        raise FieldValueError("--seed", args.seed, "a whole number 0 to 4294967295")
    positions = _positions_count(args.positions)
    overrides = {"seed": args.seed, "ho166_scout": args.ho166_scout, "pet": not args.no_pet}
    if args.no_noise:
        overrides.update(spect_noise=False, pet_noise=False, ct_noise_hu=0.0,
                         cbct_noise_hu=0.0)
    if args.pet_fwhm_mm is not None:
        if not (math.isfinite(args.pet_fwhm_mm) and 0 <= args.pet_fwhm_mm <= 50):
            raise FieldValueError("--pet-fwhm-mm", args.pet_fwhm_mm, "a FWHM of 0 to 50 mm")
        overrides.update(pet_fwhm_mm=args.pet_fwhm_mm)
    if args.fwhm_mm != 14.0 or args.tail_fraction:
        from .iec_commands import _psf_from_args
        psf = _psf_from_args(args)
        overrides.update(spect_fwhm_mm=psf.components[0][1],
                         spect_tail=psf.components[1] if len(psf.components) > 1 else None)
    if args.no_blur:
        overrides.update(spect_fwhm_mm=0.0, pet_fwhm_mm=0.0, spect_tail=None)
    if args.spect_model not in ("gaussian", "realistic"):
        raise FieldValueError("--spect-model", args.spect_model, "gaussian or realistic")
    if args.spect_model == "realistic":
        from ..imaging.spect_simulation import EXTRA, INSTALL_HINT, extra_available
        if not extra_available():
            raise FieldValueError("--spect-model", args.spect_model,
                                  f"gaussian, or realistic with the extra '{EXTRA}' installed",
                                  f"PyTomography and torch are missing: {INSTALL_HINT}")
        overrides.update(spect_model="realistic")
    pet_model = getattr(args, "pet_model", "gaussian")
    if pet_model not in ("gaussian", "realistic"):
        raise FieldValueError("--pet-model", pet_model, "gaussian or realistic")
    if pet_model == "realistic":
        from ..imaging.spect_simulation import EXTRA, INSTALL_HINT, extra_available
        if args.no_pet or args.no_blur or args.pet_fwhm_mm is not None:
            raise FieldValueError("--pet-model", pet_model, "realistic without --no-pet, "
                                  "--no-blur or --pet-fwhm-mm (its resolution is the "
                                  "scanner's and the reconstruction's)")
        if not extra_available():
            raise FieldValueError("--pet-model", pet_model,
                                  f"gaussian, or realistic with the extra '{EXTRA}' installed",
                                  f"PyTomography and torch are missing: {INSTALL_HINT}")
        overrides.update(pet_model="realistic")
    from .iec_commands import realistic_acquisition_minutes, realistic_iterations
    minutes = realistic_acquisition_minutes(
        args, args.spect_model == "realistic",
        "--spect-model realistic (the patient's realistic SPECTs) or --iec")
    if minutes is not None:
        overrides.update(spect_acquisition_minutes=minutes)
    iterations = realistic_iterations(args, "realistic" in (args.spect_model, pet_model))
    if iterations is not None:
        overrides.update(reconstruction_iterations=iterations)
    try:
        spec = spec_for_size(args.size, positions=positions, **overrides)
    except ValueError as exc:
        raise FieldValueError("--size", args.size, "small, standard or large") from exc
    try:
        truth = write_phantom(make_phantom(spec), args.outdir)
    except FileExistsError as exc:
        raise OutputExistsError(str(exc)) from None
    print(f"synthetic patient written to {args.outdir} ({args.size}; truth.json holds the "
          f"ground truth: LSF {truth['lung_shunt_fraction']:.3f}, liver "
          f"{truth['volumes_ml']['liver']:.0f} mL)")
    if positions != 2:
        print(f"{positions} injection position{'s' if positions > 1 else ''}, one CBCT each: "
              + ", ".join(f"{p['name']} (cbct_{slug(p['name'])}; "
                          + (", ".join(p["tumours"]) or "no tumour") + ")"
                          for p in truth["positions"]))
        if positions == 1:
            print("the CBCT enhances the whole liver: measure its territory with --territories "
                  f"{Path(args.outdir) / 'labels' / 'territories.nii.gz'}")
    return 0


def _positions_count(value: str) -> int:
    """``--positions``: a whole number 1 to MAX_POSITIONS."""
    from ..imaging.anatomy import MAX_POSITIONS

    allowed = f"a whole number 1 to {MAX_POSITIONS}"
    try:
        count = int(str(value).strip())
    except ValueError:
        raise FieldValueError("--positions", value, allowed) from None
    if not 1 <= count <= MAX_POSITIONS:
        raise FieldValueError("--positions", value, allowed)
    return count


#: messages of the measuring functions and the option whose input caused them
MEASURE_FAULTS = {"no counts in lungs and liver": ("--spect", "a SPECT with counts in the liver "
                                                               "and lungs"),
                  "no lung is left after the lung-base exclusion": (
                      "--lung-base-margin-mm", "a margin that leaves some lung"),
                  "the CBCT does not cover the liver": ("--position", "a CBCT that covers "
                                                                      "the liver"),
                  "the registration mask is empty": ("--liver", "a liver on the CT grid")}


def _output_paths(args) -> dict[str, Path]:
    """The files and folders measure writes: refused up front when they exist (without
    --force), are folders where files are asked for, or are the same path twice."""
    from ..errors import OutputPathError

    paths: dict[str, Path] = {}
    if args.output:
        paths["-o"] = Path(args.output)
    if args.measurement_output:
        record = Path(args.measurement_output)
        paths["--measurement-output"] = record
        paths["labels"] = record.with_name(record.stem + "_labels")
        if args.seg or args.rtstruct:
            paths["structure labels"] = record.with_name(record.stem + "_structure_labels")
    for option, path in paths.items():
        if "\x00" in str(path):
            raise OutputPathError(option, str(path), "a path without NUL characters")
        if option.startswith("-"):
            check_output_file(path, option)
        if path.exists() and not args.force:
            raise OutputExistsError(f"{path} exists; use --force to overwrite it")
    if "-o" in paths and "--measurement-output" in paths and \
            paths["-o"].resolve() == paths["--measurement-output"].resolve():
        raise OutputPathError("--measurement-output", str(paths["-o"]),
                              "a path other than the case file's (-o)")
    return paths


class _Staging:
    """Folders filled under temporary names and renamed into place together at the end;
    on failure every temporary folder and every parent folder made for it is removed."""

    def __init__(self):
        self.folders: list[tuple[Path, Path]] = []
        self.made: list[Path] = []

    def folder(self, final: Path) -> Path:
        import os
        import tempfile

        from ..records.atomic import remove_stale_temporaries

        missing = [p for p in reversed(final.parents) if not p.exists()]
        final.parent.mkdir(parents=True, exist_ok=True)
        self.made += missing
        remove_stale_temporaries(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", suffix=".tmp",
                                    dir=final.parent))
        self.folders.append((tmp, final))
        return tmp

    def rename(self, text: str) -> str:
        """``text`` with the temporary folder names replaced by the final ones."""
        for tmp, final in self.folders:
            text = text.replace(str(tmp), str(final))
        return text

    def commit(self) -> None:
        import shutil
        for tmp, final in self.folders:
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
        self.folders = []

    def discard(self) -> None:
        import shutil
        for tmp, _ in self.folders:
            shutil.rmtree(tmp, ignore_errors=True)
        for folder in reversed(self.made):
            try:
                folder.rmdir()
            except OSError:
                pass


def _replace_in_strings(value, replace):
    if isinstance(value, str):
        return replace(value)
    if isinstance(value, dict):
        return {k: _replace_in_strings(v, replace) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_in_strings(v, replace) for v in value]
    return value


def _labels_from_maps(args, ct, LabelInputs):
    """Liver, tumour and lung label maps given as files; every label named or present must
    be found on the CT grid."""
    if not args.liver:
        raise FieldValueError("--liver", None, "a liver label map (or --seg / --rtstruct)")
    names = [n.strip() for n in args.tumour_names.split(",")] if args.tumour_names else []
    for tumour in names:
        check_name(tumour, "--tumour-names")
    if len(set(names)) != len(names):
        raise FieldValueError("--tumour-names", args.tumour_names, "unique tumour names")
    liver = _read_label(args.liver, "--liver")
    if not _labels_on_ct(liver, ct.image, "--liver", args.liver):
        raise ImageDataError(f"--liver {args.liver}:voxel values", "no liver on the CT grid",
                             "a liver label (> 0) inside the CT")
    tumours = None
    if args.tumours:
        tumours = _read_label(args.tumours, "--tumours")
        present = _labels_on_ct(tumours, ct.image, "--tumours", args.tumours)
        if not present:
            raise ImageDataError(f"--tumours {args.tumours}:voxel values",
                                 "no tumour on the CT grid", "tumour labels 1..n inside the CT")
        absent = [f"{k} ({n})" for k, n in enumerate(names, start=1) if k not in present]
        if absent:
            raise ImageDataError(f"--tumours {args.tumours}:voxel values",
                                 "no voxels of label " + ", ".join(absent),
                                 "every label named by --tumour-names present on the CT grid")
        if names and max(present) > len(names):
            raise FieldValueError("--tumour-names", args.tumour_names,
                                  f"a name for every tumour label {present}")
    elif names:
        raise FieldValueError("--tumour-names", args.tumour_names,
                              "names only with a tumour label map (--tumours)")
    lungs = None
    if args.lungs:
        lungs = _read_label(args.lungs, "--lungs")
        if not _labels_on_ct(lungs, ct.image, "--lungs", args.lungs):
            raise ImageDataError(f"--lungs {args.lungs}:voxel values", "no lung on the CT grid",
                                 "a lung label (> 0) inside the CT")
    return LabelInputs(liver=liver, tumours=tumours,
                       tumour_names={i + 1: n for i, n in enumerate(names)}, lungs=lungs,
                       sources={k: v for k, v in (("liver", args.liver),
                                                  ("tumours", args.tumours),
                                                  ("lungs", args.lungs)) if v})


def _resolution_option(args) -> dict | None:
    """The SPECT resolution asked for on the command line (None: the default), checked."""
    from ..imaging.camera_file import read_resolution_file
    from ..imaging.partial_volume import resolution_given

    fwhm, camera = getattr(args, "spect_fwhm_mm", None), getattr(args, "camera", None)
    if fwhm is not None and camera:
        raise FieldValueError("--camera", camera, "either --camera or --spect-fwhm-mm")
    if getattr(args, "no_pvc", False) and (fwhm is not None or camera):
        raise FieldValueError("--no-pvc", True, "no resolution with --no-pvc (--spect-fwhm-mm "
                              "and --camera are for the correction)")
    if fwhm is not None:
        return resolution_given(fwhm, "--spect-fwhm-mm")
    if camera:
        return read_resolution_file(camera, "--camera")
    return None


def _check_before_images(args, goals: dict, goals_default: dict | None,
                         manual_tnr: dict[str, float]) -> None:
    """Everything about the options that can be checked without reading an image, checked
    before the first image is read (seconds of reading and registration otherwise precede
    a typing error): product and method, values entered by hand, the treatment time, goals
    against the --position names, --manual-tnr names against --tumour-names, the options
    that go together."""
    from .. import catalogue
    from ..records.case import METHODS, product_key_of
    from ..records.fields import timestamp

    product = catalogue.product(product_key_of(args.product, "--product"))
    if args.method not in METHODS:
        raise FieldValueError("--method", args.method, "one of " + ", ".join(METHODS),
                              suggestion(args.method, METHODS))
    if args.method not in product.methods:
        raise FieldValueError("--method", args.method,
                              f"for {product.key}: " + ", ".join(product.methods))
    if args.manual_lsf is not None and not (math.isfinite(args.manual_lsf)
                                            and 0.0 <= args.manual_lsf < 1.0):
        raise FieldValueError("--manual-lsf", args.manual_lsf,
                              "a lung shunt fraction 0 <= LSF < 1 (e.g. 0.05 for 5 %)")
    if args.treatment_time is not None:
        timestamp({"--treatment-time": args.treatment_time}, "--treatment-time", "",
                  required=False)
    if (args.seg or args.rtstruct) and not args.measurement_output:
        raise FieldValueError("--measurement-output", None,
                              "a measurement record path (the structures' label maps go "
                              "beside it)")
    named = [name for name, _ in _named_paths(args.position, "--position")]
    if len(set(named)) != len(named):
        raise FieldValueError("--position", named, "unique position names")
    known = list(named)  # the position names, when they are known without the images
    if args.territories:
        territory_names = [n.strip() for n in (args.territory_names or "").split(",") if n]
        known = known + territory_names if territory_names else None
    if known is not None:  # goals can be checked now
        if not known:
            raise FieldValueError("--position", None,
                                  "at least one NAME=CBCT_PATH, or --territories LABELS")
        unknown = sorted(set(goals) - set(known))
        if unknown:
            raise FieldValueError("--goal", unknown, "position names: " + ", ".join(known))
        missing = [n for n in known if n not in goals and goals_default is None]
        if missing and args.method != "bsa":
            raise FieldValueError("--goal", None, "a goal for every position (missing: "
                                  + ", ".join(missing) + ")")
    names = ([n.strip() for n in args.tumour_names.split(",")]
             if args.tumour_names and not (args.seg or args.rtstruct) else None)
    if names is not None:
        unknown = sorted(set(manual_tnr) - set(names))
        if unknown:
            raise FieldValueError("--manual-tnr", unknown,
                                  "tumour names of --tumour-names: " + ", ".join(names))


def cmd_measure(args: argparse.Namespace) -> int:
    from ..imaging.registration import workers_started_early

    # the registrations' worker processes start while the images are read
    with workers_started_early(len(args.position or [])):
        return _measure_command(args)


def _measure_command(args: argparse.Namespace) -> int:
    from ..imaging.measure import (LabelInputs, PositionImages, case_from_measurement, measure,
                                   parse_manual_tnr)
    from ..records.atomic import write_text_atomic
    from ..records.case import parse_case

    paths = _output_paths(args)
    goals_default, goals = None, {}
    for text in args.goal or []:
        position, goal = parse_goal(text)
        if position is None:
            goals_default = goal
        else:
            goals[position] = goal
    if args.case_id is not None:
        check_name(args.case_id, "--case-id")
    if not (math.isfinite(args.lung_base_margin_mm) and args.lung_base_margin_mm >= 0):
        raise FieldValueError("--lung-base-margin-mm", args.lung_base_margin_mm,
                              "a distance >= 0 mm")
    resolution = _resolution_option(args)
    manual_tnr = parse_manual_tnr(args.manual_tnr or "", "--manual-tnr")
    for tumour, value in manual_tnr.items():
        if not (math.isfinite(value) and value > 0):
            raise FieldValueError(f"--manual-tnr {tumour}", value, "a finite TNR > 0")
    if args.seg and args.rtstruct:
        raise FieldValueError("--rtstruct", args.rtstruct, "either --seg or --rtstruct")
    _check_before_images(args, goals, goals_default, manual_tnr)
    progress = Progress("measure", quiet=getattr(args, "quiet", False))
    progress.step("reading the CT and the SPECT")
    ct = read_input(args.ct, "--ct", modalities=("CT",), modality="CT", units="HU")
    spect = read_input(args.spect, "--spect", modalities=("NM",), modality="NM",
                       units=args.spect_units)
    if not (spect.is_counts or spect.is_activity):
        raise FieldValueError("--spect-units" if "format" in spect.meta else "--spect",
                              spect.units, "counts or Bq/mL (an emission image)")
    from ..records.identity import check_same_patient
    check_same_patient(ct.meta, spect.meta, "--spect")
    check_overlap(spect.image, ct.image, "--spect", args.spect)
    try:  # negative counts beyond noise: refused here, naming the option
        from ..imaging.voxel_checks import check_emission_voxels
        check_emission_voxels(spect.image, args.spect)
    except TarePlannerInputError as exc:
        raise exc.within("--spect") from None
    staging = _Staging()
    try:
        progress.step("reading the label maps")
        if args.seg or args.rtstruct:
            labels = _labels_from_dicom_structures(
                args, ct, staging.folder(paths["structure labels"]))
        else:
            labels = _labels_from_maps(args, ct, LabelInputs)
        positions = []
        for name, path in _named_paths(args.position, "--position"):
            progress.step(f"reading the CBCT of {name}")
            cbct = read_input(path, f"--position {name}", modalities=("CT",), modality="CT",
                              units="HU")
            check_same_patient(ct.meta, cbct.meta, f"--position {name}")
            check_overlap(cbct.image, ct.image, f"--position {name}", path)
            positions.append(PositionImages(name=name, cbct=cbct))
        if args.territories:
            territory_names = [n.strip() for n in (args.territory_names or "").split(",") if n]
            for territory in territory_names:
                check_name(territory, "--territory-names")
            territory_map = _read_label(args.territories, "--territories")
            ids = _labels_on_ct(territory_map, ct.image, "--territories", args.territories)
            if not ids:
                raise ImageDataError(f"--territories {args.territories}:voxel values",
                                     "no territory on the CT grid",
                                     "territory labels 1..P inside the CT")
            if territory_names and len(territory_names) != len(ids):
                raise FieldValueError("--territory-names", args.territory_names,
                                      f"{len(ids)} names, one per territory label {ids}")
            for k, label in enumerate(ids):
                name = territory_names[k] if territory_names else f"position {label}"
                positions.append(PositionImages(name=name, territory=territory_map == label))
        if not positions:
            raise FieldValueError("--position", None,
                                  "at least one NAME=CBCT_PATH, or --territories LABELS")
        unknown = sorted(set(goals) - {p.name for p in positions})
        if unknown:
            raise FieldValueError("--goal", unknown, "position names: "
                                  + ", ".join(p.name for p in positions))
        missing = [p.name for p in positions if p.name not in goals and goals_default is None]
        if missing and args.method != "bsa":
            raise FieldValueError("--goal", None, "a goal for every position (missing: "
                                  + ", ".join(missing) + ")")
        label_dir = staging.folder(paths["labels"]) if "labels" in paths else None
        cbct_names = [p.name for p in positions if p.cbct is not None]
        progress.step("measuring: " + (f"{len(cbct_names)} CBCT registration(s), " if cbct_names
                                       else "") + "territories, lungs, LSF and TNR")
        try:
            with registration_steps(progress, cbct_names):
                measurement = measure(ct, spect, labels, positions,
                                      lung_base_margin_mm=args.lung_base_margin_mm,
                                      save_labels_to=label_dir,
                                      partial_volume_correction=not args.no_pvc,
                                      resolution=resolution)
            progress.step("measured; writing the case")
        except TarePlannerInputError:
            raise
        except ValueError as exc:
            option, allowed = MEASURE_FAULTS.get(str(exc), ("images", "images that can be "
                                                                      "measured together"))
            raise ImageDataError(option, {"--spect": args.spect, "--liver": args.liver}.get(
                option, "see detail"), allowed, str(exc)) from None
        except RuntimeError as exc:  # SimpleITK: registration or resampling impossible
            raise ImageDataError("images", "--ct, --spect, --position", "images in one frame "
                                 "of reference that overlap",
                                 str(exc).strip().splitlines()[-1]) from None
        measurement = _replace_in_strings(measurement, staging.rename)
        try:
            text = json.dumps(measurement, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        except ValueError as exc:
            raise ImageDataError("images", "a measurement that is not finite",
                                 "images giving finite volumes, counts and ratios",
                                 str(exc)) from None
        case = case_from_measurement(
            measurement, product=product_key_of(args.product, "--product"), method=args.method,
            goals={p.name: goals.get(p.name, goals_default) for p in positions},
            treatment_time=args.treatment_time, lung_mass=args.lung_mass,
            case_id=args.case_id, measurement_file=args.measurement_output,
            measurement_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            manual_lung_shunt_fraction=args.manual_lsf, manual_tnr=manual_tnr)
        parse_case(case)  # a measured case must be a valid case before anything is kept
        written: list[Path] = []
        try:
            if "--measurement-output" in paths:
                written.append(write_text_atomic(paths["--measurement-output"], text,
                                                 overwrite=args.force,
                                                 field="--measurement-output"))
            if "-o" in paths:
                written.append(write_json_atomic(paths["-o"], case, overwrite=args.force,
                                                 field="-o"))
            staging.commit()
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
    except BaseException:
        staging.discard()
        raise
    if "-o" not in paths:
        json.dump(case, sys.stdout, indent=2)
        sys.stdout.write("\n")
    lsf = measurement["lung_shunt"]
    pvc = measurement["partial_volume_correction"]
    print(("partial-volume corrected (GTM, {:.3g} mm FWHM) with {} resolution ({}): ".format(
               pvc["fwhm_mm"], "an ASSUMED" if pvc.get("assumed") else "the",
               pvc["resolution"].get("chosen_by"))
           if pvc["applied"] else "not corrected for partial volume: ")
          + f"LSF {lsf['lung_shunt_fraction']:.2%} ({lsf['method']}); "
          + "; ".join(f"{p['name']}: {p['perfused_volume_ml']:.0f} mL perfused, TNR "
                      + ", ".join(f"{t['name']} {t['tnr']:.2f}" for t in p["tumours"])
                      for p in measurement["positions"]), file=sys.stderr)
    for w in measurement["warnings"]:
        print(f"warning [{w['code']}] {w['message']}", file=sys.stderr)
    return 0


def _product_keys() -> tuple[str, ...]:
    from .. import catalogue
    return catalogue.product_keys()


def _methods() -> tuple[str, ...]:
    from ..records.case import METHODS
    return METHODS


def add_imaging_commands(sub) -> None:
    p = sub.add_parser("phantom", help="write the synthetic patient (DICOM, NIfTI, truth)")
    p.add_argument("outdir", metavar="OUT",
                   help="folder to write (new or empty): dicom/, nifti/, labels/ and truth.json "
                        "(the ground truth: volumes, TNRs, LSF, CBCT offsets, activities)")
    p.add_argument("--size", default="standard",
                   help="voxel size of the images: small (2x2x3 mm CT, fast, for tests), "
                        "standard (1x1x2.5 mm CT) or large (0.8x0.8x2 mm CT) "
                        "(default: %(default)s, clinical voxel sizes; tareplanner demo uses "
                        "small so that the whole workflow runs in about half a minute)")
    p.add_argument("--seed", type=int, default=20261122,
                   help="seed of the image noise (and of the CBCT offsets of a segmental "
                        "patient): a whole number 0 to 4294967295; the same seed writes the "
                        "same images (default: %(default)s)")
    p.add_argument("--positions", default="2", metavar="N",
                   help="injection positions, one territory and one CBCT each: 1 to 8. 2 is "
                        "the right and left hepatic patient; 1 treats its whole liver from "
                        "the proper hepatic artery (its CBCT enhances the whole liver: measure "
                        "it with --territories labels/territories.nii.gz); 3 to 8 divide the "
                        "liver into wedge-shaped "
                        "segments named 'segment 2', 'segment 3', ... with one tumour each "
                        "(default: %(default)s)")
    p.add_argument("--ho166-scout", action="store_true", help="also write a Ho-166 scout SPECT")
    p.add_argument("--no-pet", action="store_true", help="no post-treatment Y-90 PET")
    p.add_argument("--no-noise", action="store_true", help="noise-free images")
    p.add_argument("--no-blur", action="store_true",
                   help="SPECT and PET without system blur (to image them again)")
    p.add_argument("--spect-model", default="gaussian",
                   help="gaussian (blur and noise, default) or realistic (attenuation, "
                        "collimator response, scatter, Poisson noise and OSEM; extra "
                        "'realistic-spect')")
    p.add_argument("--pet-model", default="gaussian",
                   help="the Y-90 PET (patient or --iec): gaussian (blur and noise, default) "
                        "or realistic (positron yield, attenuation, scatter, randoms, Poisson "
                        "noise and OSEM; extra 'realistic-spect')")
    p.add_argument("--pet-fwhm-mm", type=float, metavar="MM",
                   help="FWHM of the Y-90 PET's Gaussian blur (default: the synthetic "
                        "patient's, data/spect_resolution.json)")
    from .iec_commands import add_iec_options
    add_iec_options(p)
    p.set_defaults(func=cmd_phantom)

    p = sub.add_parser("measure", help="volumes, LSF and TNR from images -> case file")
    p.add_argument("--ct", required=True, help="CT (DICOM folder or NIfTI/NRRD/MHA)")
    p.add_argument("--spect", required=True, help="MAA or Ho-166 scout SPECT (same frame as CT)")
    p.add_argument("--spect-units", default="counts",
                   help="units of a non-DICOM SPECT: counts (CNTS) or Bq/mL (BQML) "
                        "(default: counts)")
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
                   help="goal of every position, or of one position (repeatable); KIND: "
                        + ", ".join(k for k in GOAL_KINDS if k != "maximum")
                        + "; or [POSITION:]maximum")
    p.add_argument("--product", required=True, metavar="PRODUCT",
                   help="product: " + ", ".join(_product_keys()) + " (any case)")
    p.add_argument("--method", default="partition", metavar="METHOD",
                   help="planning method: " + ", ".join(_methods())
                        + " (default: %(default)s; bsa only for sir-spheres)")
    p.add_argument("--treatment-time", help="ISO 8601 with UTC offset")
    p.add_argument("--case-id", help="case identifier written into the case (a name: "
                                     "printable, at most 64 characters, no '/')")
    p.add_argument("--lung-base-margin-mm", type=float, default=0.0,
                   help="exclude lung within this distance of the liver from the LSF")
    p.add_argument("--spect-fwhm-mm", type=float, metavar="MM",
                   help="SPECT system resolution (FWHM, mm) for the partial-volume correction "
                        "(default: data/spect_resolution.json for the SPECT's radionuclide)")
    p.add_argument("--camera", metavar="FILE",
                   help="site camera file: JSON with fwhm_mm and source (its measured "
                        "resolution for this isotope and reconstruction)")
    p.add_argument("--no-pvc", action="store_true",
                   help="no partial-volume correction: the measured region values are used")
    p.add_argument("--manual-lsf", type=float, metavar="FRACTION",
                   help="LSF entered by hand (fraction, e.g. 0.05): replaces the measured one, "
                        "recorded as a manual entry")
    p.add_argument("--manual-tnr", metavar="T1=3.2,T2=2.5",
                   help="TNRs entered by hand: replace the measured ones, recorded as manual "
                        "entries")
    p.add_argument("--lung-mass", choices=("ct", "convention"), default="ct",
                   help="lung mass written into the case: the CT densitovolumetric mass "
                        "(default, EANM 2022) or the 1 kg convention of the package inserts "
                        "(recorded as chosen; the CT mass is kept beside it)")
    p.add_argument("--lung-mass-from-ct", dest="lung_mass", action="store_const", const="ct",
                   help=argparse.SUPPRESS)
    p.add_argument("-o", "--output", help="case file to write, in an existing folder "
                                          "(default: print)")
    p.add_argument("--measurement-output",
                   help="measurement record to write, in an existing folder (its label maps "
                        "go into a folder beside it)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--quiet", action="store_true",
                   help="no progress lines on stderr (they are written only to a terminal)")
    p.set_defaults(func=cmd_measure)


__all__ = ["add_imaging_commands", "parse_goal", "ImageDataError"]
