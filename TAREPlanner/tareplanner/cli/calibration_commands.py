"""``tareplanner calibrate``: a camera file from a scan of the NEMA/IEC body phantom."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from ..errors import FieldValueError, OutputPathError
from ..records.atomic import OutputExistsError, write_json_atomic


def cmd_calibrate(args: argparse.Namespace) -> int:
    from ..imaging.calibration import calibrate, half_life_h, parse_centres
    from ..imaging.camera_file import MISFIT_CODE, NOT_CONVERGED_CODE, fwhm_uncertainty
    from .imaging_commands import read_input

    out = Path(args.output)
    if out.exists() and not args.force:
        raise OutputExistsError(f"{out} exists; use --force")
    if out.exists() and out.is_dir():
        raise OutputPathError("-o", args.output, "a file, not a folder")
    half_life_h(args.nuclide)
    centres = parse_centres(args.sphere_centres_mm) if args.sphere_centres_mm else None
    ct = read_input(args.ct, "--ct", modalities=("CT",), modality="CT", units="HU")
    image, modality = _read_phantom_image(args.image, "--image", args, ct, args.modality)
    more = _read_same_scan(args.more_iterations_image, "--more-iterations-image", args, ct,
                           modality, image)
    noise = _read_same_scan(args.noise_image, "--noise-image", args, ct, modality, image)
    acquisition_s = image.meta.get("frame_duration_s")
    if args.acquisition_minutes is not None:
        minutes = args.acquisition_minutes
        if not (math.isfinite(minutes) and 0 < minutes <= 1440):
            raise FieldValueError("--acquisition-minutes", minutes, "a number of minutes > 0 "
                                  "and <= 1440 (the phantom scan's duration)")
        acquisition_s = minutes * 60.0
    camera = calibrate(ct, image, nuclide=args.nuclide, modality=modality,
                       acquisition_s=acquisition_s,
                       sphere_kbq_ml=args.sphere_kbq_ml,
                       background_kbq_ml=args.background_kbq_ml,
                       reference_time=args.reference_time, centres=centres,
                       reconstruction=args.reconstruction or "", camera_name=args.name or "",
                       operator=args.operator or "", force_model=args.model,
                       more_iterations=more, noise_image=noise)
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
    print("equivalent Gaussian FWHM per sphere: " + ", ".join(
        f"{s['diameter_mm']:g} mm " + (f"{s['equivalent_fwhm_mm']:.2f} mm"
                                       if s["equivalent_fwhm_mm"] is not None else "none")
        for s in camera["spheres"]))
    codes = {w["code"] for w in camera["warnings"]}
    carried = fwhm_uncertainty(psf["fwhm_sd_mm"], psf.get("fwhm_spread_mm"),
                               MISFIT_CODE in codes, psf["fwhm_mm"],
                               [(c["weight"], c["fwhm_mm"]) for c in psf["components"]],
                               convergence_mm=psf.get("fwhm_convergence_mm")
                               if NOT_CONVERGED_CODE in codes else None)
    if "convergence" in camera:
        c = camera["convergence"]
        print(f"convergence: effective FWHM {c['effective_fwhm_mm']:.2f} mm (protocol) -> "
              f"{c['more_iterations_effective_fwhm_mm']:.2f} mm (more iterations), change "
              f"{c['change_mm']:+.2f} mm (limit {c['limit_mm']:g} mm): "
              + ("converged" if c["converged"] else "not converged"))
    if camera.get("roi_noise"):
        n = camera["roi_noise"]
        print(f"background variability (measured on {n['measured_on']}): relative SD "
              f"{n['model']['coefficient']:.3f} x V^-{n['model']['exponent']:.3f} (V in mL)")
    print(f"FWHM uncertainty carried into the Monte Carlo: {carried['fwhm_sd_mm']:.2f} mm "
          f"({carried['fwhm_sd_basis']}): {carried['fwhm_sd_reason']}")
    for w in camera["warnings"]:
        print(f"warning [{w['code']}] {w['message']}")
    print(f"written to {out}")
    return 0


def _read_phantom_image(path: str, field: str, args: argparse.Namespace, ct, modality):
    """The phantom's emission image at ``path`` (``field`` names it in errors), checked as
    ``--image`` is: its DICOM Modality against ``modality`` (when given), counts or Bq/mL,
    the radionuclide it names against ``--nuclide``, overlapping the CT. Returns it and the
    modality (given, the DICOM's, or PET for Y-90, else SPECT)."""
    from .imaging_commands import check_overlap, read_input
    dicom_modality = None
    probe = read_input(path, field, modalities=("NM", "PT"), units=args.image_units or None)
    if "format" not in probe.meta:
        dicom_modality = {"NM": "SPECT", "PT": "PET"}.get(probe.modality)
    if modality and dicom_modality and modality != dicom_modality:
        if field == "--image":
            raise FieldValueError("--modality", modality,
                                  f"{dicom_modality} (the DICOM image's Modality)")
        raise FieldValueError(field, dicom_modality, f"{modality} (the modality of --image)")
    modality = modality or dicom_modality or ("PET" if args.nuclide == "Y-90" else "SPECT")
    image = probe
    if "format" in probe.meta and not args.image_units:
        image = read_input(path, field, units="Bq/mL" if modality == "PET" else "counts",
                           modality="PT" if modality == "PET" else "NM")
    if not (image.is_counts or image.is_activity):
        raise FieldValueError("--image-units", image.units, "counts or Bq/mL (an emission "
                              "image)")
    nuclide_in_image = image.meta.get("radionuclide")
    if nuclide_in_image and nuclide_in_image != args.nuclide:
        of = "the image's" if field == "--image" else f"{field}'s"
        raise FieldValueError("--nuclide", args.nuclide, f"{nuclide_in_image} ({of} radionuclide)")
    check_overlap(image.image, ct.image, field, path)
    return image, modality


def _read_same_scan(path: str | None, field: str, args: argparse.Namespace, ct, modality,
                    image):
    """Another reconstruction of the phantom scan of ``image`` (None when ``path`` is not
    given): read and checked as ``--image`` is, and in the units of ``image``."""
    if not path:
        return None
    other, _ = _read_phantom_image(path, field, args, ct, modality)
    if other.units != image.units:
        raise FieldValueError(field, other.units, f"{image.units} (the units of --image)")
    return other


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
    p.add_argument("--acquisition-minutes", type=float,
                   help="the phantom scan's duration (a PET's bed time), for an image in Bq/mL "
                        "whose file does not say it (DICOM: ActualFrameDuration): the noise "
                        "measured on it is scaled to a patient's scan by it")
    p.add_argument("--noise-image", metavar="IMAGE",
                   help="the same phantom scan reconstructed as the patients' images are, "
                        "where --image is reconstructed otherwise (e.g. to convergence, for "
                        "its resolution): the background variability, which the noise of the "
                        "patients' TNRs, LSF and doses is scaled from, is measured on it")
    p.add_argument("--more-iterations-image", metavar="IMAGE",
                   help="the same phantom scan reconstructed with more iterations than the "
                        "protocol's (e.g. twice as many): checks that the protocol's "
                        "reconstruction has converged in the phantom (camera-not-converged "
                        "warning, and the FWHM's change carried into the Monte Carlo, when "
                        "its fitted FWHM still changes by more than 1 mm)")
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
