"""The web page's DICOM browser: the patients, studies and series of the data folder, and the
series the user picks as the planning CT, the scout SPECT, each position's CBCT and the
post-treatment PET or SPECT.

:func:`scan` reads headers only (pydicom, ``stop_before_pixels``) of the files inside the
data folder (every file through :func:`.files.resolve_inside`: nothing outside it, no link
leading out), at most :data:`MAX_FILES` of them, and names every file it skipped and why
(not DICOM, header unreadable, cut short, no series UID, a link leading out, past the cap).
:class:`DicomBrowser` loads a picked series into the scene with its header values and files
kept on the node (:mod:`..mrml.dicom_header`): the planning CT's identity goes into the
measurement, the case, the plan and every page of the report; a series of another patient
than the planning CT's is refused by name; *Save* writes the RT Doses, the SEG and the RT
Structure Set in the CT's study and frame of reference. It imports no web toolkit, so the
default test run covers it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..mrml import attributes
from ..records.identity import dicom_date, person_name, printable
from .files import OUTPUT_SUBFOLDER, OutsideDataFolderError, relative_name, resolve_inside

#: most files whose header one scan reads: a data folder holds a few patients' series (a CT
#: of 500 slices, a SPECT, CBCTs of 300 slices: some 1500 files); beyond the cap the scan
#: stops and says so
MAX_FILES = 5000
#: files that are images of another format or the project's own records: not read as DICOM
#: and not listed as skipped
OTHER_FORMATS = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".json", ".pdf",
                 ".csv", ".txt", ".md", ".png", ".jpg", ".jpeg", ".svg", ".html", ".zip")
#: skipped files named on the page (the count of all is given)
SHOWN_SKIPPED = 50
#: uncompressed transfer syntaxes, whose pixel data length follows from the header
UNCOMPRESSED = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2")

#: the modalities of a series of structures (segments) rather than an image
STRUCTURE_MODALITIES = ("SEG", "RTSTRUCT")
#: the roles a series can be picked for, their labels and the modalities they take
ROLES = {"ct": ("planning CT", ("CT",)),
         "spect": ("MAA / Ho-166 scout SPECT", ("NM",)),
         "cbct": ("CBCT", ("CT",)),
         "post": ("post-treatment PET or SPECT", ("PT", "NM")),
         "structures": ("structures", STRUCTURE_MODALITIES)}
#: the segmentation attribute naming the SEG or RT Structure Set series it was read from
STRUCTURES_SERIES = attributes.STRUCTURES_SERIES
#: ROI names (lower case) that are neither the liver, the lungs nor a tumour: the body
#: outline of an RT Structure Set
NOT_TUMOURS = ("body", "external", "skin", "outline")
#: RT ROI Interpreted Types (3006,00A4; PS3.3 C.8.8.8) of a tumour; an ROI of another type
#: (ORGAN, TREATED_VOLUME, EXTERNAL...) is not taken as one
TUMOUR_TYPES = ("GTV", "CTV", "PTV")


def _text(ds, keyword: str) -> str:
    """A header value as printable text; empty when absent or unreadable (a value that does
    not parse as its VR is no reason to drop the file from the list)."""
    try:
        value = ds.get(keyword, "")
    except Exception:  # noqa: BLE001 - a malformed value
        return ""
    return printable("" if value is None else value, 200)


def _int(ds, keyword: str, default: int | None = None) -> int | None:
    try:
        value = ds.get(keyword)
        return default if value in (None, "") else int(value)
    except Exception:  # noqa: BLE001 - a malformed value
        return default


@dataclass
class Series:
    """One series of the scan: its header values and its files (relative names)."""

    uid: str
    modality: str
    description: str
    date: str | None
    number: int | None
    patient_id: str
    patient_name: str
    birth_date: str | None
    sex: str
    study_uid: str
    study_date: str | None
    study_description: str
    image: bool
    files: list[str] = field(default_factory=list)
    frames: int = 0

    @property
    def images(self) -> int:
        """Number of images: slices of a single-frame series, frames of a multi-frame one."""
        return self.frames

    @property
    def structures(self) -> bool:
        """A DICOM SEG or RT Structure Set: segments to load onto the planning CT."""
        return self.modality in STRUCTURE_MODALITIES

    def row(self) -> dict:
        return {"uid": self.uid, "modality": self.modality,
                "description": self.description or "(no description)",
                "date": self.date or "", "number": self.number, "images": self.images,
                "files": len(self.files), "image": self.image and not self.structures,
                "structures": self.structures, "folder": _common_folder(self.files)}


def _common_folder(names: list[str]) -> str:
    parents = {str(Path(n).parent) for n in names}
    if len(parents) == 1:
        return parents.pop()
    return os.path.commonpath([str(Path(n).parent) for n in names]) or "."


@dataclass
class Catalogue:
    """What one scan found: the series by UID, and the files skipped with the reason."""

    series: dict[str, Series] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    files_read: int = 0
    capped: int = 0               # files not read past the cap
    max_files: int = MAX_FILES

    def patients(self) -> list[dict]:
        """Patients (name, ID, birth date, sex), each with its studies (date, description),
        each with its series (modality, description, number of images), for the page."""
        patients: dict[tuple, dict] = {}
        for s in sorted(self.series.values(),
                        key=lambda s: (s.patient_name, s.patient_id, s.study_date or "",
                                       s.study_uid, s.number or 0, s.modality, s.uid)):
            key = (s.patient_id, s.patient_name)
            patient = patients.setdefault(key, {
                "key": f"{s.patient_id}|{s.patient_name}", "id": s.patient_id or "(no ID)",
                "name": person_name(s.patient_name) or "(no name)",
                "birth_date": s.birth_date or "", "sex": s.sex, "studies": {}})
            study = patient["studies"].setdefault(s.study_uid, {
                "uid": s.study_uid, "date": s.study_date or "",
                "description": s.study_description or "(no description)", "series": []})
            study["series"].append(s.row())
        return [dict(p, studies=list(p["studies"].values())) for p in patients.values()]

    def summary(self) -> str:
        patients = {(s.patient_id, s.patient_name) for s in self.series.values()}
        text = (f"{len(self.series)} series of {len(patients)} patient(s) in "
                f"{self.files_read} files read")
        if self.skipped:
            text += f"; {len(self.skipped)} file(s) skipped"
        if self.capped:
            text += (f"; the scan stops at {self.max_files} files: {self.capped} more not read "
                     "(put each patient's series in a folder of its own and choose it)")
        return text

    def skipped_lines(self) -> list[str]:
        lines = [f"{name}: {why}" for name, why in self.skipped[:SHOWN_SKIPPED]]
        if len(self.skipped) > SHOWN_SKIPPED:
            lines.append(f"... and {len(self.skipped) - SHOWN_SKIPPED} more")
        return lines


def _files(root: Path, start: Path, catalogue: Catalogue):
    """Relative names of the files under ``start`` (the data folder or one of its folders),
    sorted, without the output folder and hidden entries; links to folders are not
    followed (named as skipped)."""
    for current, dirs, files in os.walk(start, followlinks=False):
        here = Path(current)
        level = len(here.relative_to(root).parts)
        kept = []
        for d in sorted(dirs):
            if d.startswith(".") or (level == 0 and d == OUTPUT_SUBFOLDER):
                continue
            if (here / d).is_symlink():
                catalogue.skipped.append(((here / d).relative_to(root).as_posix(),
                                          "a link to a folder: not followed"))
                continue
            kept.append(d)
        dirs[:] = kept
        for name in sorted(files):
            if not name.startswith("."):
                yield (here / name).relative_to(root).as_posix()


def _pixel_bytes(ds) -> int | None:
    """Bytes the pixel data of an uncompressed image needs (None when not known)."""
    syntax = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "")
    rows, columns = _int(ds, "Rows"), _int(ds, "Columns")
    bits = _int(ds, "BitsAllocated")
    if syntax not in UNCOMPRESSED or not rows or not columns or not bits:
        return None
    frames = _int(ds, "NumberOfFrames", 1) or 1
    samples = _int(ds, "SamplesPerPixel", 1) or 1
    return rows * columns * frames * samples * bits // 8


def _header(path: Path):
    """(dataset, None) for a readable DICOM header, (None, why) otherwise."""
    import warnings

    import pydicom
    from pydicom.errors import InvalidDicomError
    try:
        with warnings.catch_warnings():    # pydicom's notes on odd values: not the page's
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        return None, "not a DICOM file (no 'DICM' prefix at byte 128)"
    except Exception as error:  # noqa: BLE001 - a cut or corrupted header: named, skipped
        return None, printable(f"header unreadable ({type(error).__name__}: {error})", 200)
    media = str(getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", "") or "")
    if media == "1.2.840.10008.1.3.10":
        return None, "a DICOMDIR index (its series are read from their own files)"
    if not _text(ds, "SeriesInstanceUID"):
        return None, "no Series Instance UID (0020,000E)"
    if _text(ds, "Modality") == "RTSTRUCT":
        try:
            _rtstruct_types(ds, path)
        except ValueError as error:
            return None, printable(f"incomplete RT Structure Set ({error})", 200)
    needed = _pixel_bytes(ds) if "Rows" in ds else None
    if needed is not None:
        size = path.stat().st_size
        if size < needed:
            return None, (f"cut short: {size} bytes, its pixel data alone need {needed} "
                          "(Rows x Columns x frames x bits)")
    return ds, None


def scan(data_dir: str | os.PathLike, folder: str | None = None, *,
         max_files: int = MAX_FILES) -> Catalogue:
    """The DICOM series of the data folder (or of ``folder`` inside it): headers only, at
    most ``max_files`` files read; every file skipped is named with the reason."""
    root = Path(data_dir).resolve(strict=True)
    start = resolve_inside(root, folder, field="folder", kind="dir") if folder else root
    catalogue = Catalogue(max_files=max_files)
    for name in _files(root, start, catalogue):
        if name.lower().endswith(OTHER_FORMATS):
            continue
        if catalogue.files_read >= max_files:
            catalogue.capped += 1
            continue
        try:
            path = resolve_inside(root, name, field="file")
        except OutsideDataFolderError:
            catalogue.skipped.append((name, "a link leading out of the data folder: not read"))
            continue
        catalogue.files_read += 1
        ds, why = _header(path)
        if ds is None:
            catalogue.skipped.append((name, why))
            continue
        uid = _text(ds, "SeriesInstanceUID")
        series = catalogue.series.get(uid)
        if series is None:
            series = catalogue.series[uid] = Series(
                uid=uid, modality=_text(ds, "Modality") or "?",
                description=_text(ds, "SeriesDescription"),
                date=dicom_date(_text(ds, "SeriesDate")), number=_int(ds, "SeriesNumber"),
                patient_id=_text(ds, "PatientID"), patient_name=_text(ds, "PatientName"),
                birth_date=dicom_date(_text(ds, "PatientBirthDate")),
                sex=_text(ds, "PatientSex"), study_uid=_text(ds, "StudyInstanceUID"),
                study_date=dicom_date(_text(ds, "StudyDate")),
                study_description=_text(ds, "StudyDescription"), image="Rows" in ds)
        elif _text(ds, "PatientID") != series.patient_id:
            catalogue.skipped.append((name, f"Patient ID {_text(ds, 'PatientID')!r} in a "
                                            f"series of {series.patient_id!r}"))
            continue
        series.files.append(name)
        series.frames += (_int(ds, "NumberOfFrames", 1) or 1) if "Rows" in ds else 0
    return catalogue


class DicomBrowser:
    """The page's browser: the last scan and the picks, on a web session."""

    def __init__(self, session):
        self.session = session
        self.catalogue: Catalogue | None = None

    # ------------------------------------------------------------------ scanning
    def scan(self, folder: str | None = None) -> str:
        self.catalogue = scan(self.session.data_dir, folder)
        return self.catalogue.summary()

    def page(self) -> dict:
        """What the browser panel shows."""
        if self.catalogue is None:
            return {"patients": [], "skipped": [], "summary": ""}
        used = self.used()
        patients = self.catalogue.patients()
        for patient in patients:
            for study in patient["studies"]:
                for row in study["series"]:
                    row["used"] = used.get(row["uid"], [])
        return {"patients": patients, "skipped": self.catalogue.skipped_lines(),
                "summary": self.catalogue.summary()}

    def used(self) -> dict[str, list[str]]:
        """Series UID -> what it is used as now (planning CT, CBCT of a position...)."""
        from ..mrml.dicom_header import dicom_header
        p = self.session.p
        nodes = [("planning CT", p.ctVolume), ("scout SPECT", p.spectVolume),
                 ("post-treatment", p.postTreatmentVolume)]
        nodes += [(f"CBCT of {pos.name or f'position {i + 1}'}", pos.cbct)
                  for i, pos in enumerate(p.positions)]
        out: dict[str, list[str]] = {}
        for label, node in nodes:
            uid = dicom_header(node).get("series_instance_uid")
            if uid:
                out.setdefault(uid, []).append(label)
        uid = p.segmentation.GetAttribute(STRUCTURES_SERIES) if p.segmentation else None
        if uid:
            out.setdefault(uid, []).append("structures")
        return out

    # ------------------------------------------------------------------ picking
    def pick(self, uid: str, role: str) -> str:
        """Load series ``uid`` as ``role`` ('ct', 'spect', 'post' or 'cbct:<row>'); the text
        of the Data panel. A ValueError names what is wrong: a series not in the list, a
        role or modality not allowed, a series of another patient than the planning CT's, a
        file that cannot be read."""
        from ..mrml import guided
        from ..mrml.dicom_header import dicom_header
        from ..records.identity import check_same_patient
        p = self.session.p
        series = (self.catalogue.series.get(str(uid)) if self.catalogue else None)
        if series is None:
            raise ValueError(f"series: got {str(uid)[:70]!r}; allowed: a series of the list "
                             "(read the data folder again)")
        kind, _, row = str(role).partition(":")
        if kind not in ROLES or (kind == "cbct") != bool(row):
            raise ValueError(f"role: got {str(role)[:40]!r}; allowed: ct, spect, post, "
                             "cbct:<position row>, structures")
        if kind == "structures" or series.structures:
            if not series.structures:
                raise ValueError(f"structures: got a {series.modality} series "
                                 f"({series.description or series.uid}); allowed: a DICOM SEG "
                                 "or RT Structure Set series")
            if kind != "structures":
                raise ValueError(f"{ROLES[kind][0]}: got a {series.modality} series "
                                 f"({series.description or series.uid}); allowed: an image "
                                 "series (a SEG or RT Structure Set loads as structures)")
            return self._structures(series)
        index = None
        if kind == "cbct":
            if not row.isdigit() or int(row) >= len(p.positions):
                raise ValueError(f"position: got {row[:20]!r}; allowed: a row of the injection "
                                 f"positions (1 to {len(p.positions)}); add a position first")
            index = int(row)
        label, modalities = ROLES[kind]
        if index is not None:
            label = f"CBCT of {p.positions[index].name or f'position {index + 1}'}"
        if series.modality not in modalities or not series.image:
            raise ValueError(f"{label}: got a {series.modality} series "
                             f"({series.description or series.uid}); allowed: an image series "
                             f"of modality {' or '.join(modalities)}")
        header = {"patient_id": series.patient_id, "patient_name": series.patient_name}
        if kind == "ct":
            others = [("MAA / Ho-166 scout SPECT", p.spectVolume),
                      ("post-treatment image", p.postTreatmentVolume)] + [
                (f"CBCT of {pos.name or f'position {i + 1}'}", pos.cbct)
                for i, pos in enumerate(p.positions)]
            for other_label, node in others:
                if node is not None:
                    check_same_patient(header, dicom_header(node),
                                       f"{other_label} ({node.GetName()})",
                                       "the new planning CT")
        else:
            check_same_patient(dicom_header(p.ctVolume), header, label)
        node = self._node(series)
        extra = ""
        if kind == "ct":
            p.ctVolume = node
            p.exportDicom = True
        elif kind == "spect":
            p.spectVolume = node
        elif kind == "post":
            p.postTreatmentVolume = node
            p.postTreatmentKind = "pet" if series.modality == "PT" else "spect"
            header = dicom_header(node)    # times from its header where none was typed
            filled = []
            for name, key, words in (
                    ("acquisitionTime", "acquisition_datetime", "acquisition"),
                    ("administrationTime", "administration_datetime", "administration")):
                if not (getattr(p, name) or "").strip() and header.get(key):
                    setattr(p, name, header[key])
                    filled.append(f"{words} time {header[key]} (from its header)")
            if filled:
                extra = "; " + "; ".join(filled)
        else:
            guided.update_position(p, index, cbct=node)
        return (f"{label}: {node.GetName()} ({series.modality}, {series.images} images) of "
                f"{person_name(series.patient_name) or 'no name'}, Patient ID "
                f"{series.patient_id or 'none'}{extra}")

    def _structures(self, series: Series) -> str:
        """A SEG or RT Structure Set series as the segmentation on the planning CT: the
        liver (role liver), the lungs (role lung) when it has them, and the tumours (role
        tumour), as ``tareplanner measure --seg/--rtstruct`` takes them. Refused by name,
        with nothing loaded: no planning CT (or one not read from DICOM, for a SEG, which
        references the CT's images), another patient's series, a file that cannot be read
        (cut short, malformed), structures of other images, no liver, an empty structure."""
        from ..mrml.dicom_header import dicom_files, dicom_header
        from ..records.identity import check_same_patient
        p = self.session.p
        label = f"structures ({series.modality} {series.description or series.uid})"
        if p.ctVolume is None:
            raise ValueError(f"{label}: got no planning CT; allowed: structures on the planning "
                             "CT: choose the planning CT first")
        check_same_patient(dicom_header(p.ctVolume),
                           {"patient_id": series.patient_id,
                            "patient_name": series.patient_name}, label)
        if len(series.files) != 1:
            raise ValueError(f"{label}: got {len(series.files)} files; allowed: one SEG or RT "
                             "Structure Set file")
        path = resolve_inside(self.session.data_dir, series.files[0], field="series file")
        _, why = _header(path)          # read again: the file may have changed since the scan
        if why:
            raise ValueError(f"{label}: {series.files[0]}: {why}; allowed: a whole, readable "
                             "DICOM file (nothing was loaded)")
        if series.modality == "SEG":
            ct_files = dicom_files(p.ctVolume)
            if not ct_files:
                raise ValueError(f"{label}: got the planning CT {p.ctVolume.GetName()}, not "
                                 "read from DICOM; allowed: a SEG on a DICOM planning CT (it "
                                 "names the CT images its frames belong to)")
            from ..dicom.seg import labels_from_seg, read_seg
            liver, lungs, tumours = labels_from_seg(read_seg(path, list(ct_files)))
        else:
            liver, lungs, tumours = _rtstruct_structures(path, p.ctVolume)
        if liver is None:
            raise ValueError(f"{label}: got no segment named 'liver'; allowed: structures "
                             "with the liver")
        structures = [("liver", liver, "liver")]
        if lungs is not None:
            structures.append(("lungs", lungs, "lung"))
        structures += [(name, mask, "tumour") for name, mask in tumours.items()]
        from ..records.fields import check_name
        for name, mask, _ in structures:
            check_name(name, f"{label} segment name")
            if not mask.any():
                raise ValueError(f"{label}: got {name} with no voxel on the planning CT's "
                                 "grid; allowed: structures inside the planning CT")
        from ..mrml.workflow import add_mask_segment
        scene = self.session.scene
        segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode",
                                               f"structures {series.modality}"[:80])
        segmentation.SetReferenceImageGeometryParameterFromVolumeNode(p.ctVolume)
        try:
            for name, mask, role in structures:
                add_mask_segment(segmentation, p.ctVolume, name, mask, role)
        except Exception:
            scene.RemoveNode(segmentation)
            raise
        segmentation.SetAttribute(STRUCTURES_SERIES, series.uid)
        p.segmentation = segmentation
        names = ", ".join(f"{name} (role {role})" for name, _, role in structures)
        return (f"structures from {series.modality} {series.description or series.uid} of "
                f"{person_name(series.patient_name) or 'no name'}, Patient ID "
                f"{series.patient_id or 'none'}: {names}")

    def _node(self, series: Series):
        """The volume node of ``series``: the one already loaded, or read now."""
        from ..imaging.readers import read_dicom_series
        from ..mrml import attributes
        from ..mrml.dicom_header import dicom_header, set_dicom_header
        from ..mrml.volumes import volume_node_from_image
        scene = self.session.scene
        nodes = scene.GetNodesByClass("vtkMRMLScalarVolumeNode")
        for i in range(nodes.GetNumberOfItems()):
            node = nodes.GetItemAsObject(i)
            if dicom_header(node).get("series_instance_uid") == series.uid:
                return node
        root = self.session.data_dir
        paths = [resolve_inside(root, name, field="series file") for name in series.files]
        name = f"{series.modality} {series.description}".strip() if series.description \
            else f"{series.modality} {_common_folder(series.files)}"
        image = read_dicom_series(paths, series.uid, _common_folder(series.files))
        node = volume_node_from_image(scene, image.image, name[:80])
        node.SetAttribute(attributes.UNITS, image.units)
        set_dicom_header(node, image.meta, paths)
        return node

    # ------------------------------------------------------------------ identity
    def identity(self) -> dict:
        """The planning CT's identity block (records/identity.py), empty without a DICOM CT."""
        from ..mrml.dicom_header import dicom_header
        from ..records.identity import identity_from_dicom
        return identity_from_dicom(dicom_header(self.session.p.ctVolume))

    def identity_text(self) -> str:
        """The identity line the page shows (as the report's header prints it)."""
        identity = self.identity()
        if not identity:
            return ""
        sexes = {"M": "male", "F": "female", "O": "other"}
        parts = [f"Patient {identity.get('patient_name') or 'name not given'}",
                 f"ID {identity.get('patient_id') or 'not given'}",
                 f"born {identity.get('birth_date') or 'not given'}"]
        if identity.get("sex"):
            parts.append(sexes.get(identity["sex"], identity["sex"]))
        study = f"study {identity['study_date']}" if identity.get("study_date") else \
            "study date not given"
        if identity.get("study_description"):
            study += f" {identity['study_description']}"
        return " · ".join(parts + [study])


