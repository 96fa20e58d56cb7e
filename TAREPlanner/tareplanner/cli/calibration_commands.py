"""``tareplanner calibrate`` (a camera file from a scan of the NEMA/IEC body phantom) and
``tareplanner phantom --iec`` (a synthetic scan of that phantom)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import SimpleITK as sitk

from ..errors import FieldValueError, OutputPathError
from ..records.atomic import OutputExistsError, write_json_atomic


def _psf_from_args(args):
    from ..physics.partial_volume import PointSpread
    fwhm = args.fwhm_mm
    if not (math.isfinite(fwhm) and fwhm >= 0):
        raise FieldValueError("--fwhm-mm", fwhm, "a FWHM >= 0 mm (0: no blur)")
    if args.no_blur:
        fwhm = 0.0
    tail = args.tail_fraction
    if tail is None or tail == 0:
        return PointSpread.gaussian(fwhm)
    if not (math.isfinite(tail) and 0 < tail < 1):
        raise FieldValueError("--tail-fraction", tail, "a fraction > 0 and < 1")
    if args.tail_fwhm_mm is None or not (math.isfinite(args.tail_fwhm_mm)
                                         and args.tail_fwhm_mm > 0):
        raise FieldValueError("--tail-fwhm-mm", args.tail_fwhm_mm,
                              "the tail's FWHM in mm (> 0) with --tail-fraction")
    if args.no_blur:
        return PointSpread.gaussian(0.0)
    return PointSpread(((1.0 - tail, fwhm), (tail, float(args.tail_fwhm_mm))))


def cmd_phantom_iec(args: argparse.Namespace) -> int:
    """The synthetic IEC phantom: ct.nii.gz, image.nii.gz and truth.json in OUT."""
    from ..imaging.iec_phantom import IecSpec, make_iec_phantom
    from ..records.atomic import atomic_folder

    out = Path(args.outdir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputExistsError(f"{out} exists and is not an empty folder")
    modality = args.modality or ("PET" if args.nuclide == "Y-90" else "SPECT")
    if modality not in ("SPECT", "PET"):
        raise FieldValueError("--modality", modality, "SPECT or PET")
    from ..imaging.calibration import half_life_h
    half_life_h(args.nuclide)
    for field, value in (("--sphere-kbq-ml", args.sphere_kbq_ml),
                         ("--background-kbq-ml", args.background_kbq_ml)):
        if not (math.isfinite(value) and value >= 0):
            raise FieldValueError(field, value, "a finite concentration >= 0 kBq/mL")
    spacing = args.spacing_mm or (4.0 if modality == "PET" else 4.42)
    if not (math.isfinite(spacing) and 1.0 <= spacing <= 10.0):
        raise FieldValueError("--spacing-mm", spacing, "a voxel size of 1 to 10 mm")
    if not 0 <= args.seed < 2 ** 32:
        raise FieldValueError("--seed", args.seed, "a whole number 0 to 4294967295")
    spec = IecSpec(modality=modality, nuclide=args.nuclide, psf=_psf_from_args(args),
                   sphere_kbq_ml=args.sphere_kbq_ml, background_kbq_ml=args.background_kbq_ml,
                   spacing_mm=(spacing,) * 3, noise=not args.no_noise,
                   ct_noise_hu=0.0 if args.no_noise else 10.0, seed=args.seed)
    made = make_iec_phantom(spec)
    with atomic_folder(out, "OUT") as tmp:
        sitk.WriteImage(made["ct"], str(tmp / "ct.nii.gz"), useCompression=True)
        sitk.WriteImage(made["image"], str(tmp / "image.nii.gz"), useCompression=True)
        write_json_atomic(tmp / "truth.json", made["truth"])
    psf = " + ".join(f"{w:.0%} {f:g} mm" for w, f in spec.psf.components)
    print(f"IEC body phantom ({modality} {args.nuclide}, {made['truth']['units']}, PSF {psf}"
          f"{'' if spec.noise else ', no noise'}) written to {out}: ct.nii.gz, image.nii.gz, "
          "truth.json")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from ..imaging.calibration import calibrate, half_life_h, parse_centres
    from .imaging_commands import check_overlap, read_input

    out = Path(args.output)
    if out.exists() and not args.force:
        raise OutputExistsError(f"{out} exists; use --force")
    if out.exists() and out.is_dir():
        raise OutputPathError("-o", args.output, "a file, not a folder")
    half_life_h(args.nuclide)
    centres = parse_centres(args.sphere_centres_mm) if args.sphere_centres_mm else None
    ct = read_input(args.ct, "--ct", modalities=("CT",), modality="CT", units="HU")
    modality = args.modality
    dicom_modality = None
    probe = read_input(args.image, "--image", modalities=("NM", "PT"),
                       units=args.image_units or None)
    if "format" not in probe.meta:
        dicom_modality = {"NM": "SPECT", "PT": "PET"}.get(probe.modality)
    if modality and dicom_modality and modality != dicom_modality:
        raise FieldValueError("--modality", modality, f"{dicom_modality} (the DICOM image's "
                              "Modality)")
    modality = modality or dicom_modality or ("PET" if args.nuclide == "Y-90" else "SPECT")
    image = probe
    if "format" in probe.meta and not args.image_units:
        image = read_input(args.image, "--image",
                           units="Bq/mL" if modality == "PET" else "counts",
                           modality="PT" if modality == "PET" else "NM")
    if not (image.is_counts or image.is_activity):
        raise FieldValueError("--image-units", image.units, "counts or Bq/mL (an emission "
                              "image)")
    nuclide_in_image = image.meta.get("radionuclide")
    if nuclide_in_image and nuclide_in_image != args.nuclide:
        raise FieldValueError("--nuclide", args.nuclide,
                              f"{nuclide_in_image} (the image's radionuclide)")
    check_overlap(image.image, ct.image, "--image", args.image)
    camera = calibrate(ct, image, nuclide=args.nuclide, modality=modality,
                       sphere_kbq_ml=args.sphere_kbq_ml,
                       background_kbq_ml=args.background_kbq_ml,
                       reference_time=args.reference_time, centres=centres,
                       reconstruction=args.reconstruction or "", camera_name=args.name or "",
                       operator=args.operator or "", force_model=args.model)
    write_json_atomic(out, camera, overwrite=args.force, field="-o")
    psf = camera["psf"]
    parts = " + ".join(f"{c['weight']:.0%} {c['fwhm_mm']:.2f} mm" for c in psf["components"])
    cal = camera["calibration"]
    factor = (f"{cal['counts_per_mbq']:.4g} counts per MBq" if "counts_per_mbq" in cal
              else f"scale {cal['scale']:.4f}")
    print(f"{modality} {args.nuclide}: {psf['model']} PSF {parts} (core FWHM {psf['fwhm_mm']:.2f}"
          f" ± {psf['fwhm_sd_mm']:.2f} mm; fit residual {psf['fit_relative_residual_rms']:.1%}); "
          f"{factor}; recovery " + ", ".join(
              f"{s['diameter_mm']:g} mm {s['recovery_measured']:.2f} (model "
              f"{s['recovery_model']:.2f})" for s in camera["spheres"]))
    for w in camera["warnings"]:
        print(f"warning [{w['code']}] {w['message']}")
    print(f"written to {out}")
    return 0


def add_iec_options(p) -> None:
    """The options of ``phantom --iec`` (on the ``phantom`` parser)."""
    p.add_argument("--iec", action="store_true",
                   help="write a scan of the NEMA/IEC body phantom instead of the patient: "
                        "ct.nii.gz, image.nii.gz and truth.json, for 'tareplanner calibrate'")
    p.add_argument("--modality", choices=("SPECT", "PET"),
                   help="--iec: SPECT (counts) or PET (Bq/mL); default PET for Y-90")
    p.add_argument("--nuclide", default="Tc-99m", help="--iec: Tc-99m, Ho-166 or Y-90")
    p.add_argument("--fwhm-mm", type=float, default=14.0,
                   help="FWHM of the (core) Gaussian PSF of the SPECT (patient or --iec) in "
                        "mm (default: %(default)s)")
    p.add_argument("--tail-fraction", type=float,
                   help="fraction of the SPECT's counts (patient or --iec) in a wide tail "
                        "(core-plus-tail PSF)")
    p.add_argument("--tail-fwhm-mm", type=float, help="FWHM of that tail in mm")
    p.add_argument("--sphere-kbq-ml", type=float, default=40.0,
                   help="--iec: sphere concentration (default: %(default)s kBq/mL)")
    p.add_argument("--background-kbq-ml", type=float, default=5.0,
                   help="--iec: background concentration (default: %(default)s kBq/mL)")
    p.add_argument("--spacing-mm", type=float,
                   help="--iec: voxel size (default 4.42 mm SPECT, 4 mm PET)")


def add_calibration_commands(sub) -> None:
    p = sub.add_parser("calibrate", help="camera file (resolution, recovery, calibration "
                                         "factor) from a scan of the NEMA/IEC body phantom")
    p.add_argument("--ct", required=True, help="CT of the phantom (DICOM folder or NIfTI/NRRD/"
                                               "MHA), in the image's frame of reference")
    p.add_argument("--image", required=True, help="SPECT or PET of the phantom")
    p.add_argument("--nuclide", required=True, help="Tc-99m, Ho-166 or Y-90")
    p.add_argument("--sphere-kbq-ml", type=float, required=True,
                   help="activity concentration of the spheres (kBq/mL at --reference-time)")
    p.add_argument("--background-kbq-ml", type=float, required=True,
                   help="activity concentration of the background (kBq/mL)")
    p.add_argument("--reference-time", help="time of the concentrations (ISO 8601 with UTC "
                                            "offset); decayed to the image's acquisition")
    p.add_argument("--sphere-centres-mm", metavar="x,y,z;...",
                   help="the six sphere centres (patient coordinates, mm) in the order 10, 13, "
                        "17, 22, 28, 37 mm; default: found from the CT and the hot spots")
    p.add_argument("--modality", choices=("SPECT", "PET"),
                   help="for NIfTI/NRRD/MHA images (DICOM says it); default PET for Y-90")
    p.add_argument("--image-units", choices=("counts", "Bq/mL"),
                   help="for NIfTI/NRRD/MHA images; default counts (SPECT), Bq/mL (PET)")
    p.add_argument("--reconstruction", help="the reconstruction protocol, as the site names "
                                            "it (e.g. 'OSEM 4i10s, AC, SC, RR')")
    p.add_argument("--name", help="the camera's name (e.g. 'room 2 Symbia')")
    p.add_argument("--operator", help="who calibrated")
    p.add_argument("--model", choices=("gaussian", "core-plus-tail"),
                   help="force this PSF model (default: the residual decides)")
    p.add_argument("-o", "--output", required=True, help="camera file to write (JSON)")
    p.add_argument("--force", action="store_true", help="overwrite an existing camera file")
    p.set_defaults(func=cmd_calibrate)


def dump(camera: dict) -> str:
    return json.dumps(camera, indent=2)
