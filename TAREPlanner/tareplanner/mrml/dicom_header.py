"""A volume node's DICOM origin: the patient, study and series values of its header and the
files it was read from, kept as node attributes (:data:`.attributes.DICOM_HEADER`,
:data:`.attributes.DICOM_FILES`) by whatever read it from DICOM.

The measurement reads the planning CT's identity from them (the identity block of
records/identity.py, as ``tareplanner measure`` reads it from the files), the steps compare
the Patient ID of the SPECT, the CBCTs and the post-treatment image with the CT's, and
*Save* writes the DICOM exports in the CT's study and frame of reference from its files.
"""

from __future__ import annotations

import json

from . import attributes

#: the reader's metadata keys kept on the node (imaging/readers.py ``_metadata``)
HEADER_KEYS = ("patient_id", "patient_name", "patient_birth_date", "patient_sex",
               "study_date", "study_description", "institution_name",
               "referring_physician_name", "study_instance_uid", "series_instance_uid",
               "frame_of_reference_uid", "series_description", "sop_class_uid",
               "acquisition_datetime", "administration_datetime", "radionuclide",
               "radiopharmaceutical")


def set_dicom_header(node, meta: dict, files=()) -> None:
    """Keep ``meta`` (a reader's metadata) and the ``files`` (absolute paths) on ``node``."""
    header = {k: meta[k] for k in HEADER_KEYS if meta.get(k) not in (None, "")}
    node.SetAttribute(attributes.DICOM_HEADER, json.dumps(header))
    node.SetAttribute(attributes.DICOM_FILES, json.dumps([str(f) for f in files]))


def dicom_header(node) -> dict:
    """The header values kept on ``node``; empty for a node not read from DICOM (or None)."""
    text = node.GetAttribute(attributes.DICOM_HEADER) if node is not None else None
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


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
