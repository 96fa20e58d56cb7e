"""Reading images: DICOM series (CT, CBCT, PET, multi-frame NM SPECT, RT Dose) with pydicom,
and NIfTI / NRRD / MHA with SimpleITK, into SimpleITK images in LPS with their units and
timing.

Checks (each a :class:`~tareplanner.errors.ImageDataError` naming the file and the tag):
mixed series, missing, unreadable or non-positive spacing, position or orientation,
non-uniform slice spacing beyond tolerance, slices not stacked along their normal (gantry
tilt, shear), RT Dose scaled by Dose Grid Scaling whatever its number of frames, emission images without counts or activity
units, empty, truncated or corrupted files, colour images, images that are not 3D scalar
volumes, more than :data:`MAX_VOXELS` voxels, voxel values that are not finite (NaN or
infinity, also after rescaling), unreadable dates.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.errors import InvalidDicomError

from ..dicom.common import header_text
from ..errors import ImageDataError
from .arrays import image_array
from .voxel_checks import check_finite_voxels
from .loaded import ACTIVITY_UNITS, COUNT_UNITS, LoadedImage  # noqa: F401 (re-exported)

NON_DICOM_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
#: slice spacing tolerance: absolute (mm) and relative to the median spacing
SPACING_TOL_MM = 0.05
SPACING_TOL_REL = 0.01
#: units of emission images that TAREPlanner can use
#: largest image read (voxels): 2**29, e.g. 512 x 512 x 2048, 2 GiB as float32
MAX_VOXELS = 2 ** 29
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
    try:
        exists = path.exists()
    except (OSError, ValueError):  # a NUL character, a name too long
        exists = False
    if not exists:
        raise ImageDataError("image", str(path), "an existing file or DICOM folder")
    if path.is_file() and path.name.lower().endswith(NON_DICOM_SUFFIXES):
        loaded = _read_itk(path, units, modality)
    else:
        files = (sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir()
                 else [path])
        loaded = _read_dicom(path, files, series_uid)
    _check_finite(loaded.image, str(path))
    return loaded


def read_dicom_series(files: list[str | Path], series_uid: str, source: str) -> LoadedImage:
    """One DICOM series from a list of files (a series found by a scan of headers, its files
    possibly in several folders); ``source`` names it in errors and in the records."""
    paths = [Path(f) for f in files]
    if not paths:
        raise ImageDataError("image", source, "a DICOM series with at least one file")
    loaded = _read_dicom(Path(source), paths, series_uid)
    _check_finite(loaded.image, source)
    return loaded


def _check_finite(image: sitk.Image, where: str) -> None:
    check_finite_voxels(image, where)


def _check_voxels(count: int, where: str) -> None:
    if count > MAX_VOXELS:
        raise ImageDataError(f"{where}:size", f"{count} voxels",
                             f"at most {MAX_VOXELS} voxels")


def _check_gzip(path: Path) -> None:
    """Decompress a .gz file to its end: ITK reads a truncated one without complaint."""
    try:
        with gzip.open(path, "rb") as handle:
            while handle.read(1 << 22):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        raise ImageDataError(str(path), "truncated or corrupted", "a complete gzip file",
                             str(exc)) from None


def _read_itk(path: Path, units: str | None, modality: str | None) -> LoadedImage:
    def unreadable(exc):
        return ImageDataError(str(path), "unreadable", "a NIfTI, NRRD or MHA image",
                              str(exc).strip().splitlines()[-1] if str(exc).strip() else "")

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise unreadable(exc) from None
    size = reader.GetSize()
    if len(size) != 3:
        raise ImageDataError(f"{path}:dimension", len(size), "a 3D image")
    if reader.GetNumberOfComponents() != 1:
        raise ImageDataError(f"{path}:components", reader.GetNumberOfComponents(),
                             "one value per voxel (a scalar image)")
    spacing = reader.GetSpacing()
    if not all(math.isfinite(v) and v > 0 for v in spacing):
        raise ImageDataError(f"{path}:spacing", spacing, "finite spacing > 0 mm")
    if not all(math.isfinite(v) for v in reader.GetOrigin() + reader.GetDirection()):
        raise ImageDataError(f"{path}:origin/direction", reader.GetOrigin(),
                             "finite numbers")
    count = int(np.prod([int(v) for v in size], dtype=object))
    if count == 0:
        raise ImageDataError(str(path), "empty image", "an image with voxels")
    _check_voxels(count, str(path))
    if path.name.lower().endswith(".gz"):
        _check_gzip(path)
    try:
        image = sitk.ReadImage(str(path), sitk.sitkFloat32)
    except RuntimeError as exc:
        raise unreadable(exc) from None
    return LoadedImage(image=image, modality=modality or "unknown", units=units or "unknown",
                       source=str(path), sha256=_sha256_files([path]),
                       meta={"format": path.suffix.lstrip(".")})


def _has_dicm_prefix(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def _is_image_class(ds) -> bool:
    """Whether the file's meta header declares an image (or RT Dose) storage class."""
    uid = (getattr(ds, "file_meta", None) or {}).get("MediaStorageSOPClassUID") \
        or ds.get("SOPClassUID")
    name = getattr(uid, "name", "") if uid else ""
    return "Image Storage" in name or name == "RT Dose Storage"


