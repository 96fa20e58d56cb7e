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


# --- every field's rule at its edges, and the messages word for word (docs/web.md) ---------

def _message(spec, text, label=None):
    with pytest.raises(FieldValueError) as error:
        forms.parse(spec, text, label)
    return str(error.value)


def test_the_documented_message_word_for_word():
    """The example message of docs/web.md, typed out there by hand. Bugs: a range text that
    says 'from 0' for an open bound, a missing unit or 'and at most' dropped, the decimal-comma
    hint lost, the label of the position not used."""
    label = forms.position_label(0, "right hepatic", VIAL.label)
    assert _message(VIAL, "1,5", label) == (
        "Vial activity (GBq) of position 1 (right hepatic): got '1,5'; allowed: a number more "
        "than 0 GBq and at most 100 GBq, with a point as the decimal separator (1.5, not 1,5)")


@pytest.mark.parametrize("text, allowed", [
    ("-1", "a number from 0 to 100 mm"),
    ("4 mm", "a number from 0 to 100 mm, without a unit (the unit is in the label)"),
    ("-1,5", "a number from 0 to 100 mm, with a point as the decimal separator (1.5, not 1,5)"),
    ("1.5.2", "a number from 0 to 100 mm, without a unit (the unit is in the label)"),
    ("mm 4", "a number from 0 to 100 mm"),
    ("1" * 41, "a number of at most 40 characters"),
])
def test_margin_messages_word_for_word(text, allowed):
    """The lung-base margin (0 to 100 mm, docs/web.md's table). Bugs: the hint for a unit
    given for a comma, a 41-character number parsed, the range text garbled."""
    shown = text if len(text) <= 40 else text[:37] + "..."
    assert _message(MARGIN, text) == f"Lung-base margin (mm): got {shown!r}; allowed: {allowed}"


def test_a_long_text_is_shortened_to_40_characters_in_the_message():
    """Bug: the whole (up to 200-character) text echoed, or cut at another length. 40
    characters are kept whole; 41 become the first 37 and '...'."""
    spec = forms.POSITION_FIELDS["name"]
    forty = "a" * 40
    assert forms.parse(spec, forty) == forty
    assert f"got '{'b' * 37}...'" in _message(MARGIN, "b" * 41)
    assert f"got '{'9' * 37}...'" in _message(MARGIN, "9" * 41)
    assert "got '1234567890123456789012345678901234567,'" in _message(MARGIN, "1234567890123456789012345678901234567,")


def test_a_40_character_number_is_read():
    """40 characters is the longest number taken (41 refused above). Bug: '>=' for '>'."""
    text = "0." + "0" * 37 + "1"                    # 40 characters, 1e-38
    assert len(text) == 40 and forms.parse(MARGIN, text) == 1e-38
    assert forms.parse(VIAL, text) == 1e-38


def test_open_bound_message_and_edges_of_a_goal():
    """A dose goal: more than 0, at most 2000 Gy (docs/web.md). Bugs: 0 accepted, 2000
    refused, the message saying 'from 0'."""
    spec = forms.goal_field("tumour_dose_gy")
    assert forms.parse(spec, "2000") == 2000.0 and forms.parse(spec, "0.001") == 0.001
    assert _message(spec, "0") == ("Tumour dose (Gy): got '0'; allowed: a number more than 0 Gy "
                                   "and at most 2000 Gy")
    assert _message(spec, "2000.1").endswith("more than 0 Gy and at most 2000 Gy")
    activity = forms.goal_field("activity_gbq")
    assert (activity.low, activity.high, activity.unit) == (0.0, 100.0, "GBq")
    assert activity.label == "Activity (GBq)" and forms.parse(activity, "100") == 100.0
    for kind in ("normal_dose_gy", "perfused_dose_gy"):
        f = forms.goal_field(kind)
        assert (f.low, f.high, f.low_inclusive, f.unit) == (0.0, 2000.0, False, "Gy")
    assert forms.goal_field("normal_dose_gy").label == "Normal-liver dose (Gy)"
    assert forms.goal_field("perfused_dose_gy").label == "Perfused-volume dose (Gy)"


