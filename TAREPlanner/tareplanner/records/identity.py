"""Patient and study identity: read from the planning CT's DICOM header, carried by the
measurement record and the case, entered by hand for non-DICOM images, printed on every
page of the report.

An identity block (``measurement.inputs.ct.identity``) holds ``patient_name``,
``patient_id``, ``birth_date`` and ``sex`` of the patient and ``study_date``,
``study_description``, ``institution`` and ``referring_physician`` of the study, each
present only when known. Text is at most :data:`IDENTITY_MAX_CHARS` characters (the DICOM
LO / PN limit) without control characters; dates are ISO 8601 (``YYYY-MM-DD``).
"""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Any, Mapping

from ..errors import FieldValueError

#: longest identity text: DICOM LO and PN values hold at most 64 characters (PS3.5 6.2)
IDENTITY_MAX_CHARS = 64
#: DICOM Patient's Sex (0010,0040), PS3.3 C.7.1.1: male, female, other
SEXES = ("M", "F", "O")
#: identity keys of the case's ``patient`` object and ``study`` object
PATIENT_KEYS = ("name", "birth_date", "sex")
STUDY_KEYS = ("date", "description", "institution", "referring_physician")
TEXT_ALLOWED = (f"text of 1 to {IDENTITY_MAX_CHARS} characters without control characters")
DATE_ALLOWED = "an ISO 8601 date YYYY-MM-DD"


def _control(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def printable(text: Any, max_chars: int = IDENTITY_MAX_CHARS) -> str:
    """``text`` made safe to print: control characters become spaces, runs of white space
    one space, and text longer than ``max_chars`` is cut with an ellipsis."""
    text = "" if text is None else str(text)
    text = " ".join("".join(" " if _control(c) else c for c in text).split())
    return text if len(text) <= max_chars else text[:max_chars - 1] + "…"


def person_name(dicom_pn: str) -> str:
    """A DICOM person name (``Family^Given^Middle^Prefix^Suffix``, PS3.5 6.2) as
    ``Family, Given Middle``; the alphabetic group only."""
    groups = str(dicom_pn).split("=")[0].split("^")
    family = groups[0].strip()
    rest = " ".join(g.strip() for g in groups[1:3] if g.strip())
    return f"{family}, {rest}" if family and rest else family or rest


def dicom_date(value: str) -> str | None:
    """A DICOM DA value (``YYYYMMDD``) as ISO ``YYYY-MM-DD``; None when it is no date."""
    text = str(value or "").strip()
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:])).isoformat()
    except ValueError:
        return None


def identity_from_dicom(meta: Mapping[str, Any]) -> dict:
    """The identity block of an image read from DICOM (``LoadedImage.meta``); empty for
    images without a DICOM header."""
    if not meta.get("series_instance_uid") and not meta.get("patient_id"):
        return {}
    identity = {
        "patient_name": printable(person_name(meta.get("patient_name", ""))),
        "patient_id": printable(meta.get("patient_id", "")),
        "birth_date": dicom_date(meta.get("patient_birth_date", "")),
        "sex": str(meta.get("patient_sex", "")).strip().upper(),
        "study_date": dicom_date(meta.get("study_date", "")),
        "study_description": printable(meta.get("study_description", "")),
        "institution": printable(meta.get("institution_name", "")),
        "referring_physician": printable(person_name(meta.get("referring_physician_name",
                                                              ""))),
        "source": "DICOM header of the planning CT",
    }
    if identity["sex"] not in SEXES:
        identity["sex"] = None
    return {k: v for k, v in identity.items() if v}


def case_identity(identity: Mapping[str, Any]) -> tuple[dict, dict]:
    """The case's ``patient`` and ``study`` entries from an identity block."""
    patient = {"id": identity.get("patient_id"), "name": identity.get("patient_name"),
               "birth_date": identity.get("birth_date"), "sex": identity.get("sex")}
    study = {"date": identity.get("study_date"),
             "description": identity.get("study_description"),
             "institution": identity.get("institution"),
             "referring_physician": identity.get("referring_physician")}
    return ({k: v for k, v in patient.items() if v}, {k: v for k, v in study.items() if v})


def identity_text(obj: Mapping[str, Any], key: str, field: str) -> str | None:
    """``obj[key]`` when it is identity text (see :data:`TEXT_ALLOWED`), None when absent;
    a named error otherwise."""
    value = obj.get(key)
    if value is None:
        return None
    path = f"{field}.{key}" if field else key
    if not isinstance(value, str) or not value.strip() or len(value) > IDENTITY_MAX_CHARS:
        raise FieldValueError(path, value if not isinstance(value, str) else value[:80],
                              TEXT_ALLOWED)
    bad = next((c for c in value if _control(c)), None)
    if bad is not None:
        raise FieldValueError(path, value[:80], TEXT_ALLOWED, f"control character {bad!r}")
    return value


