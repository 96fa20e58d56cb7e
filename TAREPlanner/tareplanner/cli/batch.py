"""Cohort batch: voxel dosimetry (verification) of many patients on Dask, one table of lesion
and organ dose indices for dose-response studies.

The cohort CSV has one row per patient with the columns ``patient_id``, ``measurement`` and
``plan`` (paths, relative to the CSV's folder or absolute) and optionally ``pet`` and
``administration_time``. Each patient's outputs go to ``OUT/patients/<patient_id>/``; a patient
whose ``dose.json`` exists is skipped (resumable); a failure is written to its ``error.txt`` and
to the status table without stopping the others. Runs on a local Dask cluster by default, or
on an existing scheduler (``scheduler`` address), so a centre can scale it out unchanged.

An interruption (Ctrl-C: SIGINT, KeyboardInterrupt) is not a patient's failure: the batch
stops, the patients not finished are cancelled with nothing recorded for them (no
``error.txt``, no status or index table), and :class:`BatchInterrupted` says how many were
done. A patient's ``dose.json`` is written atomically, so running the same cohort again
continues with the patients not yet done.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import re
import signal
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

INDEX_COLUMNS = ("volume_ml", "mean_gy", "min_gy", "max_gy", "median_gy", "D70", "D90", "V100")
REQUIRED = ("patient_id", "measurement", "plan")


class BatchInterrupted(KeyboardInterrupt):
    """The batch was interrupted (Ctrl-C); the message says what was done and how to go on."""


@dataclass(frozen=True)
class CohortRow:
    patient_id: str
    measurement: str
    plan: str
    pet: str | None
    administration_time: str | None


def read_cohort(path: str | Path) -> list[CohortRow]:
    """Rows of a cohort CSV; raises a named error for a missing column or duplicate id."""
    from ..errors import FieldValueError, MissingFieldError, SchemaError

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError("cohort", str(path), "a readable UTF-8 CSV file",
                          getattr(exc, "strerror", None) or str(exc)) from None
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise MissingFieldError(f"cohort column {missing[0]}", "columns " + ", ".join(REQUIRED)
                                + " (and optionally pet, administration_time)")
    rows, seen = [], set()
    base = path.parent
    for line, raw in enumerate(reader, start=2):
        pid = (raw.get("patient_id") or "").strip()
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", pid) or set(pid) == {"."}:
            raise FieldValueError(f"cohort line {line} patient_id", pid,
                                  "1 to 64 letters, digits, '.', '_' and '-' (not '.' or "
                                  "'..': the id names the patient's folder)")
        if pid in seen:
            raise FieldValueError(f"cohort line {line} patient_id", pid, "a unique id")
        seen.add(pid)

        def resolve(value):
            value = (value or "").strip()
            return str((base / value).resolve()) if value else None

        for column in ("measurement", "plan"):
            if not (raw.get(column) or "").strip():
                raise MissingFieldError(f"cohort line {line} {column}", "a file path")
        rows.append(CohortRow(pid, resolve(raw["measurement"]), resolve(raw["plan"]),
                              resolve(raw.get("pet")),
                              (raw.get("administration_time") or "").strip() or None))
    return rows


def dose_parser() -> argparse.ArgumentParser:
    """The parser of the ``tareplanner dose`` command, with its options and defaults as on the
    command line (each patient runs that command)."""
    from .dose_commands import add_dose_commands

    parser = argparse.ArgumentParser(prog="tareplanner")
    add_dose_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def run_patient(row: CohortRow, out_dir: str) -> dict:
    """Dosimetry of one patient (runs on a Dask worker). A failure (an exception, argument
    errors, a non-zero exit status) is returned and written to ``error.txt``, never raised;
    KeyboardInterrupt is raised as it is and nothing is recorded for the patient."""
    folder = Path(out_dir) / "patients" / row.patient_id
    if (folder / "dose.json").is_file():
        return {"patient_id": row.patient_id, "status": "skipped (done)"}
    args = ["dose", "--measurement", row.measurement, "--plan", row.plan, "--out", str(folder),
            "--force"]
    if row.pet:
        args += ["--pet", row.pet]
    if row.administration_time:
        args += ["--administration-time", row.administration_time]
    try:
        parsed = dose_parser().parse_args(args)
        import io
        with contextlib.redirect_stdout(io.StringIO()):
            code = parsed.func(parsed)
        if code:
            raise RuntimeError(f"tareplanner dose ended with exit status {code}")
        (folder / "error.txt").unlink(missing_ok=True)
        return {"patient_id": row.patient_id, "status": "done"}
    except KeyboardInterrupt:
        raise  # an interruption, not this patient's failure: nothing recorded
    except (Exception, SystemExit) as exc:  # recorded, never propagated: the cohort goes on
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "error.txt").write_text("".join(traceback.format_exception(exc)))
        return {"patient_id": row.patient_id, "status": "failed",
                "error": f"{type(exc).__name__}: {exc}"}


def _dvh_table(path: Path) -> dict:
    """{structure: (edges, % volume)} of a DVH table written by tareplanner dose."""
    import numpy as np
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    values = np.array([[float(v) for v in row] for row in rows[1:]], dtype=np.float64)
    return {name.removesuffix(" (%)"): (values[:, 0], values[:, k])
            for k, name in enumerate(rows[0][1:], start=1)}


def cohort_table(rows: list[CohortRow], out_dir: str | Path,
                 eud_alpha_per_gy: float | None = None) -> list[dict]:
    """One row per patient, structure and phase (planned/delivered) from the dose records;
    with ``eud_alpha_per_gy``, each structure's EUD (``eud_gy``) from its DVH table."""
    from ..physics.dose_response import eud_gy
    table = []
    for row in rows:
        record_path = Path(out_dir) / "patients" / row.patient_id / "dose.json"
        if not record_path.is_file():
            continue
        from ..records.dose_record import validate_dose_record
        record = validate_dose_record(json.loads(record_path.read_text()), str(record_path))
        phases = [("planned", record["predictive"]["structures"])]
        if "post_treatment" in record:
            phases.append(("delivered", record["post_treatment"]["structures"]))
        for phase, structures in phases:
            dvh = (_dvh_table(record_path.parent / f"dvh_{phase}.csv")
                   if eud_alpha_per_gy else {})
            for name, r in structures.items():
                entry = {"patient_id": row.patient_id, "phase": phase, "structure": name,
                         "kind": r["kind"]}
                entry.update({k: r.get(k) for k in INDEX_COLUMNS})
                entry["bed_mean_gy"] = r["bed"]["mean_gy"]
                entry["bed_D70_gy"] = r["bed"]["D70"]
                if name in dvh:
                    entry["eud_gy"] = eud_gy(*dvh[name], eud_alpha_per_gy)
                table.append(entry)
    return table


