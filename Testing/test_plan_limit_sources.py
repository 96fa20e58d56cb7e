"""Two helpers of the plan (tareplanner.planning) on values written here by hand: whether the
product or the site sets its own value for a limit that a promoted guideline row also sets
(the plan then quotes both sources), and the text of an alternative vial order.

The limits record is that of ``effective_limits``: one entry per limit with its value and
source, and the keys of the normal-liver and whole-normal-liver limits applied to the case
(the compromised-liver ones for a compromised liver).
"""

from datetime import datetime, timedelta, timezone

import pytest

from tareplanner.physics.ordering import VialOption
from tareplanner.physics.solver import (LIMITED_BY_LUNG, LIMITED_BY_NORMAL,
                                        LIMITED_BY_WHOLE_LIVER, LIMITED_BY_WHOLE_NORMAL_LIVER)
from tareplanner.planning import _limit_value_set, _option_text


def _limits(normal=None, compromised=None, whole=None, whole_normal=None,
            whole_normal_compromised=None):
    return {"applied_normal_liver": "normal_liver_compromised_gy",
            "applied_whole_normal_liver": "whole_normal_liver_compromised_gy",
            "normal_liver_gy": {"value": normal, "source": "IFU"},
            "normal_liver_compromised_gy": {"value": compromised, "source": "site"},
            "whole_liver_gy": {"value": whole, "source": "site"},
            "whole_normal_liver_gy": {"value": whole_normal, "source": "IFU"},
            "whole_normal_liver_compromised_gy": {"value": whole_normal_compromised,
                                                  "source": "site"}}


def test_a_limit_is_set_by_the_value_of_the_key_applied_to_the_case():
    """A compromised liver: the normal-liver limit applied is the compromised one (50 Gy
    here), whatever the standard one holds (none); the whole liver's 40 Gy and the
    compromised whole normal liver's 35 Gy are set. Bugs: the applied key not read (or read
    under another name), the whole-liver key misspelt, the value looked up under another
    key: each would report no value of the site's own, and its source would vanish from the
    limit's sources."""
    record = _limits(compromised=50.0, whole=40.0, whole_normal_compromised=35.0)
    assert _limit_value_set(record, LIMITED_BY_NORMAL) is True
    assert _limit_value_set(record, LIMITED_BY_WHOLE_LIVER) is True
    assert _limit_value_set(record, LIMITED_BY_WHOLE_NORMAL_LIVER) is True


def test_a_limit_without_a_value_is_not_set():
    """The standard limits hold values (70, 40 Gy) but the applied compromised ones do not,
    and no whole-liver value is given: none is set. A limit this helper does not cover (the
    lung's) and a record without the limit at all are not set either (no KeyError). Bugs:
    ``or`` for ``and``, ``is None`` for ``is not None``, the standard key read instead of the
    applied one, no default for a limit the record does not hold."""
    record = _limits(normal=70.0, whole_normal=40.0)
    assert _limit_value_set(record, LIMITED_BY_NORMAL) is False
    assert _limit_value_set(record, LIMITED_BY_WHOLE_LIVER) is False
    assert _limit_value_set(record, LIMITED_BY_WHOLE_NORMAL_LIVER) is False
    assert _limit_value_set(record, LIMITED_BY_LUNG) is False
    del record["whole_liver_gy"]
    assert _limit_value_set(record, LIMITED_BY_WHOLE_LIVER) is False


@pytest.mark.parametrize("vials, text", [
    ((20.0, 7.0), "20 + 7 GBq vial"),
    ((3.5,), "3.5 GBq vial"),
])
def test_option_text_word_for_word(vials, text):
    """An alternative as the plan's warning writes it: the vials joined by " + ", the
    calibration date, the time in minutes, the deviation at one decimal with its sign and the
    kind. By hand: 27 GBq of 22 Nov at 1 Dec 10:00 UTC+1, -0.07 % -> "-0.1%". Bug: the vials'
    separator garbled or lost."""
    zone = timezone(timedelta(hours=1))
    option = VialOption(kind="two vials", vials_nominal_gbq=vials,
                        calibration_time=datetime(2026, 11, 22, 12, 0, tzinfo=zone),
                        treatment_time=datetime(2026, 12, 1, 10, 0, tzinfo=zone),
                        activity_at_treatment_gbq=2.848, deviation_fraction=-0.0007,
                        days_after_calibration=8.9, custom=False)
    assert _option_text(option) == (f"{text} calibrated 2026-11-22, at 2026-12-01T10:00+01:00 "
                                     "(-0.1%, two vials)")
