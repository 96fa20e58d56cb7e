"""``tareplanner dose``: voxel dosimetry of a measured and planned case, predictive and (with
``--pet``) post-treatment, with DVHs and the delivered-versus-planned comparison."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import FieldValueError, TarePlannerInputError
from ..imaging.arrays import image_array
from ..records.atomic import OutputExistsError
from .progress import Progress


def _load_json(path: str, field: str) -> dict:
    from ..records.fields import read_json_file
    return read_json_file(path, field)


def load_structures(measurement: dict):
    """CT, SPECT and the structures of a measurement record (files it names)."""
    from ..dosimetry.structures import structures_from_labels
    from ..imaging.readers import read_image

    outputs = measurement.get("label_outputs") or {}
    if "territories" not in outputs:
        raise FieldValueError("measurement.label_outputs", None,
                              "a measurement written with --measurement-output (it saves the "
                              "territory and lung label maps)")
    ct = read_image(measurement["inputs"]["ct"]["source"])
    spect = read_image(measurement["inputs"]["spect"]["source"])
    ref = ct.image

    def on_ct(path):
        img = read_image(path).image
        img = sitk.Resample(img, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
        return np.rint(sitk.GetArrayFromImage(img)).astype(np.int32)

    labels = measurement["inputs"]["labels"]
    liver = on_ct(labels["liver"]) > 0
    tumour_map = on_ct(labels["tumours"]) if "tumours" in labels else np.zeros(liver.shape, int)
    tumours = {name: tumour_map == v for name, v in measurement["tumour_labels"].items()}
    terr_map = on_ct(outputs["territories"])
    territories = {name: terr_map == v for name, v in outputs["territory_labels"].items()}
    lungs = on_ct(outputs["lungs"]) > 0
    return ct, spect, structures_from_labels(ref, liver, lungs, tumours, territories)


def cmd_dose(args: argparse.Namespace, shown_as: Path | None = None) -> int:
    from .. import catalogue
    from ..dosimetry.activity import (counts_to_activity, not_applicable_check,
                                      pet_activity_at_administration,
                                      post_treatment_activity_check, predictive_activity)
    from ..dosimetry.dose import compare, dose_map, structure_report, v_thresholds_for_plan
    from ..dosimetry.files import write_dose_files
    from ..dosimetry.partition import explain_voxel_doses
    from ..records.dose_record import dose_record, indices_only, with_post_treatment
    from ..imaging.readers import read_image
    from ..records.atomic import atomic_folder, write_json_atomic

    out = Path(args.out)
    _check_activity_options(args)
    if args.pet and args.post_spect:
        raise FieldValueError("--post-spect", args.post_spect, "either --pet or --post-spect")
    from ..records.record_checks import check_dose_options
    check_dose_options(args)
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise OutputExistsError(f"{out} exists and is not empty; use --force")
    from ..records.record_checks import check_measurement_record, check_plan_record
    measurement = check_measurement_record(_load_json(args.measurement, "measurement"),
                                           args.measurement)
    _resolve_next_to_record(measurement, Path(args.measurement).parent)
    _check_measurement_files(measurement)
    plan = check_plan_record(_load_json(args.plan, "plan"), args.plan, "plan")
    _administration_activity(args, plan)
    _check_plan_matches_measurement(plan, measurement, args.measurement)
    if args.post_spect and not args.administered_gbq:
        raise FieldValueError("--administered-gbq", args.administered_gbq,
                              "the administered activity (GBq) to scale the post-treatment "
                              "SPECT counts")
    ct_source = measurement["inputs"]["ct"]["source"]
    for option in ("seg", "rtdose", "rtstruct"):
        if getattr(args, option) and not Path(ct_source).is_dir():
            raise FieldValueError(f"--{option}", True, "a DICOM planning CT folder (the "
                                  f"measurement's CT is {ct_source})")
    convolve = None
    if args.gpu:
        from ..physics.gpu import gpu_convolver
        try:
            convolve = gpu_convolver()
        except RuntimeError as exc:
            raise FieldValueError("--gpu", True, "a machine with CuPy and a CUDA device",
                                  str(exc)) from None
    curve = curve_info = None
    if args.density_curve:
        from ..density_curves import read_curve
        curve, curve_info = read_curve(args.density_curve)
    nuclide = catalogue.product(plan["product"]["key"]).nuclide
    post_resolution = _post_resolution_option(args, nuclide)
    progress = Progress("dose", quiet=getattr(args, "quiet", False))
    progress.step("reading the CT, the SPECT and the label maps")
    try:
        ct, spect, structures = load_structures(measurement)
    except TarePlannerInputError as exc:
        raise exc.within("--measurement") from None
    thresholds = v_thresholds_for_plan(plan)
    activities = {p["name"]: p["activity_gbq"] for p in plan["positions"]}
    missing = set(activities) - set(structures.territories)
    if missing:
        raise FieldValueError("plan.positions", sorted(missing),
                              "positions that the measurement has territories for")
    activity, info = predictive_activity(spect.image, structures, activities,
                                         plan["lung_shunt_fraction"], plan["residual_fraction"])
    progress.step(f"predictive dose ({args.method})")
    planned, dose_info = dose_map(activity, nuclide, ct.image, structures.masks["lungs"],
                                  method=args.method, convolve=convolve, density_curve=curve,
                                  density_curve_info=curve_info)
    dose_info["convolution"] = "GPU (CuPy)" if convolve else "CPU (scipy.fft)"
    progress.step("DVHs and dose indices of the predictive dose")
    planned_report = structure_report(planned, structures, nuclide=nuclide,
                                      v_thresholds_gy=thresholds, bin_gy=args.bin_gy)
    why = explain_voxel_doses(plan, activity, planned, dose_info, info, nuclide, ct.image,
                              structures, density_curve=curve, density_curve_info=curve_info)
    from ..records.chain import parent_ref
    parents = {"measurement": parent_ref(measurement, args.measurement,
                                         Path(args.measurement).read_bytes()),
               "plan": parent_ref(plan, args.plan)}
    if args.administration:
        parents["administration"] = {"schema": "tareplanner.administration/1",
                                     "sha256": args.administration_sha256,
                                     "file": Path(args.administration).name}
    from ..records.chain import camera_parent
    camera = camera_parent(post_resolution)
    if camera:
        parents["camera"] = camera
    record = dose_record(plan, dose_info, info, planned_report, why, parents=parents)
    record["warnings"] += [dict(w) for w in getattr(args, "administration_warnings", [])]
    with atomic_folder(out) as tmp:
        delivered = delivered_report = None
        if args.pet or args.post_spect:
            progress.step("reading the post-treatment " + ("PET" if args.pet else "SPECT"))
            if args.pet:
                try:
                    post = read_image(args.pet)
                except TarePlannerInputError as exc:
                    raise exc.within("--pet") from None
                if not post.is_activity:
                    raise FieldValueError("--pet", args.pet, "a PET in Bq/mL (Units BQML)")
                from ..records.identity import check_same_patient
                check_same_patient(ct.meta, post.meta, "--pet")
                from .imaging_commands import check_overlap
                check_overlap(post.image, ct.image, "--pet", args.pet, "planning CT")
                administration = (args.administration_time
                                  or post.meta.get("administration_datetime"))
                acquisition = post.meta.get("acquisition_datetime")
                if not administration or not acquisition:
                    raise FieldValueError("--administration-time", administration,
                                          "the administration time (header or this option)")
                half_life = catalogue.nuclide(nuclide).half_life_h
                from ..records.record_checks import check_pet_times
                check_pet_times(administration, acquisition, half_life)
                delivered_activity = pet_activity_at_administration(
                    post.image, datetime.fromisoformat(acquisition),
                    datetime.fromisoformat(administration), half_life)
            else:
                try:
                    post = read_image(args.post_spect, units="counts", modality="NM")
                except TarePlannerInputError as exc:
                    raise exc.within("--post-spect") from None
                from ..records.identity import check_same_patient
                check_same_patient(ct.meta, post.meta, "--post-spect")
                from .imaging_commands import check_overlap
                check_overlap(post.image, ct.image, "--post-spect", args.post_spect,
                              "planning CT")
                if not post.is_counts or not args.administered_gbq:
                    raise FieldValueError("--administered-gbq", args.administered_gbq,
                                          "the administered activity (GBq) to scale the "
                                          "post-treatment SPECT counts")
                residual = (args.residual_fraction if args.residual_fraction is not None
                            else plan["residual_fraction"])
                delivered_activity = counts_to_activity(post.image, structures,
                                                        args.administered_gbq, residual)
                administration = args.administration_time
                acquisition = post.meta.get("acquisition_datetime")
            progress.step("post-treatment dose, DVHs and comparison")
            delivered, _ = dose_map(delivered_activity, nuclide, ct.image,
                                    structures.masks["lungs"], method=args.method,
                                    convolve=convolve, density_curve=curve,
                                    density_curve_info=curve_info)
            delivered_report = structure_report(delivered, structures, nuclide=nuclide,
                                                v_thresholds_gy=thresholds, bin_gy=args.bin_gy)
            pvc_record = {"applied": False, "reason": "turned off (--no-pvc)"}
            post_warnings = []
            if not args.no_pvc:
                from ..dosimetry.post_treatment_pvc import post_treatment_correction
                progress.step("partial-volume correction of the structure mean doses")
                pvc_record, post_warnings = post_treatment_correction(
                    post.image, structures, delivered_report, nuclide,
                    "pet" if args.pet else "spect", post_resolution,
                    acquisition_s=post.meta.get("frame_duration_s"))
            post_treatment = {
                "source": post.source, "sha256": post.sha256,
                "administration_time": administration, "acquisition_time": acquisition,
                "activity_in_image_at_administration_gbq":
                    float(image_array(delivered_activity).sum()),
                "structures": indices_only(delivered_report),
                "partial_volume_correction": pvc_record}
            if args.pet:
                check, warnings = post_treatment_activity_check(
                    delivered_activity, structures, plan, administered_gbq=args.administered_gbq,
                    residual_fraction=args.residual_fraction,
                    outside_fraction_corrected=pvc_record.get(
                        "outside_liver_and_lungs_fraction_corrected"))
                if args.administration:
                    _from_administration_record(check, warnings)
            else:
                check, warnings = not_applicable_check(
                    "the post-treatment SPECT counts are scaled to the administered activity "
                    "less the residual: the image holds no independent measure of it"), []
            post_treatment.update(activity_check=check, warnings=post_warnings + warnings)
            record = with_post_treatment(record, post_treatment,
                                         compare(indices_only(planned_report),
                                                 indices_only(delivered_report)))
            if args.administration:
                from ..records.dose_record import with_lung_criterion
                record = with_lung_criterion(record, args.administration_directive)
        progress.step("writing the dose maps and DVH tables")
        write_dose_files(tmp, structures, nuclide, planned, planned_report, delivered,
                         delivered_report)
        if args.voxel_plan:
            from ..dosimetry.voxel_plan import voxel_plan, voxel_plan_record
            progress.step(f"voxel plan ({args.voxel_plan} goals)")
            result = voxel_plan(spect.image, structures, plan, nuclide, ct.image,
                                method=args.method, tumour_index=args.voxel_plan)
            sitk.WriteImage(result["dose"], str(tmp / "dose_voxel_plan_gy.nii.gz"),
                            useCompression=True)
            write_json_atomic(tmp / "voxel_plan.json", voxel_plan_record(plan, result))
            record["voxel_plan"] = {k: v for k, v in result.items() if k != "dose"}
        if args.rtdose or args.seg or args.rtstruct:
            progress.step("writing " + " and ".join(
                n for n, on in (("DICOM RT Dose", args.rtdose), ("DICOM SEG", args.seg),
                                ("DICOM RT Structure Set", args.rtstruct)) if on))
        if args.rtdose:
            _write_rt_doses(tmp, ct, planned, record.get("post_treatment") and delivered)
        if args.seg:
            from ..dicom.seg import export_seg
            if not Path(ct.source).is_dir():
                raise FieldValueError("--seg", True, "a DICOM planning CT folder")
            export_seg(structures.masks, structures.kinds, ct.source,
                       tmp / "structures_seg.dcm")
        if args.rtstruct:
            from ..dicom.rtstruct import write_rtstruct
            from ..dicom.seg import exported_structures
            if not Path(ct.source).is_dir():
                raise FieldValueError("--rtstruct", True, "a DICOM planning CT folder")
            write_rtstruct(*exported_structures(structures), ct.source,
                           tmp / "structures_rtstruct.dcm")
        write_json_atomic(tmp / "dose.json", record)
    print(_summary(record))
    for line in _verification_summary(record):
        print(line)
    if "voxel_plan" in record:
        vp = record["voxel_plan"]
        print("voxel plan: " + ", ".join(f"{n} {a:.3f} GBq" for n, a in vp["activities_gbq"].items())
              + f"; lowest tumour goal fraction {vp['goal_fraction']:.2f}; binding: "
              + (", ".join(vp["binding"]) or "none"))
    print(f"written to {shown_as or out}")
    return 0


def _post_resolution_option(args: argparse.Namespace, nuclide: str) -> dict | None:
    """The post-treatment image's resolution from --camera (checked against the image's
    modality and the treatment's nuclide), or None for the assumed default."""
    if not args.camera:
        return None
    if args.no_pvc:
        raise FieldValueError("--no-pvc", True, "no --camera with --no-pvc (the camera file is "
                              "for the correction)")
    if not (args.pet or args.post_spect):
        raise FieldValueError("--camera", args.camera, "a camera file with --pet or "
                              "--post-spect (it corrects the post-treatment image)")
    from ..dosimetry.post_treatment_pvc import post_treatment_resolution
    return post_treatment_resolution(args.camera, nuclide, "pet" if args.pet else "spect",
                                     "--camera")