def test_an_unknown_goal_kind_has_no_bounds_and_no_unit():
    """A goal kind outside the table: its own name, more than 0 and no upper bound, no unit.
    Bug: a default range or unit invented for it."""
    spec = forms.goal_field("other")
    assert (spec.label, spec.low, spec.high, spec.low_inclusive, spec.unit) == \
        ("other", 0.0, math.inf, False, "")
    assert forms.parse(spec, "1e30") == 1e30
    assert _message(spec, "0") == "other: got '0'; allowed: a number more than 0"
    assert forms.goal_text("other", 5) == "other"


@pytest.mark.parametrize("name, low, high, unit", [
    ("lungBaseMarginMm", 0.0, 100.0, "mm"), ("manualLsfPercent", 0.0, 99.9, "%"),
    ("siteTolerancePercent", 0.0, 100.0, "%"), ("administeredActivityGbq", 0.0, 100.0, "GBq"),
    ("bilirubinMgDl", 0.0, 50.0, "mg/dL")])
def test_value_field_ranges_are_the_documented_ones(name, low, high, unit):
    """docs/web.md's table, each closed bound at its edge and just beyond. Bugs: a bound off
    by a slip (99.9 for 100, 50 for 100), an inclusive bound made exclusive."""
    spec = forms.VALUE_FIELDS[name]
    assert (spec.low, spec.high, spec.low_inclusive, spec.unit) == (low, high, True, unit)
    for text in (f"{low:g}", f"{high:g}"):
        forms.parse(spec, text)
    for text in (f"{high + 0.01:g}", "-0.01"):
        assert f"allowed: a number from 0 to {high:g} {unit}" in _message(spec, text)


@pytest.mark.parametrize("name, low, high, unit, inclusive", [
    ("vialGbq", 0.0, 100.0, "GBq", False), ("residualGbq", 0.0, 100.0, "GBq", True)])
def test_position_field_ranges_are_the_documented_ones(name, low, high, unit, inclusive):
    spec = forms.POSITION_FIELDS[name]
    assert (spec.low, spec.high, spec.low_inclusive, spec.unit) == (low, high, inclusive, unit)
    assert spec.label == {"vialGbq": "Vial activity (GBq)",
                          "residualGbq": "Residual activity (GBq)"}[name]


def test_labels_and_what_empty_means():
    """The labels the page shows and the fields whose label says what empty means (docs/web.md:
    optional times, the isodose levels, the manual TNRs, the administered activity). Bug: a
    numeric field made optional (empty read as 0)."""
    labels = {k: f.label for k, f in forms.VALUE_FIELDS.items()}
    assert labels == {
        "lungBaseMarginMm": "Lung-base margin (mm)", "manualLsfPercent": "Manual LSF (%)",
        "manualTnr": "Manual TNRs", "treatmentTime": "Treatment time",
        "isodoseLevelsGy": "Isodose levels (Gy)", "siteTolerancePercent": "Site tolerance (%)",
        "confirmReadingsReason": "Reason the readings are right",
        "administrationTime": "Administration time", "acquisitionTime": "Acquisition time",
        "administeredActivityGbq": "Administered activity (GBq)",
        "bilirubinMgDl": "Total bilirubin (mg/dL)"}
    kinds = {k: (f.kind, f.empty) for k, f in forms.VALUE_FIELDS.items()}
    assert kinds == {
        "lungBaseMarginMm": ("number", "missing"), "manualLsfPercent": ("number", "missing"),
        "manualTnr": ("tnr", "none"), "treatmentTime": ("time", "none"),
        "isodoseLevelsGy": ("levels", "none"), "siteTolerancePercent": ("number", "missing"),
        "confirmReadingsReason": ("reason", "none"), "administrationTime": ("time", "none"),
        "acquisitionTime": ("time", "none"), "administeredActivityGbq": ("number", "none"),
        "bilirubinMgDl": ("number text", "none")}
    positions = {k: (f.label, f.kind, f.empty) for k, f in forms.POSITION_FIELDS.items()}
    assert positions == {
        "name": ("Name", "name", "none"), "goalValue": ("Goal", "number", "missing"),
        "vialGbq": ("Vial activity (GBq)", "number", "missing"),
        "vialTime": ("Vial time", "time", "none"),
        "residualGbq": ("Residual activity (GBq)", "number", "missing"),
        "residualTime": ("Residual time", "time", "none"),
        "administeredAt": ("Administration time", "time", "none")}
    assert forms.parse(forms.VALUE_FIELDS["administeredActivityGbq"], "  ") == 0.0
    assert forms.parse(forms.POSITION_FIELDS["residualTime"], "") == ""


