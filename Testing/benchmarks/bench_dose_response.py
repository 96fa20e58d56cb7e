"""Benchmark of the dose–response fit of a cohort.

    python Testing/benchmarks/bench_dose_response.py

A synthetic cohort of 200 patients and 600 lesions (``tareplanner response synthetic``),
fitted by ``tareplanner response fit`` in this process (tables read and joined, the
patient-clustered logistic fit of lesion response with its plateau model, the Lyman probit
of liver toxicity, the record written): best of 5, and the bare statsmodels GLM fit of the
same lesions for comparison. Not a test: figures go into docs/benchmarks.md.
"""

from __future__ import annotations

import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    import statsmodels
    import statsmodels.api as sm

    from tareplanner.cli.main import main as tareplanner
    from tareplanner.physics.dose_response import synthetic_cohort

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        assert tareplanner(["response", "synthetic", "--patients", "200", "--out",
                            str(tmp / "c"), "--seed", "1"]) == 0
        args = ["response", "fit", "--indices", str(tmp / "c" / "cohort_indices.csv"),
                "--lesions", str(tmp / "c" / "lesion_outcomes.csv"),
                "--toxicity", str(tmp / "c" / "toxicity.csv"), "-o", str(tmp / "fit.json"),
                "--force"]
        import contextlib
        import io
        times = []
        for _ in range(5):
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                assert tareplanner(args) == 0
            times.append(time.perf_counter() - start)
    c = synthetic_cohort(200, 3, seed=1, patient_sd_logit=1.0)
    x = sm.add_constant(c.dose_gy)
    bare = []
    for _ in range(5):
        start = time.perf_counter()
        sm.GLM(c.response, x, family=sm.families.Binomial()).fit(
            cov_type="cluster", cov_kwds={"groups": c.patient})
        bare.append(time.perf_counter() - start)
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"numpy {np.__version__}, statsmodels {statsmodels.__version__}")
    print(f"response fit, 200 patients / 600 lesions (whole command): best "
          f"{min(times):.2f} s, median {np.median(times):.2f} s (target <= 5 s)")
    print(f"bare statsmodels GLM, clustered covariance, same lesions: best "
          f"{min(bare) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