def _write_rt_doses(folder: Path, ct, planned, delivered) -> None:
    """DICOM RT Dose of the planned (and delivered) dose in the CT's study and frame."""
    from ..dicom.rtdose import write_rt_doses

    if not ct.meta.get("frame_of_reference_uid"):
        raise FieldValueError("--rtdose", True, "a DICOM planning CT (its frame of reference "
                              "and study are referenced by the RT Dose)")
    write_rt_doses(folder, ct.meta, planned, delivered if delivered is not False else None)


def _resolve_next_to_record(measurement: dict, folder: Path) -> None:
    """A relative image path that does not exist from the current folder is looked up next
    to the measurement record (measure writes paths as given, relative to where it ran,
    which is usually the record's folder); paths that exist as given are kept."""
    def resolve(path):
        if isinstance(path, str) and not Path(path).is_absolute() and not Path(path).exists() \
                and (folder / path).exists():
            return str(folder / path)
        return path
    for key in ("ct", "spect"):
        entry = measurement["inputs"][key]
        entry["source"] = resolve(entry["source"])
    labels = measurement["inputs"]["labels"]
    for key in list(labels):
        labels[key] = resolve(labels[key])
    outputs = measurement.get("label_outputs") or {}
    for key in ("territories", "lungs"):
        if key in outputs:
            outputs[key] = resolve(outputs[key])


