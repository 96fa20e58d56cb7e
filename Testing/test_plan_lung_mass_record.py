"""The lung mass a plan uses and the record of where it comes from and who chose it
(tareplanner.planning.lung_mass), for every way a case or a site gives it, each record
written here field by field.

The convention is the 1 kg of the package inserts' lung-dose formula (TheraSphere package
insert; SIR-Spheres IFU; Ho et al., Eur J Nucl Med 1996;23:947); EANM 2022 (Weber et al.)
prefers the patient's own lung mass from CT densitovolumetry where a CT is available. A case
gives its mass as ``lung_mass_kg`` (entered, or with ``lung_mass_source``
"ct-densitovolumetry"), chooses the convention with ``lung_mass_source`` "convention", or
holds no mass; a site chooses with ``lung_mass`` "ct" (the default) or "convention".
Each test names the bug it catches.
"""

import copy

import pytest

from tareplanner.planning import _lung_mass_warnings, lung_mass
from tareplanner.records.case import parse_case

from conftest import BASE_CASE

CONVENTION = "1 kg convention of the package inserts"


def _case(**fields):
    doc = copy.deepcopy(BASE_CASE)
    for key in ("lung_mass_kg", "lung_mass_source", "lung_mass_ct_kg"):
        doc.pop(key, None)
    doc.update(fields)
    return parse_case(doc)


def _without_source(record):
    source = record.pop("convention_source")
    assert source.startswith("Lung mass convention of the package inserts' lung-dose formula")
    assert "EANM 2022" in source
    return record


def test_ct_mass_is_the_cases_choice():
    """Bugs caught: the CT mass recorded as chosen by someone other than the case, the
    convention's source dropped from the record or written under another name. CT 0.8 kg:
    the convention differs from it by |1 - 0.8| / 0.8 = 0.25 of the CT mass."""
    record = lung_mass(_case(lung_mass_kg=0.8, lung_mass_source="ct-densitovolumetry"))
    assert _without_source(record) == {
        "kg": 0.8, "source": "ct-densitovolumetry", "chosen_by": "case",
        "note": "CT densitovolumetry (lung voxels, density (HU + 1000)/1000 g/mL)",
        "ct_kg": 0.8, "convention_kg": 1.0, "ct_difference_fraction": pytest.approx(0.25)}


def test_entered_mass_is_the_cases_choice():
    """Bugs caught: an entered mass (no source given: "entered") not recognised and replaced
    by the 1 kg default, recorded as chosen by another, its note garbled. Entered 1.1 kg, no
    CT mass: no difference to report."""
    record = lung_mass(_case(lung_mass_kg=1.1))
    assert _without_source(record) == {
        "kg": 1.1, "source": "entered", "chosen_by": "case", "note": "entered in the case",
        "ct_kg": None, "convention_kg": 1.0, "ct_difference_fraction": None}


def test_convention_chosen_in_the_case():
    """Bug caught: the note of the convention lost (the mass's wording emptied). The case
    chooses the convention and holds a CT mass of 1.25 kg: 1 kg is used; the convention
    differs from the CT mass by 0.25 / 1.25 = 0.2."""
    record = lung_mass(_case(lung_mass_source="convention", lung_mass_ct_kg=1.25))
    assert _without_source(record) == {
        "kg": 1.0, "source": "convention", "chosen_by": "case",
        "note": f"{CONVENTION}, chosen in the case", "ct_kg": 1.25, "convention_kg": 1.0,
        "ct_difference_fraction": pytest.approx(0.2)}


def test_convention_chosen_by_the_site():
    """Bugs caught: the site's choice of the convention ignored, or its note without the
    convention or the site's label. An entered 0.9 kg yields to the site's 1 kg."""
    record = lung_mass(_case(lung_mass_kg=0.9), {"lung_mass": "convention"}, "Site A (a.json)")
    assert _without_source(record) == {
        "kg": 1.0, "source": "convention", "chosen_by": "site",
        "note": f"{CONVENTION}, chosen by the site limits (Site A (a.json))", "ct_kg": None,
        "convention_kg": 1.0, "ct_difference_fraction": None}


@pytest.mark.parametrize("site", [None, {}, {"lung_mass": "ct"}])
def test_ct_policy_keeps_the_cases_mass(site):
    """Bug caught: a site that says nothing, or says "ct", taken as choosing the convention.
    The entered 0.9 kg is used."""
    record = lung_mass(_case(lung_mass_kg=0.9), site, "Site B")
    assert (record["kg"], record["chosen_by"]) == (0.9, "case")


def test_no_mass_falls_back_to_the_convention_by_default():
    """Bug caught: a case without a mass planned silently: the 1 kg is used, recorded as the
    default with the reason."""
    record = lung_mass(_case())
    assert _without_source(record) == {
        "kg": 1.0, "source": "convention", "chosen_by": "default",
        "note": f"{CONVENTION}: the case holds no lung mass", "ct_kg": None,
        "convention_kg": 1.0, "ct_difference_fraction": None}


def _warnings(mass):
    return [(w.code, w.message) for w in _lung_mass_warnings(mass)]


def test_no_mass_is_a_warning_word_for_word():
    """Bug caught: the warning of a lung mass not measured emptied or garbled (EANM 2022
    recommends the patient's lung mass from CT); no difference to report without a CT."""
    assert _warnings(lung_mass(_case())) == [(
        "lung-mass-not-measured",
        "the case holds no lung mass: the 1 kg convention is used; EANM 2022 recommends the "
        "patient's lung mass from CT (tareplanner measure writes it into the case)")]


@pytest.mark.parametrize("fields, site, used", [
    ({"lung_mass_kg": 0.75, "lung_mass_source": "ct-densitovolumetry"}, None, "the CT mass"),
    ({"lung_mass_source": "convention", "lung_mass_ct_kg": 0.75}, None,
     "the 1 kg convention"),
    ({"lung_mass_kg": 0.75, "lung_mass_source": "ct-densitovolumetry"},
     {"lung_mass": "convention"}, "the 1 kg convention")])
def test_a_ct_mass_far_from_the_convention_names_the_mass_used(fields, site, used):
    """Bugs caught: the warning of a CT mass far from the convention naming the wrong mass as
    the one the plan uses (the CT mass when the case or the site chose the convention, or
    the reverse), or without it. CT 0.75 kg: |1 - 0.75| / 0.75 = 33 %, above 20 % of the CT
    mass."""
    assert _warnings(lung_mass(_case(**fields), site, "Site A")) == [(
        "lung-mass-differs",
        "CT lung mass 0.75 kg differs from the 1 kg convention by 33% (more than 20% of the "
        f"CT mass); the lung dose scales with 1/mass and this plan uses {used}")]