def test_goal_words_and_values():
    """docs/web.md: the plan table shows 'Tumour dose 250 Gy'; the choices are in words."""
    assert forms.GOAL_LABELS == {
        "tumour_dose_gy": "Tumour dose (Gy)", "normal_dose_gy": "Normal-liver dose (Gy)",
        "perfused_dose_gy": "Perfused-volume dose (Gy)", "activity_gbq": "Activity (GBq)",
        "maximum": "Maximum the limits allow"}
    assert forms.goal_text("tumour_dose_gy", 250.0) == "Tumour dose 250 Gy"
    assert forms.goal_text("perfused_dose_gy", 120.5) == "Perfused-volume dose 120.5 Gy"
    assert forms.goal_text("activity_gbq", 2.25) == "Activity 2.25 GBq"
    assert forms.goal_text("tumour_dose_gy", True) == "Tumour dose (Gy)"
    assert forms.goal_text("maximum", None) == "Maximum the limits allow"


def test_position_labels():
    assert forms.position_label(2, "  ", "Name") == "Name of position 3"
    assert forms.position_label(0, None, "Name") == "Name of position 1"
    assert forms.position_label(1, "left", "Goal") == "Goal of position 2 (left)"


@pytest.mark.parametrize("value", [None, True, False, [1], {"a": 1}, b"1", object()])
def test_non_text_values_are_refused(value):
    """A value that is not text (a list, bytes, a bool sent by a hostile client). Bug: str()
    of it parsed ('True' as a name, '[1]' as a list)."""
    if value is None:
        assert math.isnan(forms.parse(MARGIN, value))
        return
    message = _message(MARGIN, value)
    assert message.startswith("Lung-base margin (mm): got ") and \
        message.endswith("allowed: text typed into the field")


def test_numbers_given_as_numbers_and_text_limits():
    """An int or float from the client is read as its text; 200 characters are taken, 201 or a
    NUL refused. Bug: the length limit off by one, a NUL let through."""
    assert forms.parse(MARGIN, 5) == 5.0 and forms.parse(MARGIN, 2.5) == 2.5
    spec = forms.VALUE_FIELDS["confirmReadingsReason"]
    assert forms.parse(spec, " " * 200) == ""
    assert _message(spec, " " * 201).endswith("allowed: at most 200 characters of text")
    assert _message(spec, "a\x00b").endswith("allowed: at most 200 characters of text")
    assert forms.parse(spec, "r" * 80 + " " * 120) == "r" * 80


def test_names_at_most_64_characters_and_reasons_in_words():
    """Bugs: the page taking a position name of 65 to 80 characters that the records then
    refuse (a name is at most 64 characters, the DICOM LO limit, and holds no '/'), or
    refusing a reason that holds '/' or is longer than a name ("re-measured 2/2 times ...",
    up to 200 characters; the reason field took at most 80, as a name)."""
    name = forms.POSITION_FIELDS["name"]
    assert forms.parse(name, " " + "n" * 64 + " ") == "n" * 64
    assert _message(name, "n" * 65).endswith(
        "allowed: 1 to 64 printable characters, no control characters (newline, tab, NUL), "
        "no '/' or '\\', not '.' or '..'")
    assert "allowed: 1 to 64" in _message(name, "right/left")
    reason = forms.VALUE_FIELDS["confirmReadingsReason"]
    why = "re-measured 2/2 times in the dose calibrator, certificate 3.24 GBq, " + "x" * 60
    assert len(why) > 80 and forms.parse(reason, why) == why
    assert forms.parse(reason, "r" * 200) == "r" * 200
    assert _message(reason, "a\tb").endswith(
        "allowed: a reason in words: 1 to 200 printable characters, no control characters "
        "(newline, tab, NUL)")