def _check_measurement_files(measurement: dict) -> None:
    """The images and label maps a measurement record names exist (before any is read)."""
    from ..errors import ImageDataError
    named = {f"inputs.{k}.source": measurement["inputs"][k]["source"] for k in ("ct", "spect")}
    named.update({f"inputs.labels.{k}": v for k, v in measurement["inputs"]["labels"].items()
                  if k in ("liver", "tumours")})
    named.update({f"label_outputs.{k}": v
                  for k, v in (measurement.get("label_outputs") or {}).items()
                  if k in ("territories", "lungs")})
    for field, path in named.items():
        if isinstance(path, str) and not Path(path).exists():
            raise ImageDataError(f"--measurement {field}", path,
                                 "an existing file or DICOM folder")


def _check_plan_matches_measurement(plan: dict, measurement: dict, path: str) -> None:
    """Refuse a plan made for another measurement: its case names the measurement by SHA-256
    (tareplanner measure writes it); a case that names none must at least have the
    measurement's positions and tumours, or the dose of a position would silently be 0."""
    from ..records.chain import check_parent
    recorded = ((plan.get("case") or {}).get("measurement") or {}).get("sha256")
    if recorded:
        # the one check of the record chain (records/chain.py)
        check_parent(plan["case"], "--plan (its case)", "measurement", measurement,
                     f"--measurement {path}", Path(path).read_bytes())
        return
    positions = {p["name"] for p in plan["positions"]}
    measured = {p["name"] for p in measurement.get("positions", [])}
    tumours = {t["name"] for p in plan["positions"] for t in p["tumours"]}
    known = set((measurement.get("tumour_labels") or {}))
    if positions != measured or not tumours <= known:
        raise FieldValueError("--plan", sorted(positions | tumours),
                              f"the positions {sorted(measured)} and tumours {sorted(known)} "
                              f"of {path} (the plan's case does not name a measurement)")