def _dcmread_header(path: Path):
    """The header of a DICOM file; None for a file that is not DICOM (a README, an index).
    A file that declares itself DICOM (the 'DICM' prefix) and cannot be read, or declares an
    image and holds none (cut short), is refused: it would otherwise be skipped and the
    series read without it."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError as exc:
        if _has_dicm_prefix(path):
            raise ImageDataError(str(path), "corrupted", "a readable DICOM file",
                                 str(exc)) from None
        return None
    except Exception as exc:  # truncated or corrupted header
        raise ImageDataError(str(path), "corrupted", "a readable DICOM file", str(exc)) from None
    if "Rows" not in ds and _is_image_class(ds):
        raise ImageDataError(str(path), "truncated", "a complete DICOM image",
                             "an image storage file without Rows (0028,0010)")
    return ds


def _tag_value(ds, keyword: str, path: Path, tag: str, convert, allowed: str,
               default: Any = None):
    """``convert(ds.keyword)``; a named error when the value cannot be read or converted."""
    try:
        value = ds.get(keyword)
    except Exception as exc:  # a value that does not parse as its VR
        raise ImageDataError(f"{path}:{keyword} {tag}", "unreadable", allowed, str(exc)) \
            from None
    if value is None or value == "":
        return default
    try:
        return convert(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ImageDataError(f"{path}:{keyword} {tag}", str(value), allowed, str(exc)) \
            from None


def _positive(value) -> float:
    number = _finite(value)
    if number <= 0:
        raise ValueError(f"{value} <= 0")
    return number


def _nonzero(value) -> float:
    number = _finite(value)
    if number == 0:
        raise ValueError("a slope of 0 maps every voxel to the intercept")
    return number


def _finite(value) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value} is not finite")
    return number


def _count(value) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(f"{value} < 1")
    return number


def _rows_columns(ds, path: Path) -> tuple[int, int]:
    return (_tag_value(ds, "Rows", path, "(0028,0010)", _count, "a number of rows >= 1"),
            _tag_value(ds, "Columns", path, "(0028,0011)", _count,
                       "a number of columns >= 1"))


def _check_grey(ds, path: Path) -> None:
    samples = _tag_value(ds, "SamplesPerPixel", path, "(0028,0002)", int, "1", default=1)
    if samples != 1:
        raise ImageDataError(f"{path}:SamplesPerPixel (0028,0002)", samples,
                             "1 (a greyscale image, not colour)")


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
        uid = _tag_value(ds, "SeriesInstanceUID", f, "(0020,000E)", str, "a UID", "")
        series.setdefault(uid, []).append((f, ds))
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
    frames = _tag_value(first, "NumberOfFrames", first_path, "(0028,0008)", _count,
                        "a number of frames >= 1", 1)
    if len(chosen) == 1 and (frames > 1 or _is_rt_dose(first)):
        # an RT Dose is read here whatever its number of frames, so that Dose Grid Scaling
        # (3004,000E) applies to a single-frame file as to a multi-frame one
        loaded = _read_multiframe(first_path)
    else:
        loaded = _read_slices(chosen)
    loaded.sha256 = _sha256_files([f for f, _ in chosen])
    loaded.source = str(root)
    return loaded


def _is_rt_dose(ds) -> bool:
    return str(ds.get("Modality", "")) == "RTDOSE" or "GridFrameOffsetVector" in ds


def _float_list(ds, keyword: str, path: Path, tag: str, n: int,
                positive: bool = False) -> np.ndarray:
    field = f"{path}:{keyword} {tag}"
    allowed = f"{n} finite numbers" + (" > 0" if positive else "")
    try:
        value = ds.get(keyword)
    except Exception as exc:  # a value that does not parse as its VR
        raise ImageDataError(field, "unreadable", allowed, str(exc)) from None
    if value is None:
        raise ImageDataError(field, None, allowed)
    items = [value] if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") \
        else list(value)
    try:
        numbers = [float(v) for v in items]
    except (TypeError, ValueError) as exc:
        raise ImageDataError(field, [str(v) for v in items], allowed, str(exc)) from None
    if len(numbers) != n or not all(math.isfinite(v) for v in numbers) \
            or (positive and not all(v > 0 for v in numbers)):
        raise ImageDataError(field, [str(v) for v in items], allowed)
    return np.array(numbers)


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
    pixel_spacing = _float_list(ds0, "PixelSpacing", path0, "(0028,0030)", 2, positive=True)
    rows, cols = _rows_columns(ds0, path0)
    _check_voxels(rows * cols * len(items), f"{path0.parent}:Rows x Columns x slices")
    entries = []
    for path, ds in items:
        _check_grey(ds, path)
        ipp = _float_list(ds, "ImagePositionPatient", path, "(0020,0032)", 3)
        this_iop = _float_list(ds, "ImageOrientationPatient", path, "(0020,0037)", 6)
        if not np.allclose(this_iop, iop, atol=1e-4):
            raise ImageDataError(f"{path}:ImageOrientationPatient (0020,0037)",
                                 list(this_iop), f"the series' {list(iop)}")
        this_spacing = _float_list(ds, "PixelSpacing", path, "(0028,0030)", 2, positive=True)
        if not np.allclose(this_spacing, pixel_spacing, rtol=1e-4, atol=1e-6):
            raise ImageDataError(f"{path}:PixelSpacing (0028,0030)", list(this_spacing),
                                 f"the series' {list(pixel_spacing)}")
        if _rows_columns(ds, path) != (rows, cols):
            raise ImageDataError(f"{path}:Rows/Columns (0028,0010/0011)",
                                 _rows_columns(ds, path), f"the series' {(rows, cols)}")
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
        _check_stack_along_normal(entries, direction, pixel_spacing)
    else:
        slice_spacing = _tag_value(ds0, "SliceThickness", path0, "(0018,0050)", _positive,
                                   "a thickness > 0 mm", 1.0)
    volume = np.empty((len(entries), rows, cols), dtype=np.float32)
    for k, (_, _, path, ds) in enumerate(entries):
        slope = _tag_value(ds, "RescaleSlope", path, "(0028,1053)", _nonzero,
                           "a finite number other than 0", 1.0)
        intercept = _tag_value(ds, "RescaleIntercept", path, "(0028,1052)", _finite,
                               "a finite number", 0.0)
        pixels = _pixel_array(path)
        if pixels.shape != (rows, cols):
            raise ImageDataError(f"{path}:PixelData (7FE0,0010)", f"shape {pixels.shape}",
                                 f"one greyscale frame of {rows} x {cols}")
        with np.errstate(over="ignore", invalid="ignore"):
            values = pixels.astype(np.float64) * slope + intercept
            volume[k] = values
        if not np.isfinite(volume[k]).all():
            raise ImageDataError(f"{path}:RescaleSlope/RescaleIntercept (0028,1053/1052)",
                                 f"{slope:g}/{intercept:g}",
                                 "a rescale giving finite values within the float32 range")
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing((float(pixel_spacing[1]), float(pixel_spacing[0]), slice_spacing))
    image.SetOrigin(tuple(float(v) for v in entries[0][1]))
    image.SetDirection(tuple(direction.ravel()))
    modality = str(ds0.get("Modality", ""))
    return LoadedImage(image=image, modality=modality, units=_units(ds0, path0, modality),
                       source="", sha256="", meta=_metadata(ds0, len(entries), path0))


def _check_stack_along_normal(entries: list, direction: np.ndarray,
                              pixel_spacing: np.ndarray) -> None:
    """Refuse a slice stack whose positions do not follow the slice normal: a CT acquired
    with gantry tilt (0018,1120), or any sheared stack. Its voxels are not where an
    orthogonal grid with the first slice's origin would put them (a 15 degree tilt moves the
    last of 300 slices of 1.25 mm by ~100 mm), and such a stack is not resampled here: the
    series must be resampled to an orthogonal grid first (e.g. Slicer's 'Acquisition
    geometry regularization' on DICOM import, or dcm2niix, which corrects gantry tilt)."""
    first = entries[0][1]
    offsets = np.array([e[1] - first for e in entries])
    along = offsets @ direction[:, 2]
    across = offsets - np.outer(along, direction[:, 2])
    drift = np.linalg.norm(across, axis=1)
    tolerance = max(SPACING_TOL_MM, SPACING_TOL_REL * float(np.min(pixel_spacing)))
    worst = int(np.argmax(drift))
    if drift[worst] > tolerance:
        path, ds = entries[worst][2], entries[worst][3]
        tilt = ds.get("GantryDetectorTilt")
        detail = (f"GantryDetectorTilt (0018,1120) is {tilt} degrees; " if tilt not in (None, "")
                  else "")
        raise ImageDataError(
            f"{path}:ImagePositionPatient (0020,0032)",
            f"{drift[worst]:.2f} mm off the slice normal of the first slice",
            f"slices stacked along the normal of ImageOrientationPatient (within "
            f"{tolerance:.2f} mm): a tilted or sheared stack must be resampled to an "
            "orthogonal grid first",
            detail + "gantry tilt or a non-orthogonal slice geometry")


def _read_multiframe(path: Path) -> LoadedImage:
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:
        raise ImageDataError(str(path), "corrupted", "a readable DICOM file", str(exc)) from None
    modality = str(ds.get("Modality", ""))
    frames = _tag_value(ds, "NumberOfFrames", path, "(0028,0008)", _count,
                        "a number of frames >= 1", 1)
    rows, cols = _rows_columns(ds, path)
    _check_voxels(rows * cols * frames, f"{path}:Rows x Columns x NumberOfFrames")
    _check_grey(ds, path)
    if "DetectorInformationSequence" in ds and len(ds.DetectorInformationSequence):  # NM
        detector = ds.DetectorInformationSequence[0]
        iop = _float_list(detector, "ImageOrientationPatient", path,
                          "(0054,0022)>(0020,0037)", 6)
        ipp = _float_list(detector, "ImagePositionPatient", path, "(0054,0022)>(0020,0032)", 3)
        spacing = (_tag_value(ds, "SpacingBetweenSlices", path, "(0018,0088)", _finite,
                              "a finite distance in mm")
                   or _tag_value(ds, "SliceThickness", path, "(0018,0050)", _finite,
                                 "a finite thickness in mm"))
        if spacing is None:
            raise ImageDataError(f"{path}:SpacingBetweenSlices (0018,0088)", None,
                                 "the distance between reconstructed slices")
        offsets = np.arange(frames) * float(spacing)
        scale = _rwvm_slope(ds, path)
    elif "GridFrameOffsetVector" in ds:  # RT Dose
        iop = _float_list(ds, "ImageOrientationPatient", path, "(0020,0037)", 6)
        ipp = _float_list(ds, "ImagePositionPatient", path, "(0020,0032)", 3)
        if frames == 1 and len(ds.get("GridFrameOffsetVector") or []) > 1:
            # a single frame with a longer vector (seen in the wild): its first offset
            offsets = _float_list(ds, "GridFrameOffsetVector", path, "(3004,000C)",
                                  len(ds.GridFrameOffsetVector))[:1]
        else:
            offsets = _float_list(ds, "GridFrameOffsetVector", path, "(3004,000C)", frames)
        scale = (_dose_grid_scaling(ds, path), 0.0)
    elif _is_rt_dose(ds):  # a single-frame RT Dose without a frame offset vector
        iop = _float_list(ds, "ImageOrientationPatient", path, "(0020,0037)", 6)
        ipp = _float_list(ds, "ImagePositionPatient", path, "(0020,0032)", 3)
        offsets = np.zeros(1)
        scale = (_dose_grid_scaling(ds, path), 0.0)
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
        median = _tag_value(ds, "SliceThickness", path, "(0018,0050)", _positive,
                            "a thickness > 0 mm", 1.0)
    try:
        pixels = ds.pixel_array.reshape(frames, rows, cols).astype(np.float64)
    except Exception as exc:
        raise ImageDataError(f"{path}:PixelData (7FE0,0010)", "unreadable",
                             f"{frames} frames of {rows} x {cols} pydicom can decode",
                             str(exc)) from None
    with np.errstate(over="ignore", invalid="ignore"):
        values = (pixels * scale[0] + scale[1]).astype(np.float32)
    if not np.isfinite(values).all():
        raise ImageDataError(f"{path}:rescale slope/intercept", f"{scale[0]:g}/{scale[1]:g}",
                             "a rescale giving finite values within the float32 range")
    if median < 0:  # frames run against the normal: flip to a right-handed positive spacing
        values = values[::-1]
        ipp = ipp + direction[:, 2] * offsets[-1]
        median = -median
    else:
        ipp = ipp + direction[:, 2] * offsets[0]
    pixel_spacing = _float_list(ds, "PixelSpacing", path, "(0028,0030)", 2, positive=True)
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((float(pixel_spacing[1]), float(pixel_spacing[0]), median))
    image.SetOrigin(tuple(float(v) for v in ipp))
    image.SetDirection(tuple(direction.ravel()))
    return LoadedImage(image=image, modality=modality, units=_units(ds, path, modality),
                       source="", sha256="", meta=_metadata(ds, frames, path))


def _dose_grid_scaling(ds, path: Path) -> float:
    """Dose Grid Scaling (3004,000E): stored value x scaling = dose in DoseUnits (PS3.3
    C.8.8.3). Required (type 1C) when the pixel data are integers; 1 when absent."""
    return _tag_value(ds, "DoseGridScaling", path, "(3004,000E)", _positive,
                      "a finite number > 0", 1.0)


def _rwvm_slope(ds, path: Path) -> tuple[float, float]:
    if "RealWorldValueMappingSequence" in ds and len(ds.RealWorldValueMappingSequence):
        item = ds.RealWorldValueMappingSequence[0]
        where = "(0040,9096)>"
        return (_tag_value(item, "RealWorldValueSlope", path, where + "(0040,9225)",
                           _nonzero, "a finite number other than 0", 1.0),
                _tag_value(item, "RealWorldValueIntercept", path, where + "(0040,9224)",
                           _finite, "a finite number", 0.0))
    return (_tag_value(ds, "RescaleSlope", path, "(0028,1053)", _nonzero,
                       "a finite number other than 0", 1.0),
            _tag_value(ds, "RescaleIntercept", path, "(0028,1052)", _finite,
                       "a finite number", 0.0))


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


def series_metadata(files) -> dict:
    """The metadata :func:`read_image` gives a DICOM series (patient, study, series, times,
    radiopharmaceutical), read from the header of the first of its ``files`` without its
    pixels: for a series another program has loaded (3D Slicer's DICOM module). A file that
    cannot be read is refused (:class:`ImageDataError`)."""
    files = [Path(f) for f in files]
    if not files:
        raise ImageDataError("DICOM series", "no files", "the files of a DICOM series")
    ds = _dcmread_header(files[0])
    if ds is None:
        raise ImageDataError(str(files[0]), "not DICOM", "a DICOM file of the series")
    return _metadata(ds, len(files), files[0])


def _metadata(ds, slices: int, path: Path | None = None) -> dict:
    try:
        return _metadata_unchecked(ds, slices)
    except ImageDataError:
        raise
    except Exception as exc:  # a date, time, offset or number that does not parse
        raise ImageDataError(f"{path}:date, time or radiopharmaceutical tags", "unreadable",
                             "DICOM DA/TM/DT values (YYYYMMDD, HHMMSS, +HHMM) and numbers",
                             str(exc)) from None


#: the header attributes every DICOM image's metadata carries (dicom/common.py's table)
METADATA_KEYS = ("series_instance_uid", "study_instance_uid", "frame_of_reference_uid",
                 "series_description", "patient_id", "patient_name", "patient_birth_date",
                 "patient_sex", "study_date", "study_description", "institution_name",
                 "referring_physician_name", "sop_class_uid")


def _metadata_unchecked(ds, slices: int) -> dict:
    meta: dict[str, Any] = header_text(ds, METADATA_KEYS)
    meta["slices"] = slices
    tz = str(ds.get("TimezoneOffsetFromUTC", "") or "") or None
    acq = _dicom_datetime(ds.get("AcquisitionDate"), ds.get("AcquisitionTime"), tz)
    meta["acquisition_time_source"] = "AcquisitionDate/Time"
    if acq is None:
        acq = _dicom_datetime(ds.get("SeriesDate"), ds.get("SeriesTime"), tz)
        meta["acquisition_time_source"] = "SeriesDate/Time" if acq else None
    meta["acquisition_datetime"] = acq.isoformat() if acq else None
    duration = ds.get("ActualFrameDuration")
    try:
        duration_s = float(duration) / 1000.0 if duration is not None else None
    except (TypeError, ValueError):
        duration_s = None
    if duration_s is not None and math.isfinite(duration_s) and duration_s > 0:
        meta["frame_duration_s"] = duration_s      # PS3.3 C.8.4.10: ms
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
