"""The administration record's own refusals (records.administration.administration_record):
a residual larger than the vial, a reason for confirming readings that is no reason; each
refusal's field, value, allowed text and detail checked against values written here.

Sources: docs/treatment-day.md (a residual larger than the vial is refused by name; readings
typed as options are named by the option typed; ``--confirm-readings REASON`` is a reason
like that of ``directive --change --reason``: text of 1 to 200 characters without control
characters). Decay by hand: A(t) = A0 * 2^(-t / 64.1 h) (Y-90). The directive is that of
conftest.BASE_CASE (TheraSphere, 2.263 GBq prescribed to "right hepatic").
"""

import pytest

from conftest import vial_readings
from tareplanner.errors import FieldValueError
from tareplanner.records.administration import administration_record

SITE = "right hepatic"
REASON_ALLOWED = ("a reason in words: 1 to 200 printable characters, no control characters "
                  "(newline, tab, NUL)")


# A vial of 2.3 GBq read at 08:00 holds 2.3 * 2^(-2 / 64.1) = 2.3 * 0.978605 = 2.25079 GBq
# at 10:00; a residual of 2.3 GBq read at 11:00 held 2.3 * 2^(1 / 64.1) = 2.3 * 1.010873 =
# 2.32501 GBq at 10:00: more than the vial.
RESIDUAL_DETAIL = ("the residual (2.325 GBq at administration) exceeds the vial activity "
                   "(2.251 GBq)")


def test_a_residual_above_the_vial_is_refused_naming_the_site(directive):
    """Readings from a file: the refusal names the site whose readings disagree, shows what
    is wrong (the vial and residual readings), what is allowed and the two activities at
    the administration. Bugs: the refusal without its place, value, allowed text or detail."""
    with pytest.raises(FieldValueError) as error:
        administration_record(directive, vial_readings(2.3, 2.3))
    e = error.value
    assert (e.field, e.value, e.allowed, e.detail) == (
        f"readings[{SITE}]", "vial and residual readings",
        "a residual below the vial activity (GBq)", RESIDUAL_DETAIL)


def test_a_residual_above_the_vial_typed_as_an_option_names_the_option(directive):
    """Readings typed as options: the refusal names the residual option as typed. Bug: the
    option lost (the site's place in the readings list shown instead)."""
    option = "--residual 'right hepatic=2.3@11:00'"
    with pytest.raises(FieldValueError) as error:
        administration_record(directive, vial_readings(2.3, 2.3),
                              fields={"readings[0].residual[0]": option})
    assert (error.value.field, error.value.detail) == (option, RESIDUAL_DETAIL)


@pytest.mark.parametrize("reason", ["", "two vials\npooled", "x" * 201])
def test_a_confirmation_that_is_no_reason_is_refused_naming_the_option(directive, reason):
    """An empty reason, one with a newline, one of 201 characters: refused as the option
    --confirm-readings. Bug: the refusal naming no option or another one."""
    with pytest.raises(FieldValueError) as error:
        administration_record(directive, vial_readings(0.262), confirm_reason=reason)
    assert (error.value.field, error.value.allowed) == ("--confirm-readings", REASON_ALLOWED)