def test_levels_edges():
    """Isodose levels: more than 0, at most 2000 Gy each (docs/web.md). Bugs: 2000 refused,
    2000.5 accepted, a level check skipped after the first, the message changed."""
    spec = forms.VALUE_FIELDS["isodoseLevelsGy"]
    assert forms.parse(spec, " 50, 2000 ") == "50, 2000"
    assert forms.parse(spec, "") == ""
    message = _message(spec, "50, 2000.5")
    assert message == ("Isodose levels (Gy): got '50, 2000.5'; allowed: doses in Gy from more "
                       "than 0 to 2000, separated by commas")
    assert "Isodose levels (Gy)" in _message(spec, "0")


def test_tnr_edges():
    """Manual TNRs: more than 0, at most 1000 each (docs/web.md). Bugs: 0 or 1000.5 accepted,
    1000 refused, only the first value checked."""
    spec = forms.VALUE_FIELDS["manualTnr"]
    assert forms.parse(spec, " T1=1000, T2=0.001 ") == "T1=1000, T2=0.001"
    for text in ("T1=0", "T1=2, T2=1000.5", "T1=-1", "T1=inf"):
        assert _message(spec, text) == (
            f"Manual TNRs: got {text!r}; allowed: tumour=TNR pairs with TNRs from more than 0 "
            "to 1000, e.g. T1=3.2, T2=2.5")
    assert "Manual TNRs" in _message(spec, "T1")


@pytest.mark.parametrize("text", ["2026-12-01T10:00:00Z", "2026-12-01T10:00:00+01:00",
                                  "2026-12-01 10:00+05:30"])
def test_times_accepted(text):
    assert forms.parse(forms.POSITION_FIELDS["vialTime"], text) == text


def test_time_messages_word_for_word():
    """Bug: the allowed text lost, a 40-character time refused, a time without its date
    (fromisoformat takes '20261201T1000+01:00') accepted."""
    spec = forms.POSITION_FIELDS["vialTime"]
    allowed = "an ISO 8601 date and time with its UTC offset, e.g. 2026-12-01T10:00:00+01:00"
    assert _message(spec, "tomorrow") == f"Vial time: got 'tomorrow'; allowed: {allowed}"
    assert _message(spec, "20261201T100000+01:00").endswith(allowed)
    forty = "2026-12-01T10:00:00.123456+01:00"
    assert forms.parse(spec, forty) == forty
    assert _message(spec, "2026-12-01T10:00:00+01:00" + "0" * 16).endswith(allowed)


def test_number_text_and_missing():
    """How a parameter number is shown: '' when missing, ten significant digits, an int as is.
    Bug: 0 shown as empty, a float rounded to six digits."""
    assert forms.number_text(None) == "" and forms.number_text(0.0) == "0"
    assert forms.number_text(1.23456789012) == "1.23456789"
    assert forms.number_text(7) == "7" and forms.number_text("x") == "x"
    assert forms.is_missing(None) and forms.is_missing(math.nan)
    assert not forms.is_missing(0.0) and not forms.is_missing(0) and not forms.is_missing("")


def test_missing_numbers_of_every_action():
    """Which empty numbers each action is refused for (docs/web.md: every action that reads
    the field). Bugs: the manual LSF asked for when not chosen (or not asked for when it is),
    the verification's administered activity (empty means none) reported missing, an
    unknown action failing."""
    p = Parameters()
    p.positions = [InjectionPosition(name="a", goalValue=math.nan, vialGbq=math.nan,
                                     residualGbq=math.nan)]
    p.manualLsfPercent = math.nan
    p.manualLsf = False
    assert forms.missing_numbers(p, "plan") == ["Tumour dose (Gy) of position 1 (a) is empty"]
    p.manualLsf = True
    assert forms.missing_numbers(p, "plan") == ["Tumour dose (Gy) of position 1 (a) is empty",
                                                "Manual LSF (%) is empty"]
    p.siteTolerancePercent = 5.0
    assert forms.missing_numbers(p, "administration") == [
        "Vial activity (GBq) of position 1 (a) is empty",
        "Residual activity (GBq) of position 1 (a) is empty"]
    assert forms.missing_numbers(p, "verification") == []
    assert forms.missing_numbers(p, "registration") == []
    assert forms.missing_numbers(p, "no such action") == []
    p.positions = [InjectionPosition(name="b", goalKind="activity_gbq", goalValue=math.nan)]
    assert forms.missing_numbers(p, "plan") == ["Activity (GBq) of position 1 (b) is empty",
                                                "Manual LSF (%) is empty"]