def _administration_activity(args: argparse.Namespace, plan: dict) -> None:
    """With --administration, the administered activity is the record's delivered total and
    the residual is zero (the record subtracted it); the record must belong to this plan."""
    if not args.administration:
        return
    from ..records.administration import validate_administration
    if args.administered_gbq is not None or args.residual_fraction is not None:
        raise FieldValueError("--administration", args.administration,
                              "either an administration record or --administered-gbq/"
                              "--residual-fraction, not both")
    record = validate_administration(_load_json(args.administration, "--administration"),
                                     args.administration)
    from ..records.chain import check_parent, record_sha256
    check_parent(record["directive"] if isinstance(record.get("directive"), dict) else record,
                 f"--administration {args.administration} (its directive)", "plan", plan,
                 f"--plan {getattr(args, 'plan', None) or 'plan'}")
    args.administration_sha256 = record_sha256(record)
    args.administration_directive = record.get("directive") or {}
    # a limit accepted by override on the directive shows on every later record
    args.administration_warnings = [w for w in record.get("warnings") or []
                                    if w.get("code") in ("limit-override", "medical-event-lung",
                                                         "reading-confirmed")]
    total = record["total_delivered_activity_gbq"]
    if not (isinstance(total, (int, float)) and total > 0):
        raise FieldValueError("--administration total_delivered_activity_gbq", total, "> 0")
    args.administered_gbq, args.residual_fraction = float(total), 0.0