def run_cohort(cohort_csv: str | Path, out_dir: str | Path, *, scheduler: str | None = None,
               workers: int | None = None, progress: bool = True,
               eud_alpha_per_gy: float | None = None) -> dict:
    """Run every patient on Dask; write the status and index tables (with an ``eud_gy``
    column when ``eud_alpha_per_gy`` is given); return a summary."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise RuntimeError("the cohort batch needs Dask: pip install 'tareplanner[batch]'") \
            from None
    from ..errors import FieldValueError, OutputPathError
    if workers is not None and not 1 <= workers <= 256:
        raise FieldValueError("--workers", workers, "1 to 256 worker processes")
    import math
    if eud_alpha_per_gy is not None and not (math.isfinite(eud_alpha_per_gy)
                                             and 0 < eud_alpha_per_gy <= 10):
        raise FieldValueError("--eud-alpha-per-gy", eud_alpha_per_gy,
                              "a radiosensitivity alpha > 0 and <= 10 per Gy")
    rows = read_cohort(cohort_csv)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError("--out", str(out_dir), "a folder that can be made and written",
                              exc.strerror or type(exc).__name__) from None
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        with _workers_ignore_sigint():
            cluster = LocalCluster(n_workers=workers or 1, threads_per_worker=1,
                                   processes=True, dashboard_address=None,
                                   silence_logs=logging.ERROR)
        client = Client(cluster)
    from .progress import Progress
    bar = Progress("batch", quiet=not progress)  # on stderr, only to a terminal
    statuses, futures, interrupted = [], [], False
    try:
        futures = [client.submit(run_patient, row, str(out_dir), pure=False) for row in rows]
        for i, future in enumerate(as_completed(futures), start=1):
            status = future.result()
            statuses.append(status)
            bar.bar(i, len(rows), f"{status['patient_id']}: {status['status']}")
    except KeyboardInterrupt:
        interrupted = True
        bar.end_bar()  # end the progress line
        _dask_log_handlers(quiet=True)  # what Dask logs now is our own cancellation
        client.cancel(futures)
    finally:
        try:
            client.close()
            if cluster is not None:
                cluster.close()
        finally:
            if interrupted:
                _dask_log_handlers(quiet=False)
    if interrupted:  # counted once the workers are gone: nothing changes after this
        done = sum(1 for row in rows
                   if (out_dir / "patients" / row.patient_id / "dose.json").is_file())
        failed = sum(1 for s in statuses if s["status"] == "failed")
        raise BatchInterrupted(
            f"batch interrupted: {done} of {len(rows)} patient(s) done, {failed} failed, "
            f"{len(rows) - done - failed} not done (nothing recorded for them; status and "
            "index tables not written); run the same command again to continue")
    order = {row.patient_id: i for i, row in enumerate(rows)}
    statuses.sort(key=lambda s: order[s["patient_id"]])
    _write_csv(out_dir / "cohort_status.csv", statuses, ("patient_id", "status", "error"))
    table = cohort_table(rows, out_dir, eud_alpha_per_gy)
    _write_csv(out_dir / "cohort_indices.csv", table,
               ("patient_id", "phase", "structure", "kind") + INDEX_COLUMNS
               + ("bed_mean_gy", "bed_D70_gy") + (("eud_gy",) if eud_alpha_per_gy else ()))
    return {"patients": len(rows), "statuses": statuses, "rows": len(table)}


class _DropAll(logging.Filter):
    def filter(self, record) -> bool:
        return False


_DROP_ALL = _DropAll()


def _dask_log_handlers(*, quiet: bool) -> None:
    """Silence (or restore) the handlers of Dask's 'distributed' logger: after Ctrl-C the
    scheduler reports the cancelled work ("Couldn't gather keys ...") as errors, which are
    not errors of the batch."""
    for handler in logging.getLogger("distributed").handlers:
        if quiet:
            handler.addFilter(_DROP_ALL)
        else:
            handler.removeFilter(_DROP_ALL)


@contextlib.contextmanager
def _workers_ignore_sigint():
    """SIGINT ignored while the local worker processes start: they inherit it, so Ctrl-C
    (sent by a terminal to the whole process group) reaches only this process, which then
    cancels the work and closes the cluster, instead of each worker dying with a traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _write_csv(path: Path, rows: list[dict], columns) -> None:
    from ..records.atomic import write_text_atomic
    import io
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    write_text_atomic(path, buffer.getvalue(), overwrite=True)
