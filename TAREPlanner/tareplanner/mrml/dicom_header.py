"""A volume node's DICOM origin: the patient, study and series values of its header and the
files it was read from, kept as node attributes (:data:`.attributes.DICOM_HEADER`,
:data:`.attributes.DICOM_FILES`) by whatever read it from DICOM.

The measurement reads the planning CT's identity from them (the identity block of
records/identity.py, as ``tareplanner measure`` reads it from the files), the steps compare
the Patient ID of the SPECT, the CBCTs and the post-treatment image with the CT's, and
*Save* writes the DICOM exports in the CT's study and frame of reference from its files.
"""

from __future__ import annotations

import hashlib
import json

from . import attributes

#: the reader's metadata keys kept on the node (imaging/readers.py ``_metadata``)
HEADER_KEYS = ("patient_id", "patient_name", "patient_birth_date", "patient_sex",
               "study_date", "study_description", "institution_name",
               "referring_physician_name", "study_instance_uid", "series_instance_uid",
               "frame_of_reference_uid", "series_description", "sop_class_uid",
               "acquisition_datetime", "administration_datetime", "radionuclide",
               "radiopharmaceutical", "frame_duration_s")


def set_dicom_header(node, meta: dict, files=()) -> None:
    """Keep ``meta`` (a reader's metadata) and the ``files`` (absolute paths) on ``node``."""
    header = {k: meta[k] for k in HEADER_KEYS if meta.get(k) not in (None, "")}
    node.SetAttribute(attributes.DICOM_HEADER, json.dumps(header))
    node.SetAttribute(attributes.DICOM_FILES, json.dumps([str(f) for f in files]))


def dicom_header(node, database=None) -> dict:
    """The header values kept on ``node``; empty for a node not read from DICOM (or None).

    A volume loaded by 3D Slicer's DICOM module carries its instance UIDs (attribute
    ``DICOM.instanceUIDs``) instead: its files are looked up in the DICOM database
    (``database``, else ``slicer.dicomDatabase`` when Slicer is running), the first file's
    header is read as ``tareplanner measure`` reads it (imaging/readers.py), and the values
    and files are kept on the node, so that its identity, the same-patient checks and the
    DICOM exports are those of a series the page or the command line read. A file missing
    from the database or unreadable leaves the node without a header (empty), and the node
    remembers it (``TAREPlanner.DicomHeaderNotFound``: the UIDs' digest), so that the panels'
    checks do not ask the database for the same files again; load the series again after
    importing its files."""
    text = node.GetAttribute(attributes.DICOM_HEADER) if node is not None else None
    if not text and node is not None:
        return _header_from_database(node, database)
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _header_from_database(node, database=None) -> dict:
    """The header of a volume loaded by Slicer's DICOM module (see :func:`dicom_header`)."""
    import sys
    uids = (node.GetAttribute(attributes.DICOM_INSTANCE_UIDS) or "").split()
    if database is None:
        database = getattr(sys.modules.get("slicer"), "dicomDatabase", None)
    if not uids or database is None:
        return {}
    digest = hashlib.sha256(" ".join(uids).encode()).hexdigest()
    if node.GetAttribute(attributes.DICOM_HEADER_NOT_FOUND) == digest:
        return {}
    files = [database.fileForInstance(uid) for uid in uids]
    meta = None
    if all(files):
        from ..errors import ImageDataError
        from ..imaging.readers import series_metadata
        try:
            meta = series_metadata(files)
        except ImageDataError:
            pass
    if meta is None:
        node.SetAttribute(attributes.DICOM_HEADER_NOT_FOUND, digest)
        return {}
    set_dicom_header(node, meta, files)
    return dicom_header(node)


def dicom_files(node) -> list[str]:
    """The DICOM files ``node`` was read from; empty when not kept."""
    text = node.GetAttribute(attributes.DICOM_FILES) if node is not None else None
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return [str(f) for f in value] if isinstance(value, list) else []


def patient_mismatches(ct_node, others: list[tuple[str, object]]) -> list[str]:
    """A sentence for each of ``others`` ((label, node)) whose DICOM Patient ID differs from
    the planning CT's (both read from DICOM), naming the series and both patients."""
    from ..records.identity import PatientMismatchError, check_same_patient
    reference = dicom_header(ct_node)
    out = []
    for label, node in others:
        if node is None:
            continue
        try:
            check_same_patient(reference, dicom_header(node), f"{label} ({node.GetName()})")
        except PatientMismatchError as error:
            out.append(str(error))
    return out
