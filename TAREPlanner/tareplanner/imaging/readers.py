"""Reading images: DICOM series (CT, CBCT, PET, multi-frame NM SPECT, RT Dose) with pydicom,
and NIfTI / NRRD / MHA with SimpleITK, into SimpleITK images in LPS with their units and
timing.

Checks (each a :class:`~tareplanner.errors.ImageDataError` naming the file and the tag):
mixed series, missing spacing or orientation, non-uniform slice spacing beyond tolerance,
emission images without counts or activity units, empty or corrupted files.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.errors import InvalidDicomError

from ..errors import ImageDataError
from .loaded import ACTIVITY_UNITS, COUNT_UNITS, LoadedImage  # noqa: F401 (re-exported)

NON_DICOM_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
#: slice spacing tolerance: absolute (mm) and relative to the median spacing
SPACING_TOL_MM = 0.05
SPACING_TOL_REL = 0.01
#: units of emission images that TAREPlanner can use
HALF_LIVES_S = {"Y-90": 64.1 * 3600, "Ho-166": 26.8 * 3600, "Tc-99m": 6.0067 * 3600}


def _sha256_files(paths) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def read_image(path: str | Path, *, series_uid: str | None = None, units: str | None = None,
               modality: str | None = None) -> LoadedImage:
    """Read an image file or a DICOM folder.

    ``series_uid`` picks one series from a folder holding several; ``units`` and ``modality``
    describe non-DICOM images (NIfTI, NRRD, MHA), which carry neither.
    """
    path = Path(path)
    if not path.exists():
        raise ImageDataError("image", str(path), "an existing file or DICOM folder")
    if path.is_file() and path.name.lower().endswith(NON_DICOM_SUFFIXES):
        return _read_itk(path, units, modality)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return _read_dicom(path, files, series_uid)


def _read_itk(path: Path, units: str | None, modality: str | None) -> LoadedImage:
    try:
        image = sitk.ReadImage(str(path), sitk.sitkFloat32)
    except RuntimeError as exc:
        raise ImageDataError(str(path), "unreadable", "a NIfTI, NRRD or MHA image",
                             str(exc).strip().splitlines()[-1]) from None
    if image.GetNumberOfPixels() == 0:
        raise ImageDataError(str(path), "empty image", "an image with voxels")
    if any(s <= 0 for s in image.GetSpacing()):
        raise ImageDataError(f"{str(path)}:spacing", image.GetSpacing(), "positive spacing")
    return LoadedImage(image=image, modality=modality or "unknown", units=units or "unknown",
                       source=str(path), sha256=_sha256_files([path]),
                       meta={"format": path.suffix.lstrip(".")})


def _dcmread_header(path: Path):
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        return None
    except Exception as exc:  # truncated or corrupted header
        raise ImageDataError(str(path), "corrupted", "a readable DICOM file", str(exc)) from None


def _read_dicom(root: Path, files: list[Path], series_uid: str | None) -> LoadedImage:
    headers = []
    for f in files:
        ds = _dcmread_header(f)
        if ds is not None and "Rows" in ds:
            headers.append((f, ds))
    if not headers:
        raise ImageDataError(str(root), "no DICOM images", "a folder or file with DICOM images")
    series: dict[str, list] = {}
    for f, ds in headers:
        series.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append((f, ds))
    if series_uid is not None:
        if series_uid not in series:
            raise ImageDataError(f"{root}:SeriesInstanceUID (0020,000E)", series_uid,
                                 "one of " + ", ".join(series))
        chosen = series[series_uid]
    elif len(series) > 1:
        described = [f"{uid} ({items[0][1].get('Modality', '?')}, "
                     f"{items[0][1].get('SeriesDescription', '')!s}, {len(items)} files)"
                     for uid, items in series.items()]
        raise ImageDataError(f"{root}:SeriesInstanceUID (0020,000E)", "several series",
                             "one series per folder, or choose one with series_uid: "
                             + "; ".join(described))
    else:
        chosen = next(iter(series.values()))
    first_path, first = chosen[0]
    frames = int(first.get("NumberOfFrames", 1) or 1)
    if len(chosen) == 1 and frames > 1:
        loaded = _read_multiframe(first_path)
    else:
        loaded = _read_slices(chosen)
    loaded.sha256 = _sha256_files([f for f, _ in chosen])
    loaded.source = str(root)
    return loaded


def _float_list(ds, keyword: str, path: Path, tag: str, n: int) -> np.ndarray:
    value = ds.get(keyword)
    if value is None or len(value) != n:
        raise ImageDataError(f"{path}:{keyword} {tag}", value, f"{n} numbers")
    return np.array([float(v) for v in value])


def _direction(iop: np.ndarray, path: Path) -> np.ndarray:
    row, col = iop[:3], iop[3:]
    if not (np.isclose(np.linalg.norm(row), 1, atol=1e-3) and
            np.isclose(np.linalg.norm(col), 1, atol=1e-3) and abs(row @ col) < 1e-3):
        raise ImageDataError(f"{path}:ImageOrientationPatient (0020,0037)", list(iop),
                             "two orthonormal direction cosines")
    return np.column_stack([row, col, np.cross(row, col)])


def _pixel_array(path: Path) -> np.ndarray:
    try:
        return pydicom.dcmread(path).pixel_array
    except Exception as exc:
        raise ImageDataError(f"{path}:PixelData (7FE0,0010)", "unreadable",
                             "pixel data pydicom can decode", str(exc)) from None


def _read_slices(items: list) -> LoadedImage:
    path0, ds0 = items[0]
    iop = _float_list(ds0, "ImageOrientationPatient", path0, "(0020,0037)", 6)
    direction = _direction(iop, path0)
    normal = direction[:, 2]
    pixel_spacing = _float_list(ds0, "PixelSpacing", path0, "(0028,0030)", 2)
    rows, cols = int(ds0.Rows), int(ds0.Columns)
    entries = []
    for path, ds in items:
        ipp = _float_list(ds, "ImagePositionPatient", path, "(0020,0032)", 3)
        if not np.allclose(_float_list(ds, "ImageOrientationPatient", path, "(0020,0037)", 6),
                           iop, atol=1e-4):
            raise ImageDataError(f"{path}:ImageOrientationPatient (0020,0037)",
                                 list(ds.ImageOrientationPatient), f"the series' {list(iop)}")
        if int(ds.Rows) != rows or int(ds.Columns) != cols:
            raise ImageDataError(f"{path}:Rows/Columns (0028,0010/0011)",
                                 (int(ds.Rows), int(ds.Columns)), f"the series' {(rows, cols)}")
        entries.append((float(ipp @ normal), ipp, path, ds))
    entries.sort(key=lambda e: e[0])
    positions = np.array([e[0] for e in entries])
    if len(entries) > 1:
        steps = np.diff(positions)
        if np.any(steps < 1e-6):
            dup = entries[int(np.argmin(steps)) + 1][2]
            raise ImageDataError(f"{dup}:ImagePositionPatient (0020,0032)", "duplicate slice",
                                 "one image per slice position (mixed acquisitions?)")
        median = float(np.median(steps))
        tol = max(SPACING_TOL_MM, SPACING_TOL_REL * median)
        worst = int(np.argmax(np.abs(steps - median)))
        if abs(steps[worst] - median) > tol:
            raise ImageDataError(f"{entries[worst + 1][2]}:ImagePositionPatient (0020,0032)",
                                 f"slice step {steps[worst]:.3f} mm",
                                 f"uniform spacing {median:.3f} +/- {tol:.3f} mm")
        slice_spacing = median
    else:
        slice_spacing = float(ds0.get("SliceThickness", 0) or 0) or 1.0
    volume = np.empty((len(entries), rows, cols), dtype=np.float32)
    for k, (_, _, path, ds) in enumerate(entries):
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
        volume[k] = _pixel_array(path).astype(np.float64) * slope + intercept
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing((float(pixel_spacing[1]), float(pixel_spacing[0]), slice_spacing))
    image.SetOrigin(tuple(float(v) for v in entries[0][1]))
    image.SetDirection(tuple(direction.ravel()))
    modality = str(ds0.get("Modality", ""))
    return LoadedImage(image=image, modality=modality, units=_units(ds0, path0, modality),
                       source="", sha256="", meta=_metadata(ds0, len(entries)))


def _read_multiframe(path: Path) -> LoadedImage:
    ds = pydicom.dcmread(path)
    modality = str(ds.get("Modality", ""))
    frames = int(ds.NumberOfFrames)
    if "DetectorInformationSequence" in ds:  # NM
        detector = ds.DetectorInformationSequence[0]
        iop = _float_list(detector, "ImageOrientationPatient", path,
                          "(0054,0022)>(0020,0037)", 6)
        ipp = _float_list(detector, "ImagePositionPatient", path, "(0054,0022)>(0020,0032)", 3)
        spacing = ds.get("SpacingBetweenSlices") or ds.get("SliceThickness")
        if spacing is None:
            raise ImageDataError(f"{path}:SpacingBetweenSlices (0018,0088)", None,
                                 "the distance between reconstructed slices")
        offsets = np.arange(frames) * float(spacing)
        scale = _rwvm_slope(ds)
    elif "GridFrameOffsetVector" in ds:  # RT Dose
        iop = _float_list(ds, "ImageOrientationPatient", path, "(0020,0037)", 6)
        ipp = _float_list(ds, "ImagePositionPatient", path, "(0020,0032)", 3)
        offsets = np.array([float(v) for v in ds.GridFrameOffsetVector])
        scale = (float(ds.get("DoseGridScaling", 1) or 1), 0.0)
    else:
        raise ImageDataError(f"{path}:SOPClassUID (0008,0016)", str(ds.get("SOPClassUID")),
                             "multi-frame NM or RT Dose (enhanced multi-frame is not supported)")
    direction = _direction(iop, path)
    if frames > 1:
        steps = np.diff(offsets)
        median = float(np.median(steps))
        if abs(median) < 1e-6 or np.max(np.abs(steps - median)) > max(SPACING_TOL_MM,
                                                                       SPACING_TOL_REL * abs(median)):
            raise ImageDataError(f"{path}:frame offsets", list(np.round(steps, 4)[:5]),
                                 "uniform, non-zero spacing between frames")
    else:
        median = float(ds.get("SliceThickness", 1) or 1)
    pixels = ds.pixel_array.reshape(frames, int(ds.Rows), int(ds.Columns)).astype(np.float64)
    values = (pixels * scale[0] + scale[1]).astype(np.float32)
    if median < 0:  # frames run against the normal: flip to a right-handed positive spacing
        values = values[::-1]
        ipp = ipp + direction[:, 2] * offsets[-1]
        median = -median
    else:
        ipp = ipp + direction[:, 2] * offsets[0]
    pixel_spacing = _float_list(ds, "PixelSpacing", path, "(0028,0030)", 2)
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((float(pixel_spacing[1]), float(pixel_spacing[0]), median))
    image.SetOrigin(tuple(float(v) for v in ipp))
    image.SetDirection(tuple(direction.ravel()))
    return LoadedImage(image=image, modality=modality, units=_units(ds, path, modality),
                       source="", sha256="", meta=_metadata(ds, frames))


def _rwvm_slope(ds) -> tuple[float, float]:
    if "RealWorldValueMappingSequence" in ds:
        item = ds.RealWorldValueMappingSequence[0]
        return (float(item.get("RealWorldValueSlope", 1)),
                float(item.get("RealWorldValueIntercept", 0)))
    return (float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0))


def _units(ds, path: Path, modality: str) -> str:
    if modality in ("CT",):
        return "HU"
    if modality == "RTDOSE":
        return str(ds.get("DoseUnits", "GY"))
    if "RealWorldValueMappingSequence" in ds:
        item = ds.RealWorldValueMappingSequence[0]
        codes = item.get("MeasurementUnitsCodeSequence")
        if codes:
            unit = str(codes[0].CodeValue)
            if unit in COUNT_UNITS or unit in ACTIVITY_UNITS:
                return "counts" if unit in COUNT_UNITS else "BQML"
            raise ImageDataError(f"{path}:MeasurementUnitsCodeSequence (0040,08EA)", unit,
                                 "{counts} or Bq/ml")
    units = ds.get("Units")
    if units is not None:
        units = str(units)
        if units in COUNT_UNITS:
            return "counts"
        if units in ACTIVITY_UNITS:
            return "BQML"
        raise ImageDataError(f"{path}:Units (0054,1001)", units,
                             "CNTS or BQML (counts or activity concentration)")
    if modality == "NM":
        return "counts"  # NM image pixel values are counts unless mapped otherwise (PS3.3 C.8.4)
    if modality == "PT":
        raise ImageDataError(f"{path}:Units (0054,1001)", None, "CNTS or BQML")
    return "unknown"


def _dicom_datetime(date: str | None, time: str | None, offset: str | None = None):
    if not date:
        return None
    text = date + (time or "000000")
    stamp = datetime.strptime(text.split(".")[0][:14].ljust(14, "0"), "%Y%m%d%H%M%S")
    if "." in text:
        frac = text.split(".")[1][:6].ljust(6, "0")
        stamp = stamp.replace(microsecond=int(frac))
    if offset:
        sign = 1 if offset[0] == "+" else -1
        stamp = stamp.replace(tzinfo=timezone(sign * timedelta(hours=int(offset[1:3]),
                                                                minutes=int(offset[3:5]))))
    return stamp


def _split_dt(value: str):
    value = str(value)
    offset = None
    for sign in ("+", "-"):
        if sign in value[8:]:
            value, rest = value[:8] + value[8:].split(sign)[0], value[8:].split(sign)[1]
            offset = sign + rest
    return value[:8], value[8:] or None, offset


def _nuclide_name(item, half_life_s: float | None) -> str | None:
    texts = [str(item.get("Radiopharmaceutical", ""))]
    codes = item.get("RadionuclideCodeSequence")
    if codes:
        texts.append(str(codes[0].get("CodeMeaning", "")))
    joined = " ".join(texts).lower().replace("^", "")
    for name, keys in {"Y-90": ("y-90", "90y", "yttrium"), "Ho-166": ("ho-166", "166ho", "holmium"),
                       "Tc-99m": ("tc-99m", "99mtc", "technetium")}.items():
        if any(k in joined for k in keys):
            return name
    if half_life_s:
        for name, t in HALF_LIVES_S.items():
            if abs(half_life_s - t) / t < 0.02:
                return name
    return None


def _metadata(ds, slices: int) -> dict:
    meta: dict[str, Any] = {
        "series_instance_uid": str(ds.get("SeriesInstanceUID", "")),
        "study_instance_uid": str(ds.get("StudyInstanceUID", "")),
        "frame_of_reference_uid": str(ds.get("FrameOfReferenceUID", "")),
        "series_description": str(ds.get("SeriesDescription", "")),
        "patient_id": str(ds.get("PatientID", "")),
        "patient_name": str(ds.get("PatientName", "")),
        "sop_class_uid": str(ds.get("SOPClassUID", "")),
        "slices": slices,
    }
    tz = str(ds.get("TimezoneOffsetFromUTC", "") or "") or None
    acq = _dicom_datetime(ds.get("AcquisitionDate"), ds.get("AcquisitionTime"), tz)
    meta["acquisition_time_source"] = "AcquisitionDate/Time"
    if acq is None:
        acq = _dicom_datetime(ds.get("SeriesDate"), ds.get("SeriesTime"), tz)
        meta["acquisition_time_source"] = "SeriesDate/Time" if acq else None
    meta["acquisition_datetime"] = acq.isoformat() if acq else None
    if "DecayCorrection" in ds:
        meta["decay_correction"] = str(ds.DecayCorrection)
    if "RadiopharmaceuticalInformationSequence" in ds:
        item = ds.RadiopharmaceuticalInformationSequence[0]
        half_life = float(item.RadionuclideHalfLife) if "RadionuclideHalfLife" in item else None
        meta["radiopharmaceutical"] = str(item.get("Radiopharmaceutical", ""))
        meta["radionuclide"] = _nuclide_name(item, half_life)
        meta["radionuclide_half_life_s"] = half_life
        dose = item.get("RadionuclideTotalDose")
        if dose is not None:
            # PS3.3: Bq for PET, MBq for NM
            meta["administered_activity_bq"] = float(dose) * (1e6 if ds.Modality == "NM" else 1.0)
        start = None
        if item.get("RadiopharmaceuticalStartDateTime"):
            date, time, offset = _split_dt(item.RadiopharmaceuticalStartDateTime)
            start = _dicom_datetime(date, time, offset or tz)
        elif item.get("RadiopharmaceuticalStartTime"):
            start = _dicom_datetime(ds.get("SeriesDate"), item.RadiopharmaceuticalStartTime, tz)
        meta["administration_datetime"] = start.isoformat() if start else None
    return meta
