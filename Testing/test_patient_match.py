"""The same-patient check of records/identity.py: a SPECT, CBCT or post-treatment image of
another patient than the planning CT's is refused, naming both Patient IDs.

Expected outcomes written by hand from DICOM PS3.5 (LO values: leading and trailing spaces
are padding, not significant) and from the rule "compared only when both carry an ID"."""

import pytest

from tareplanner.errors import FieldValueError
from tareplanner.records.identity import PatientMismatchError, check_same_patient

CT = {"patient_id": "PAT-1", "patient_name": "DOE^JANE"}


@pytest.mark.parametrize("other", [
    {"patient_id": "PAT-1"},                 # the same patient
    {"patient_id": " PAT-1 "},               # LO padding does not count
    {"patient_id": ""},                      # no ID (a NIfTI image): nothing to compare
    {},
])
def test_same_or_unknown_patient_passes(other):
    """Bug caught: padding or a missing ID taken for another patient (a NIfTI SPECT, whose
    file carries no header, refused)."""
    check_same_patient(CT, other, "--spect")


def test_no_ct_id_compares_nothing():
    check_same_patient({}, {"patient_id": "PAT-2"}, "--spect")


@pytest.mark.parametrize("other_id", ["PAT-2", "pat-1", "PAT-10"])
def test_another_patient_is_refused_naming_both(other_id):
    """Bug caught: a case-insensitive or prefix comparison letting PAT-10's or pat-1's
    SPECT through (Patient ID is compared exactly, PS3.5 LO is case sensitive)."""
    with pytest.raises(PatientMismatchError) as error:
        check_same_patient(CT, {"patient_id": other_id, "patient_name": "ROE^RICHARD"},
                           "--spect")
    assert isinstance(error.value, FieldValueError)
    assert str(error.value) == (f"--spect: got \"Patient ID '{other_id}' (ROE, RICHARD)\"; "
                                "allowed: a series of the planning CT's patient, Patient ID "
                                "'PAT-1' (DOE, JANE)")
