"""The identity of a volume that 3D Slicer's DICOM module loaded (mrml/dicom_header.py): its
header is read from the files the DICOM database holds for its instance UIDs, so that the
measurement's identity block, the same-patient checks and the DICOM exports see the same
patient, study and frame of reference as for a series the command line or the web page read.

Runs without Slicer: the node and the database are stand-ins with the two methods used
(``GetAttribute``/``SetAttribute``, ``fileForInstance``); the DICOM files are written here
with pydicom, and the expected values are those written into them."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from tareplanner.mrml import attributes
from tareplanner.mrml.dicom_header import dicom_files, dicom_header, patient_mismatches


class Node:
    def __init__(self, name: str, attributes_: dict | None = None):
        self.name, self.attributes = name, dict(attributes_ or {})

    def GetAttribute(self, key):
        return self.attributes.get(key)

    def SetAttribute(self, key, value):
        self.attributes[key] = value

    def GetName(self):
        return self.name


class Database:
    def __init__(self, files: dict[str, str]):
        self.files, self.asked = files, []

    def fileForInstance(self, uid):
        self.asked.append(uid)
        return self.files.get(uid, "")


def _ct_series(folder, patient_id: str, name: str, slices: int = 2):
    """``slices`` CT slices of one series; their SOP instance UIDs and paths."""
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    out = {}
    for k in range(slices):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = uid = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, uid
        ds.Modality = "CT"
        ds.PatientID, ds.PatientName = patient_id, name
        ds.PatientBirthDate, ds.PatientSex = "19600102", "F"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.StudyDate, ds.SeriesDescription = "20261130", "planning CT"
        ds.Rows = ds.Columns = 4
        ds.PixelSpacing = [2.0, 2.0]
        ds.ImagePositionPatient = [0.0, 0.0, 3.0 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = np.zeros((4, 4), np.int16).tobytes()
        path = folder / f"ct{k}.dcm"
        ds.save_as(path, enforce_file_format=True)
        out[uid] = str(path)
    return out


def test_a_volume_of_slicers_dicom_module_gets_its_header_and_files(tmp_path):
    """Bug caught: a CT loaded through Slicer's DICOM module treated as carrying no DICOM
    identity (its measurement without patient, study or frame of reference; a SPECT of
    another patient let through; the DICOM exports refused for want of files)."""
    files = _ct_series(tmp_path, "PAT-7", "DOE^JANE")
    node = Node("CT", {attributes.DICOM_INSTANCE_UIDS: " ".join(files)})
    database = Database(files)
    first = pydicom.dcmread(next(iter(files.values())))
    header = dicom_header(node, database)
    assert header["patient_id"] == "PAT-7" and header["patient_name"] == "DOE^JANE"
    assert header["patient_birth_date"] == "19600102" and header["patient_sex"] == "F"
    assert header["study_instance_uid"] == first.StudyInstanceUID
    assert header["series_instance_uid"] == first.SeriesInstanceUID
    assert header["frame_of_reference_uid"] == first.FrameOfReferenceUID
    assert sorted(dicom_files(node)) == sorted(files.values())
    # kept on the node: asked of the database once
    asked = len(database.asked)
    assert dicom_header(node, Database({}))["patient_id"] == "PAT-7"
    assert len(database.asked) == asked


def test_another_patients_series_of_slicers_dicom_module_is_named(tmp_path, monkeypatch):
    """Bug caught: the same-patient check skipped for volumes of Slicer's DICOM module, so
    a SPECT of PAT-8 measured against PAT-7's CT."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    ct_files = _ct_series(tmp_path / "a", "PAT-7", "DOE^JANE")
    other_files = _ct_series(tmp_path / "b", "PAT-8", "ROE^RICHARD")
    database = Database({**ct_files, **other_files})
    import sys

    # Slicer's database as the module finds it when Slicer runs (slicer.dicomDatabase); the
    # slicer module of slicer-core, where installed, is put back after the test
    real = sys.modules.get("slicer")
    slicer = type(sys)("slicer")
    slicer.dicomDatabase = database
    monkeypatch.setitem(sys.modules, "slicer", slicer)
    ct = Node("CT", {attributes.DICOM_INSTANCE_UIDS: " ".join(ct_files)})
    spect = Node("SPECT", {attributes.DICOM_INSTANCE_UIDS: " ".join(other_files)})
    [sentence] = patient_mismatches(ct, [("MAA SPECT", spect)])
    monkeypatch.undo()
    assert sys.modules.get("slicer") is real
    assert "PAT-8" in sentence and "PAT-7" in sentence and "MAA SPECT (SPECT)" in sentence


@pytest.mark.parametrize("case", ["not in the database", "unreadable", "no uids"])
def test_missing_or_unreadable_files_leave_no_header(tmp_path, case):
    """Bug caught: a traceback (or a header guessed) when the database has lost a file or
    the file is not DICOM: the node is then without identity, as one not read from DICOM,
    and nothing is kept on it."""
    files = _ct_series(tmp_path, "PAT-7", "DOE^JANE")
    if case == "unreadable":
        for path in files.values():
            with open(path, "r+b") as f:
                f.seek(0)
                f.write(b"\0" * 200)
                f.truncate(300)
    database = Database({} if case == "not in the database" else files)
    node = Node("CT", {} if case == "no uids" else
                {attributes.DICOM_INSTANCE_UIDS: " ".join(files)})
    assert dicom_header(node, database) == {}
    assert dicom_files(node) == []
    assert attributes.DICOM_HEADER not in node.attributes


def test_a_failed_lookup_is_not_repeated_for_the_same_files(tmp_path):
    """Bug caught: every panel check asked the DICOM database again for each file of a
    series whose files it had lost (one query per slice, each time): the node now keeps the
    UIDs' SHA-256 (hashlib here) and is not looked up again for them, and a node given other
    UIDs is looked up afresh."""
    import hashlib
    files = _ct_series(tmp_path, "PAT-7", "DOE^JANE", slices=3)
    uids = " ".join(files)
    database = Database({})
    node = Node("CT", {attributes.DICOM_INSTANCE_UIDS: uids})
    assert dicom_header(node, database) == {}
    assert len(database.asked) == 3
    assert node.attributes[attributes.DICOM_HEADER_NOT_FOUND] == \
        hashlib.sha256(uids.encode()).hexdigest()
    for _ in range(5):
        assert dicom_header(node, database) == {}
    assert len(database.asked) == 3
    database.files = dict(files)                   # the same UIDs, other files now: still
    assert dicom_header(node, database) == {}      # remembered as not found
    node.SetAttribute(attributes.DICOM_INSTANCE_UIDS, " ".join(list(files)[:2]))
    header = dicom_header(node, database)          # other UIDs: looked up, and found
    assert header and len(database.asked) == 5
