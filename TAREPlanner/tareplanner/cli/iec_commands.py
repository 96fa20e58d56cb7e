"""``tareplanner phantom --iec``: a synthetic scan of the NEMA/IEC body phantom, and the PSF
options the synthetic patient shares with it."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import SimpleITK as sitk

from ..errors import FieldValueError
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


def _iec_model(args, modality: str) -> str:
    """The imaging model of ``phantom --iec``: ``--spect-model realistic`` (or ``--pet-model
    realistic`` for a PET) images a Tc-99m or Ho-166 SPECT or a Y-90 PET with the realistic
    model (the extra realistic-spect); the Gaussian/tail options and --no-blur do not apply
    to it."""
    spect_model = getattr(args, "spect_model", "gaussian")
    pet_model = getattr(args, "pet_model", "gaussian")
    for option, value in (("--spect-model", spect_model), ("--pet-model", pet_model)):
        if value not in ("gaussian", "realistic"):
            raise FieldValueError(option, value, "gaussian or realistic")
    if modality == "SPECT" and pet_model == "realistic":
        raise FieldValueError("--pet-model", pet_model, "realistic for a PET (--modality PET);"
                              " a SPECT takes --spect-model")
    option = "--pet-model" if pet_model == "realistic" else "--spect-model"
    model = "realistic" if "realistic" in (spect_model, pet_model) else "gaussian"
    if model != "realistic":
        return "gaussian"
    from ..imaging.spect_simulation import EXTRA, INSTALL_HINT, NUCLIDES, extra_available
    allowed = (("Y-90",) if modality == "PET" else NUCLIDES)
    if args.nuclide not in allowed:
        raise FieldValueError(option, model, "realistic for a SPECT of " + " or ".join(NUCLIDES)
                              + f" or a PET of Y-90 (got {modality} {args.nuclide})")
    if args.no_blur or args.tail_fraction or args.fwhm_mm != 14.0:
        raise FieldValueError(option, model, "realistic without --fwhm-mm, "
                              "--tail-fraction or --no-blur (its resolution is the camera's "
                              "and the reconstruction's)")
    if not extra_available():
        raise FieldValueError(option, model,
                              f"gaussian, or realistic with the extra '{EXTRA}' installed",
                              f"PyTomography and torch are missing: {INSTALL_HINT}")
    return "realistic"


def realistic_iterations(args: argparse.Namespace, realistic: bool) -> int | None:
    """``--iterations``: None when not given; refused by name without a realistic model or
    outside 1-100."""
    value = getattr(args, "iterations", None)
    if value is None:
        return None
    if not realistic:
        raise FieldValueError("--iterations", value, "only with the realistic model "
                              "(--spect-model or --pet-model realistic)")
    if not 1 <= value <= 100:
        raise FieldValueError("--iterations", value, "a whole number of OSEM iterations, "
                              "1 to 100")
    return int(value)


def realistic_acquisition_minutes(args: argparse.Namespace, realistic: bool,
                                  needs: str) -> float | None:
    """``--acquisition-minutes``: None when not given; refused by name without a realistic
    model (``needs`` says which) or outside 1-1440 minutes."""
    minutes = getattr(args, "acquisition_minutes", None)
    if minutes is None:
        return None
    if not realistic:
        raise FieldValueError("--acquisition-minutes", minutes, f"only with {needs}")
    if not (math.isfinite(minutes) and 1.0 <= minutes <= 1440.0):
        raise FieldValueError("--acquisition-minutes", minutes, "1 to 1440 minutes")
    return float(minutes)


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
    model = _iec_model(args, modality)
    minutes = realistic_acquisition_minutes(
        args, model == "realistic", "the realistic model (--spect-model or --pet-model realistic)")
    iterations = realistic_iterations(args, model == "realistic")
    spec = IecSpec(modality=modality, nuclide=args.nuclide, psf=_psf_from_args(args),
                   model=model,
                   sphere_kbq_ml=args.sphere_kbq_ml, background_kbq_ml=args.background_kbq_ml,
                   spacing_mm=(spacing,) * 3, noise=not args.no_noise,
                   ct_noise_hu=0.0 if args.no_noise else 10.0, seed=args.seed,
                   acquisition_minutes=minutes, iterations=iterations)
    made = make_iec_phantom(spec)
    with atomic_folder(out, "OUT") as tmp:
        sitk.WriteImage(made["ct"], str(tmp / "ct.nii.gz"), useCompression=True)
        sitk.WriteImage(made["image"], str(tmp / "image.nii.gz"), useCompression=True)
        write_json_atomic(tmp / "truth.json", made["truth"])
    psf = ("the realistic model (projection, attenuation, scatter"
           + (" and randoms" if modality == "PET" else "") + ", noise, OSEM)"
           if model == "realistic" else
           " + ".join(f"{w:.0%} {f:g} mm" for w, f in spec.psf.components))
    print(f"IEC body phantom ({modality} {args.nuclide}, {made['truth']['units']}, PSF {psf}"
          f"{'' if spec.noise else ', no noise'}) written to {out}: ct.nii.gz, image.nii.gz, "
          "truth.json")
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
    p.add_argument("--acquisition-minutes", type=float, metavar="MIN",
                   help="with a realistic model: the acquisition time. --iec: the "
                        "phantom's (PET: the bed, default 30; SPECT: views x seconds per "
                        "view, default 40 = 120 x 20 s), e.g. longer than the patient's for a "
                        "low-noise calibration; a patient: its realistic SPECTs' (MAA and "
                        "Ho-166 scout, default 40), e.g. a longer scout")
    p.add_argument("--iterations", type=int, metavar="N",
                   help="with a realistic model (patient or --iec): the OSEM iterations of "
                        "its reconstruction, 1 to 100 (default: the protocol's, "
                        "data/spect_simulation.json or data/pet_simulation.json); the same "
                        "--seed with more iterations is the same scan reconstructed again, "
                        "for calibrate --more-iterations-image")
    p.add_argument("--spacing-mm", type=float,
                   help="--iec: voxel size (default 4.42 mm SPECT, 4 mm PET)")
