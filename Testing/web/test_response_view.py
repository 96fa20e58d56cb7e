"""The web page's dose-response view: the plan's curves with its doses marked (needs the
'web' extra for the page module; the curves themselves are checked in test_response_cli)."""

import base64
import copy

import json
import math

import pytest

pytest.importorskip("trame", reason="needs the 'web' extra")
pytest.importorskip("statsmodels", reason="needs statsmodels (the 'test' or 'response' extra)")

from tareplanner.cli.main import main  # noqa: E402
from tareplanner.planning import plan_case  # noqa: E402
from tareplanner.records.case import parse_case  # noqa: E402
from tareplanner.records.response_record import fit_for_plan  # noqa: E402
from tareplanner.web.app import response_png  # noqa: E402


def test_response_view_is_the_plans_curves_or_nothing(tmp_path, base_case):
    """Bug caught: the page showing curves of a plan that names no fit (or of a previous
    plan), or no figure for one that does. A plan without a fit gives no image; with a fit,
    a PNG whose tumour panel's marker lies at the probability written in the record
    (P = 1/(1 + exp(-(b0 + b1 D))) by hand from the fit's coefficients)."""
    from matplotlib.figure import Figure

    from tareplanner.records.response_report import plan_response_axes

    cohort, fit = tmp_path / "c", tmp_path / "fit.json"
    assert main(["response", "synthetic", "--patients", "60", "--seed", "3",
                 "--out", str(cohort)]) == 0
    assert main(["response", "fit", "--indices", str(cohort / "cohort_indices.csv"),
                 "--lesions", str(cohort / "lesion_outcomes.csv"),
                 "--toxicity", str(cohort / "toxicity.csv"), "-o", str(fit)]) == 0
    assert response_png(plan_case(parse_case(copy.deepcopy(base_case)))) == ""
    assert response_png(None) == ""
    plan = plan_case(parse_case(base_case), response=fit_for_plan(
        str(fit), lambda path, option: json.loads(open(path).read())))
    uri = response_png(plan)
    assert uri.startswith("data:image/png;base64,")
    png = base64.b64decode(uri.split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # the marker drawn is at the hand-computed probability of the plan's tumour dose
    b0, b1 = json.loads(fit.read_text())["tumour"]["params"]
    dose = plan["positions"][0]["tumours"][0]["dose_gy"]
    figure = Figure()
    tumour_ax, liver_ax = figure.subplots(1, 2)
    plan_response_axes(tumour_ax, liver_ax, plan["dose_response"])
    [mark] = [line for line in tumour_ax.get_lines()
              if (line.get_gid() or "").startswith("mark:")]
    assert mark.get_xdata()[0] == pytest.approx(dose)
    assert mark.get_ydata()[0] == pytest.approx(1 / (1 + math.exp(-(b0 + b1 * dose))),
                                                rel=1e-6)