#: the administered activity's source in an activity check made with --administration
ADMINISTRATION_SOURCE = "delivered total of the administration record"


def _from_administration_record(check: dict, warnings: list[dict]) -> None:
    """The activity check names the administration record as the administered activity's
    source (rather than an activity given on the command line)."""
    given = check.get("administered_source")
    check["administered_source"] = ADMINISTRATION_SOURCE
    for warning in warnings:
        if given and isinstance(warning.get("message"), str):
            warning["message"] = warning["message"].replace(given, ADMINISTRATION_SOURCE)


def _check_activity_options(args: argparse.Namespace) -> None:
    """--administered-gbq and --residual-fraction, before anything is computed or written."""
    import math
    if args.administered_gbq is not None and not (math.isfinite(args.administered_gbq)
                                                  and args.administered_gbq > 0):
        raise FieldValueError("--administered-gbq", args.administered_gbq,
                              "a finite activity > 0 GBq")
    if args.residual_fraction is not None and not 0 <= args.residual_fraction < 1:
        raise FieldValueError("--residual-fraction", args.residual_fraction, "0 <= R < 1")


def _verification_summary(record: dict) -> list[str]:
    """The activity check and the record's warnings, as printed after the dose table."""
    lines = []
    check = record.get("post_treatment", {}).get("activity_check")
    if check and check.get("applicable"):
        lines.append(f"activity in the post-treatment image at administration "
                     f"{check['image_total_gbq']:.3f} GBq "
                     f"({check['inside_liver_and_lungs_gbq']:.3f} GBq in liver and lungs) vs "
                     f"{check['expected_in_patient_gbq']:.3f} GBq "
                     f"expected: {check['relative_difference']:+.1%} (tolerance "
                     f"±{check['tolerance']:.0%})")
    lines += [f"warning: [{w['code']}] {w['message']}" for w in record.get("warnings") or []]
    return lines


