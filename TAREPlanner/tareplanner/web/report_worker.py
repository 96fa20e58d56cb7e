"""The Save's PDF report drawn in a worker process.

Drawing the report (ten pages of matplotlib figures and tables, fonts subset at the end) is
about 90 % of a Save. The page hands it to one worker process (started with 'spawn' after
the plan step, its imports made while the plan is read) and answers at once: the Save's
records, dose folder and DICOM files are written in the page's process, the report's link
appears when the worker has written the PDF (atomically: no partial file is ever listed),
and a report that could not be written is said in the Save panel. The report is the same
function's output as in the command line and the Slicer module
(``records.report.write_report``), from the same records and images, handed over by
pickling.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

log = logging.getLogger(__name__)


def _warm() -> bool:
    """In the worker: the report's imports (matplotlib, its PDF backend, fontTools)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    from matplotlib.backends import backend_pdf  # noqa: F401

    from ..records import report  # noqa: F401
    return True


def _write(record: dict, path: str, kwargs: dict) -> str:
    """In the worker: the report, written atomically."""
    from ..records.report import write_report
    return str(write_report(record, path, **kwargs))


class ReportWorker:
    """A ``report_writer`` for ``workflow.save_outputs``: each call hands the report to the
    worker and returns its path; :meth:`take` gives the future of the last one."""

    def __init__(self):
        self._pool: ProcessPoolExecutor | None = None
        self._last: Future | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing
            self._pool = ProcessPoolExecutor(max_workers=1,
                                             mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def warm(self) -> None:
        """Start the worker and make its imports (before the first Save needs them)."""
        try:
            self._executor().submit(_warm)
        except (BrokenProcessPool, RuntimeError, OSError) as error:
            log.warning("report worker not started (%s): reports are drawn in the page's "
                        "process", error)
            self._pool = None

    def __call__(self, record: dict, path, **kwargs) -> Path:
        try:
            self._last = self._executor().submit(_write, record, str(path), kwargs)
        except (BrokenProcessPool, RuntimeError, OSError) as error:
            # no worker (it died, or cannot start here): the report is drawn in this process
            log.warning("report worker unavailable (%s): drawing the report here", error)
            self._pool = None
            from ..records.report import write_report
            self._last = Future()
            self._last.set_result(str(write_report(record, path, **kwargs)))
        return Path(path)

    def take(self) -> Future | None:
        """The future of the report handed over last (once)."""
        future, self._last = self._last, None
        return future

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