def _rtstruct_structures(path: Path, ct_node) -> tuple:
    """(liver, lungs or None, {tumour name: mask}) of an RT Structure Set on the planning
    CT's grid: the ROIs named liver and lungs (or lung); the tumours are the ROIs whose RT
    ROI Interpreted Type is a tumour's (GTV, CTV, PTV), or, for ROIs without a type, every
    other ROI but the body outline."""
    import pydicom

    from ..dicom.rtstruct import read_rtstruct
    from ..mrml.volumes import image_from_volume_node
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    types = _rtstruct_types(ds, path)
    rois = read_rtstruct(path, image_from_volume_node(ct_node))
    by_name = {name.lower(): mask for name, mask in rois.items()}
    liver = by_name.get("liver")
    lungs = by_name.get("lungs", by_name.get("lung"))
    tumours = {}
    for name, mask in rois.items():
        if name.lower() in ("liver", "lungs", "lung") + NOT_TUMOURS:
            continue
        kind = types.get(name, "")
        if kind in TUMOUR_TYPES or not kind:
            tumours[name] = mask
    return liver, lungs, tumours


def _rtstruct_types(ds, path: Path) -> dict[str, str]:
    """ROI name -> RT ROI Interpreted Type of a whole RT Structure Set. pydicom reads a file
    cut short without complaint as far as it goes (its last ROIs silently missing), so the
    three sequences the RT Structure Set and RT ROI Observations modules require (Type 1)
    must be there, and every ROI must have its contour item and its observation item;
    otherwise the file is refused as incomplete."""
    from ..errors import ImageDataError
    try:
        numbers = {int(r.ROINumber): str(r.get("ROIName", "") or "")
                   for r in ds.get("StructureSetROISequence", [])}
        contoured = {int(r.ReferencedROINumber) for r in ds.get("ROIContourSequence", [])}
        observed = {int(o.ReferencedROINumber): str(o.get("RTROIInterpretedType", "") or "")
                    for o in ds.get("RTROIObservationsSequence", [])}
    except Exception as exc:  # noqa: BLE001 - an item cut in the middle
        raise ImageDataError(f"{path.name}:StructureSetROISequence/ROIContourSequence/"
                             "RTROIObservationsSequence", "incomplete items",
                             "a whole RT Structure Set (a file cut short?)",
                             f"{type(exc).__name__}: {exc}") from None
    missing = [f"{name or number} ({'contours' if number not in contoured else 'observation'})"
               for number, name in numbers.items()
               if number not in contoured or number not in observed]
    if not numbers or missing:
        raise ImageDataError(f"{path.name}:ROIContourSequence (3006,0039)/"
                             "RTROIObservationsSequence (3006,0080)",
                             "items missing for " + (", ".join(missing[:5]) or "every ROI"),
                             "a contour item and an observation item for each ROI (a file cut "
                             "short?)")
    return {numbers[n]: kind.strip().upper() for n, kind in observed.items() if n in numbers}