def _summary(record: dict) -> str:
    """The dose table printed by ``dose`` (and ``demo``): per structure its volume (mL) and
    the predictive mean, D70 and maximum (Gy); with a post-treatment image, the delivered
    mean and D70 (Gy) and the change of the mean dose, delivered against planned (%)."""
    delivered = record.get("post_treatment", {}).get("structures", {})
    comparison = record.get("comparison") or {}
    names = [f"{'structure':<28}", f"{'volume':>7}", f"{'mean':>6}", f"{'D70':>6}",
             f"{'max':>6}"]
    units = [f"{'':<28}", f"{'(mL)':>7}", f"{'(Gy)':>6}", f"{'(Gy)':>6}", f"{'(Gy)':>6}"]
    if delivered:
        names += [f"{'delivered mean':>16}", f"{'D70':>6}", f"{'change':>7}"]
        units += [f"{'(Gy)':>16}", f"{'(Gy)':>6}", f"{'(%)':>7}"]
    lines = [" ".join(names).rstrip(), " ".join(units).rstrip()]

    def number(value, spec):
        return "-" if value is None else format(value, spec)
    for name, r in record["predictive"]["structures"].items():
        cells = [f"{name[:28]:<28}", f"{number(r.get('volume_ml'), '.1f'):>7}",
                 f"{r['mean_gy']:>6.1f}", f"{r['D70']:>6.1f}", f"{r['max_gy']:>6.1f}"]
        if name in delivered:
            relative = ((comparison.get(name) or {}).get("mean_gy") or {}).get("relative")
            cells += [f"{delivered[name]['mean_gy']:>16.1f}", f"{delivered[name]['D70']:>6.1f}",
                      f"{number(None if relative is None else 100 * relative, '+.1f'):>7}"]
        lines.append(" ".join(cells))
    return "\n".join(lines)


def add_dose_commands(sub) -> None:
    p = sub.add_parser("dose", help="voxel dose, DVHs and (with --pet) delivered vs planned")
    p.add_argument("--measurement", required=True, help="measurement record of the case")
    p.add_argument("--plan", required=True, help="plan record")
    p.add_argument("--pet", help="post-treatment Y-90 PET (Bq/mL)")
    p.add_argument("--post-spect", help="post-treatment SPECT in counts (Y-90 bremsstrahlung "
                                        "or Ho-166), in the planning CT's frame of reference")
    p.add_argument("--administered-gbq", type=float,
                   help="administered activity (GBq): --post-spect is scaled to it; with --pet "
                        "the activity in the image is checked against it (default: the plan's "
                        "total activity)")
    p.add_argument("--administration", metavar="FILE",
                   help="administration record (tareplanner administer): its delivered "
                        "activity is the administered activity, its residual already "
                        "subtracted")
    p.add_argument("--residual-fraction", type=float,
                   help="residual fraction left in vial and lines (default: the plan's)")
    p.add_argument("--administration-time", help="ISO 8601 (overrides the PET header)")
    p.add_argument("--method", default="kernel", choices=("kernel", "ldm"),
                   help="kernel convolution or local deposition (default: %(default)s)")
    p.add_argument("--gpu", action="store_true", help="convolve on the GPU (needs CuPy)")
    p.add_argument("--density-curve", metavar="FILE",
                   help="site CT HU-to-density curve (tareplanner.hu-density/1; default: the "
                        "packaged data/hu_density.json), recorded in dose.json")
    p.add_argument("--seg", action="store_true",
                   help="also write the structures as DICOM SEG on the planning CT")
    p.add_argument("--rtdose", action="store_true",
                   help="also write DICOM RT Dose files in the planning CT's study and frame")
    p.add_argument("--rtstruct", action="store_true",
                   help="also write the structures and territories as a DICOM RT Structure "
                        "Set on the planning CT")
    p.add_argument("--bin-gy", type=float, default=1.0, help="DVH bin width (Gy)")
    p.add_argument("--camera", metavar="FILE",
                   help="camera file of the post-treatment PET or SPECT (tareplanner "
                        "calibrate): its resolution corrects the structure mean doses for "
                        "partial volume (default: an assumed resolution, said so)")
    p.add_argument("--no-pvc", action="store_true",
                   help="no partial-volume correction of the post-treatment mean doses")
    p.add_argument("--voxel-plan", choices=("mean", "D70"),
                   help="also solve the activities on voxel doses (tumour mean or D70 goals)")
    p.add_argument("--out", required=True,
                   help="output folder, made with any missing parent folders")
    p.add_argument("--force", action="store_true", help="replace a non-empty output folder")
    p.add_argument("--quiet", action="store_true",
                   help="no progress lines on stderr (they are written only to a terminal)")
    p.set_defaults(func=cmd_dose)