def test_a_40_character_refused_text_is_shown_whole():
    """40 characters are echoed whole, 41 shortened (above). Bug: '<' for '<='."""
    text = "1" * 40                                       # 1.1e39: beyond 100 mm
    assert _message(MARGIN, text) == (f"Lung-base margin (mm): got '{text}'; allowed: a number "
                                       "from 0 to 100 mm")


def test_a_field_without_a_unit_has_no_space_for_it():
    """A field with no unit: 'a number more than 0 and at most 5', one space between words.
    Bug: a blank unit written as ' ' ('0  and at most 5 ')."""
    spec = forms.Field("Count", low_inclusive=False, high=5.0)
    assert _message(spec, "6") == "Count: got '6'; allowed: a number more than 0 and at most 5"
    spec = forms.Field("Count", high=5.0)
    assert _message(spec, "1,5") == ("Count: got '1,5'; allowed: a number from 0 to 5, with a "
                                     "point as the decimal separator (1.5, not 1,5)")


def test_time_length_edges():
    """A time of 40 characters is read (fromisoformat takes any number of fraction digits in
    Python 3.11), 41 refused by its length. Bugs: '>=' for '>', 41 for 40."""
    spec = forms.POSITION_FIELDS["vialTime"]
    forty = "2026-12-01T10:00:00.12345678901234+01:00"
    assert len(forty) == 40 and forms.parse(spec, forty) == forty
    assert "ISO 8601" in _message(spec, "2026-12-01T10:00:00.123456789012345+01:00")


def test_the_page_label_is_used_for_every_kind():
    """The message names the field as the page labels it (the position), for a time, a
    number kept as text and a name. Bug: the label dropped for the field's bare label."""
    label = forms.position_label(0, "right hepatic", "Vial time")
    assert _message(forms.POSITION_FIELDS["vialTime"], "tomorrow", label).startswith(
        "Vial time of position 1 (right hepatic): got 'tomorrow'")
    assert _message(forms.VALUE_FIELDS["bilirubinMgDl"], "1,2", "Bilirubin of the scenario") \
        .startswith("Bilirubin of the scenario: got '1,2'")
    assert _message(forms.POSITION_FIELDS["name"], "n" * 81).startswith("Name: got 'nnn")


def test_a_non_text_value_is_shown_as_given():
    """Bug: the value shown as None instead of what was sent."""
    assert _message(MARGIN, [1]) == ("Lung-base margin (mm): got '[1]'; allowed: text typed "
                                     "into the field")


def test_missing_numbers_read_every_position():
    """An unnamed position or a 'maximum' goal is skipped, and the positions after it are
    still read. Bug: 'break' for 'continue' (the rest of the positions not checked)."""
    p = Parameters()
    p.positions = [InjectionPosition(name="", vialGbq=math.nan),
                   InjectionPosition(name="m", goalKind="maximum", goalValue=math.nan,
                                     residualGbq=0.0),
                   InjectionPosition(name="b", goalValue=math.nan, vialGbq=math.nan,
                                     residualGbq=0.0)]
    p.siteTolerancePercent = 1.0
    assert forms.missing_numbers(p, "plan") == ["Tumour dose (Gy) of position 3 (b) is empty"]
    assert forms.missing_numbers(p, "administration") == [
        "Vial activity (GBq) of position 2 (m) is empty",
        "Vial activity (GBq) of position 3 (b) is empty"]