def identity_date(obj: Mapping[str, Any], key: str, field: str) -> str | None:
    """``obj[key]`` when it is an ISO date, None when absent; a named error otherwise."""
    value = obj.get(key)
    if value is None:
        return None
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        date.fromisoformat(value)
    except ValueError:
        raise FieldValueError(f"{field}.{key}" if field else key, value,
                              DATE_ALLOWED) from None
    return value


def check_case_identity(patient: Mapping[str, Any], study: Mapping[str, Any]) -> None:
    """The identity entries of a case's ``patient`` and ``study`` objects."""
    identity_text(patient, "name", "patient")
    identity_date(patient, "birth_date", "patient")
    sex = patient.get("sex")
    if sex is not None and sex not in SEXES:
        raise FieldValueError("patient.sex", sex, "M, F or O (DICOM Patient's Sex)")
    identity_date(study, "date", "study")
    for key in ("description", "institution", "referring_physician"):
        identity_text(study, key, "study")


def report_identity(record: dict, entered: Mapping[str, Any] | None = None) -> dict:
    """The identity a report prints: the plan's case (``patient``, ``study``), with entered
    values (``--patient-name`` ...) taking precedence. Keys as in an identity block."""
    case = record.get("case") or {}
    patient = case.get("patient") or {}
    study = case.get("study") or {}
    identity = {"patient_name": patient.get("name"),
                "patient_id": patient.get("id") or record.get("patient_id"),
                "birth_date": patient.get("birth_date"), "sex": patient.get("sex"),
                "study_date": study.get("date"), "study_description": study.get("description"),
                "institution": study.get("institution"),
                "referring_physician": study.get("referring_physician")}
    for key, value in (entered or {}).items():
        if value:
            identity[key] = value
    return {k: printable(v) for k, v in identity.items() if v}


#: keys of an entered identity (``tareplanner report --identity FILE`` or its options)
ENTERED_KEYS = ("patient_name", "patient_id", "birth_date", "sex", "study_date",
                "study_description", "institution", "referring_physician")


def entered_identity(values: Mapping[str, Any], field: str) -> dict:
    """An identity entered by hand (non-DICOM images), checked: text without control
    characters of at most :data:`IDENTITY_MAX_CHARS` characters, ISO dates, sex M, F or O.
    ``field`` names where it came from in errors (e.g. ``--identity``)."""
    from .fields import require_object, check_keys
    values = require_object(values, field)
    check_keys(values, field, ENTERED_KEYS)
    out = {}
    for key in ENTERED_KEYS:
        if values.get(key) is None:
            continue
        if key in ("birth_date", "study_date"):
            out[key] = identity_date(values, key, field)
        elif key == "sex":
            if values[key] not in SEXES:
                raise FieldValueError(f"{field}.sex", values[key], "M, F or O")
            out[key] = values[key]
        else:
            text = identity_text(values, key, field)
            out[key] = person_name(text) if key in ("patient_name", "referring_physician") \
                and "^" in text else text
    return out


def option_identity(options: Mapping[str, Any]) -> dict:
    """An identity from command-line options (``{"--patient-name": value, ...}``, None for
    an option not given), checked as :func:`entered_identity`, errors naming the option."""
    given = {k: v for k, v in options.items() if v is not None}
    for option, value in given.items():
        if option in ("--birth-date", "--study-date"):
            identity_date(given, option, "")
        elif option == "--sex":
            if value not in SEXES:
                raise FieldValueError("--sex", value, "M, F or O")
        else:
            identity_text(given, option, "")
    return entered_identity({k[2:].replace("-", "_"): v for k, v in given.items()}, "options")


class PatientMismatchError(FieldValueError):
    """A series of another patient than the planning CT's (DICOM Patient ID)."""


def _who(meta: Mapping[str, Any]) -> str:
    name = person_name(meta.get("patient_name") or "")
    patient_id = printable(meta.get("patient_id") or "")
    return f"Patient ID {patient_id!r}" + (f" ({printable(name)})" if name else "")


def check_same_patient(reference: Mapping[str, Any], other: Mapping[str, Any], field: str,
                       reference_label: str = "the planning CT") -> None:
    """Refuse ``other`` (a series' header values: ``patient_id``, ``patient_name``) when its
    DICOM Patient ID (0010,0020) differs from ``reference``'s: the SPECT, a CBCT or the
    post-treatment image of another patient than the planning CT's. Compared only when both
    carry a Patient ID (images without a DICOM header carry none); trailing and leading
    spaces (DICOM LO padding) do not count. ``field`` names the series (an option or the
    panel's label)."""
    ours = str(reference.get("patient_id") or "").strip()
    theirs = str(other.get("patient_id") or "").strip()
    if ours and theirs and ours != theirs:
        raise PatientMismatchError(field, _who(other),
                                   f"a series of {reference_label}'s patient, {_who(reference)}")
