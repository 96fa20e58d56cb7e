"""Writing the synthetic patient to disk: DICOM series, NIfTI images, label maps and truth.

Layout of OUTDIR::

    truth.json                        ground truth (tareplanner.phantom-truth/1)
    dicom/ct/  dicom/spect_maa/  dicom/cbct_<n>/  dicom/spect_ho166/  dicom/pet_y90/
    nifti/ct.nii.gz  spect_maa.nii.gz  cbct_<n>.nii.gz  spect_ho166.nii.gz  pet_y90.nii.gz
    labels/liver.nii.gz  lungs.nii.gz  tumours.nii.gz  territories.nii.gz   (CT grid)
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from . import anatomy as anat
from .phantom import Phantom, pet_scan_duration_s

ENERGY_WINDOWS_KEV = {"Tc-99m": (126.45, 154.55), "Ho-166": (72.9, 89.1)}


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def label_images(phantom: Phantom) -> dict[str, sitk.Image]:
    """Liver (incl. tumours), lungs, tumours (1..n) and territories (1..P) on the CT grid."""
    labels = sitk.GetArrayFromImage(phantom.labels)
    out = {
        "liver": (labels >= anat.LIVER).astype(np.uint8),
        "lungs": ((labels == anat.LUNG_RIGHT) | (labels == anat.LUNG_LEFT)).astype(np.uint8),
        "tumours": np.where(labels >= anat.FIRST_TUMOUR, labels - anat.FIRST_TUMOUR + 1,
                            0).astype(np.uint8),
        "territories": sitk.GetArrayFromImage(phantom.territories).astype(np.uint8),
    }
    images = {}
    for name, array in out.items():
        img = sitk.GetImageFromArray(array)
        img.CopyInformation(phantom.ct)
        images[name] = img
    return images


def write_phantom(phantom: Phantom, outdir: str | Path, *, nifti: bool = True,
                  dicom: bool = True) -> dict:
    """Write every image and the truth; returns the truth with a ``files`` map.

    Everything is written into a temporary folder beside OUTDIR and renamed at the end, so a
    failed run leaves nothing partial behind.
    """
    outdir = Path(outdir)
    if outdir.exists() and any(outdir.iterdir()):
        raise FileExistsError(f"{outdir} exists and is not empty")
    outdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", dir=outdir.parent))
    try:
        truth = _write(phantom, tmp, nifti, dicom)
        if outdir.exists():
            outdir.rmdir()
        tmp.rename(outdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return truth


def _write(phantom: Phantom, out: Path, nifti: bool, dicom: bool) -> dict:
    from ..dicom.common import SeriesInfo, make_uid
    from ..dicom.images import write_ct_series, write_nm_spect, write_pet_series
    spec = phantom.spec
    seed = f"tareplanner-phantom-{spec.seed}"
    study = make_uid(seed, "study")
    frame = make_uid(seed, "frame")
    workup = datetime.fromisoformat(spec.workup_time)
    admin = datetime.fromisoformat(spec.administration_time)
    files: dict[str, dict] = {}

    def info(name, number, when, frame_uid=frame, acquisition=None):
        return SeriesInfo(study_uid=study, frame_of_reference_uid=frame_uid,
                          series_uid=make_uid(seed, name), series_description=name,
                          series_number=number, series_datetime=when,
                          acquisition_datetime=acquisition or when)

    images = {"ct": phantom.ct, "spect_maa": phantom.spect}
    if dicom:
        write_ct_series(phantom.ct, out / "dicom" / "ct", info("CT", 1, workup), uid_seed=seed)
        write_nm_spect(phantom.spect, out / "dicom" / "spect_maa" / "NM0001.dcm",
                       info("SPECT Tc-99m MAA", 2, workup + timedelta(minutes=40)),
                       nuclide="Tc-99m", radiopharmaceutical="Tc-99m MAA",
                       administered_mbq=spec.maa_activity_mbq,
                       administration=workup - timedelta(hours=1),
                       energy_window_kev=ENERGY_WINDOWS_KEV["Tc-99m"], uid_seed=seed)
    for i, (name, image) in enumerate(phantom.cbcts.items()):
        key = f"cbct_{slug(name)}"
        images[key] = image
        if dicom:
            write_ct_series(image, out / "dicom" / key,
                            info(f"CBCT {name}", 10 + i, workup - timedelta(hours=2),
                                 frame_uid=make_uid(seed, "frame", key)), uid_seed=seed)
    if phantom.scout is not None:
        images["spect_ho166"] = phantom.scout
        if dicom:
            write_nm_spect(phantom.scout, out / "dicom" / "spect_ho166" / "NM0001.dcm",
                           info("SPECT Ho-166 scout", 3, workup + timedelta(minutes=50)),
                           nuclide="Ho-166", radiopharmaceutical="Ho-166 PLLA scout",
                           administered_mbq=spec.scout_activity_mbq,
                           administration=workup - timedelta(hours=1),
                           energy_window_kev=ENERGY_WINDOWS_KEV["Ho-166"], uid_seed=seed)
    if phantom.pet is not None:
        images["pet_y90"] = phantom.pet
        if dicom:
            acquisition = admin + timedelta(hours=spec.pet_delay_h)
            write_pet_series(phantom.pet, out / "dicom" / "pet_y90",
                             info("PET Y-90", 20, acquisition), nuclide="Y-90",
                             radiopharmaceutical="Y-90 microspheres",
                             administered_bq=sum(spec.pet_activities_gbq) * 1e9,
                             administration=admin, half_life_s=64.1 * 3600, uid_seed=seed,
                             frame_duration_s=pet_scan_duration_s(spec))
    for key in images:
        if dicom:
            files.setdefault(key, {})["dicom"] = f"dicom/{key}"
    if dicom and "spect_maa" in images:
        files["spect_maa"]["dicom"] = "dicom/spect_maa"
    labels = label_images(phantom)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    for name, image in labels.items():
        sitk.WriteImage(image, str(out / "labels" / f"{name}.nii.gz"), useCompression=True)
        files[f"labels_{name}"] = {"nifti": f"labels/{name}.nii.gz"}
    if nifti:
        (out / "nifti").mkdir(parents=True, exist_ok=True)
        for key, image in images.items():
            sitk.WriteImage(image, str(out / "nifti" / f"{key}.nii.gz"), useCompression=True)
            files.setdefault(key, {})["nifti"] = f"nifti/{key}.nii.gz"
    truth = dict(phantom.truth)
    truth["files"] = files
    truth["tumour_labels"] = {t.name: k + 1 for k, t in enumerate(spec.anatomy.tumours)}
    truth["territory_labels"] = {t.name: i + 1 for i, t in enumerate(spec.anatomy.territories)}
    (out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return truth
