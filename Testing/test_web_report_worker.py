"""The web page's Save hands the PDF report to a worker process (web/report_worker.py): the
report it writes must be the one the page's process would write, a report that fails must
leave no file (and say why), and without a worker the report is still written.

Expected values: the report written in this process by ``records.report.write_report`` from
the same record (its pages' text read back with pypdf), and the folder's listing."""

from __future__ import annotations

import copy
from concurrent.futures.process import BrokenProcessPool

import pytest

from conftest import BASE_CASE
from tareplanner.planning import plan_case
from tareplanner.records.case import parse_case

pypdf = pytest.importorskip("pypdf")
pytest.importorskip("matplotlib")


def _record() -> dict:
    case = copy.deepcopy(BASE_CASE)
    case["patient"].update({"id": "PAT-0042", "name": "EXAMPLE, ANNA"})
    case["case_id"] = "CASE-W"
    return plan_case(parse_case(case))


def _text(path) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(str(path)).pages]


def test_the_worker_writes_the_report_of_the_page_process(tmp_path):
    """Bugs caught: the worker drawing something else than the record handed to it (another
    identity, a default record), a report returned before it is whole. The worker's PDF has
    the in-process report's pages, text for text."""
    from tareplanner.records.report import write_report
    from tareplanner.web.report_worker import ReportWorker
    record = _record()
    worker = ReportWorker()
    try:
        worker.warm()
        path = worker(record, tmp_path / "worker" / "report.pdf")
        future = worker.take()
        assert worker.take() is None                       # handed over once
        assert future.result(timeout=300) == str(path)
    finally:
        worker.shutdown()
    here = write_report(record, tmp_path / "here.pdf")
    assert _text(path) == _text(here)
    assert "PAT-0042" in _text(path)[0]
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.pdf"]   # no temporary


def test_a_report_that_fails_leaves_no_file(tmp_path):
    """Bug caught: a failed report leaving a partial PDF (or its temporary) that the page
    would list for download. The record without its activities cannot be drawn: the future
    raises, the folder stays empty."""
    from tareplanner.web.report_worker import ReportWorker
    record = _record()
    del record["positions"]
    folder = tmp_path / "saved"
    folder.mkdir()
    worker = ReportWorker()
    try:
        worker(record, folder / "report.pdf")
        with pytest.raises(Exception):
            worker.take().result(timeout=300)
    finally:
        worker.shutdown()
    assert list(folder.iterdir()) == []


def test_without_a_worker_the_report_is_written_here(tmp_path, monkeypatch):
    """Bug caught: a Save whose worker cannot start (or died) writing no report at all. The
    pool refuses the work: the report is written in this process, its future done."""
    from tareplanner.web import report_worker
    worker = report_worker.ReportWorker()

    class Broken:
        def submit(self, *args, **kwargs):
            raise BrokenProcessPool("the worker died")

    monkeypatch.setattr(worker, "_executor", lambda: Broken())
    path = worker(_record(), tmp_path / "report.pdf")
    assert worker.take().result(timeout=0) == str(path)
    assert path.read_bytes()[:5] == b"%PDF-"
