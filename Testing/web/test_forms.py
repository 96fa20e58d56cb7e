"""The page's typed fields (tareplanner.web.forms): the text of a field is read once, an
empty number is missing (never 0), decimal commas, units, NaN, inf and values beyond the
field's range are refused naming the field as the page labels it. Expected values are the
texts typed and the bounds written in the field table of docs/web.md."""

import math

import pytest

from tareplanner.errors import FieldValueError
from tareplanner.mrml.parameters import InjectionPosition, Parameters
from tareplanner.web import forms

MARGIN = forms.VALUE_FIELDS["lungBaseMarginMm"]     # 0 to 100 mm
VIAL = forms.POSITION_FIELDS["vialGbq"]             # more than 0, at most 100 GBq


@pytest.mark.parametrize("text, value", [("12.5", 12.5), (" 0 ", 0.0), ("100", 100.0),
                                         ("1e1", 10.0), (".5", 0.5), ("+3", 3.0)])
def test_numbers_as_typed(text, value):
    assert forms.parse(MARGIN, text) == value


def test_empty_number_is_missing_not_zero():
    """Bug: an empty field silently became 0."""
    assert math.isnan(forms.parse(MARGIN, ""))
    assert math.isnan(forms.parse(VIAL, "   "))
    assert forms.number_text(math.nan) == ""


@pytest.mark.parametrize("text, why", [
    ("1,5", "a point as the decimal separator"), ("4 GBq", "without a unit"),
    ("12mm", "without a unit"), ("NaN", "a number"), ("inf", "a number"), ("-5", "from 0"),
    ("-0.0001", "from 0"), ("100.0001", "to 100"), ("1e9", "to 100"), ("abc", "a number"),
    ("9" * 300, "at most 200 characters")])
def test_refused_numbers_name_the_field(text, why):
    """Bugs: "1,5" became 15, a -5 mm lung-base margin was accepted."""
    with pytest.raises(FieldValueError) as error:
        forms.parse(MARGIN, text)
    message = str(error.value)
    assert message.startswith("Lung-base margin (mm): got ") and why in message


def test_edges_of_an_open_lower_bound():
    """The vial activity: more than 0 (0 refused, the smallest positive accepted), at most
    100 GBq (100 accepted, just above refused)."""
    for refused in ("0", "0.0", "100.001"):
        with pytest.raises(FieldValueError, match="Vial activity"):
            forms.parse(VIAL, refused)
    assert forms.parse(VIAL, "1e-6") == 1e-6 and forms.parse(VIAL, "100") == 100.0


@pytest.mark.parametrize("text", ["2026-12-01T10:00:00", "tomorrow", "10:00+01:00",
                                  "2026-13-01T10:00:00+01:00", "x" * 41])
def test_times_need_a_date_and_a_utc_offset(text):
    with pytest.raises(FieldValueError, match="Treatment time: got .*ISO 8601"):
        forms.parse(forms.VALUE_FIELDS["treatmentTime"], text)


def test_a_time_and_an_empty_optional_field():
    spec = forms.VALUE_FIELDS["treatmentTime"]
    assert forms.parse(spec, " 2026-12-01T10:00:00+01:00 ") == "2026-12-01T10:00:00+01:00"
    assert forms.parse(spec, "") == ""
    assert forms.parse(forms.VALUE_FIELDS["administeredActivityGbq"], "") == 0.0


def test_goal_fields_in_words_with_units():
    assert forms.goal_field("tumour_dose_gy").label == "Tumour dose (Gy)"
    assert forms.goal_text("normal_dose_gy", 40.0) == "Normal-liver dose 40 Gy"
    assert forms.goal_text("maximum", True) == "Maximum the limits allow"
    with pytest.raises(FieldValueError, match=r"Activity \(GBq\) of position 2"):
        forms.parse(forms.goal_field("activity_gbq"), "1e9",
                    forms.position_label(1, "", "Activity (GBq)"))


def test_levels_and_tnrs_refuse_nonsense():
    with pytest.raises(FieldValueError, match="Isodose levels"):
        forms.parse(forms.VALUE_FIELDS["isodoseLevelsGy"], "50, inf")
    with pytest.raises(FieldValueError, match="Manual TNRs"):
        forms.parse(forms.VALUE_FIELDS["manualTnr"], "T1=nan")
    assert forms.parse(forms.VALUE_FIELDS["isodoseLevelsGy"], "1,5") == "1,5"


def test_missing_numbers_name_the_fields_an_action_reads():
    p = Parameters()
    p.positions = [InjectionPosition(name="right hepatic", vialGbq=math.nan,
                                     residualGbq=0.0),
                   InjectionPosition(name="", vialGbq=math.nan)]    # unnamed: not read
    p.lungBaseMarginMm = math.nan
    p.siteTolerancePercent = math.nan
    assert forms.missing_numbers(p, "measurement") == ["Lung-base margin (mm) is empty"]
    assert forms.missing_numbers(p, "administration") == [
        "Site tolerance (%) is empty",
        "Vial activity (GBq) of position 1 (right hepatic) is empty"]
    assert forms.missing_numbers(p, "plan") == []
    p.positions = [InjectionPosition(name="a", goalValue=math.nan)]
    assert forms.missing_numbers(p, "plan") == [
        "Tumour dose (Gy) of position 1 (a) is empty"]
    p.positions = [InjectionPosition(name="a", goalKind="maximum", goalValue=math.nan)]
    assert forms.missing_numbers(p, "plan") == []


def test_bilirubin_is_kept_as_text_empty_not_given():
    """The scenario's bilirubin: '' is not given, 0 is a value; a comma or a unit refused."""
    spec = forms.VALUE_FIELDS["bilirubinMgDl"]
    assert forms.parse(spec, "") == "" and forms.parse(spec, "0") == "0"
    assert forms.parse(spec, " 1.2 ") == "1.2"
    for text in ("1,2", "1.2 mg/dL", "-1", "51"):
        with pytest.raises(FieldValueError, match=r"Total bilirubin \(mg/dL\): got"):
            forms.parse(spec, text)
