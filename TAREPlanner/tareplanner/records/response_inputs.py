"""The inputs of a dose–response fit: the cohort's dose-index table (``tareplanner batch``
writes ``cohort_indices.csv``), per-lesion response and per-patient liver toxicity, read and
joined with every bad value named (field, value, what is allowed).

Lesion outcomes (CSV, one row per lesion): ``patient_id``, ``structure`` (the tumour's name in
the index table), ``criteria`` (mRECIST, RECIST or EASL), ``category`` (CR, PR, SD, PD, or NE
for not evaluable: left out of the fit and counted), ``date`` (of the assessment, YYYY-MM-DD).

Liver toxicity (CSV, one row per patient): ``patient_id``, ``scale`` (CTCAE or REILD),
``grade`` (CTCAE: 0 to 5; REILD: yes or no), ``date`` (YYYY-MM-DD).
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ..errors import FieldValueError, MissingFieldError, SchemaError, UnknownNameError
from .fields import suggestion

CRITERIA = ("mRECIST", "RECIST", "EASL")
#: response categories of each criteria set (NE: not evaluable)
CATEGORIES = {"mRECIST": ("CR", "PR", "SD", "PD", "NE"), "RECIST": ("CR", "PR", "SD", "PD", "NE"),
              "EASL": ("CR", "PR", "SD", "PD", "NE")}
TOXICITY_SCALES = ("CTCAE", "REILD")
CTCAE_GRADES = ("0", "1", "2", "3", "4", "5")
REILD_GRADES = ("yes", "no")
#: the index-table column of each dose metric a fit can use
METRIC_COLUMNS = {"mean": "mean_gy", "median": "median_gy", "D70": "D70", "D90": "D90",
                  "bed_mean": "bed_mean_gy", "bed_D70": "bed_D70_gy", "eud": "eud_gy"}
PHASES = ("delivered", "planned")
LESION_COLUMNS = ("patient_id", "structure", "criteria", "category", "date")
TOXICITY_COLUMNS = ("patient_id", "scale", "grade", "date")
INDEX_COLUMNS = ("patient_id", "phase", "structure", "kind")
#: largest input table read (bytes): a cohort of thousands of patients is far smaller
MAX_TABLE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Table:
    path: str
    sha256: str
    rows: list[dict]
    columns: tuple[str, ...]


def read_table(path: str | Path, option: str, required: tuple[str, ...]) -> Table:
    """A UTF-8 CSV with the ``required`` columns; named errors for a missing, unreadable,
    huge, malformed or empty file."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_TABLE_BYTES:
            raise SchemaError(option, str(path), f"a CSV file of at most "
                              f"{MAX_TABLE_BYTES // 2**20} MiB", f"it has {size} bytes")
        data = path.read_bytes()
        text = data.decode("utf-8").removeprefix("\ufeff")
    except OSError as exc:
        raise SchemaError(option, str(path), "a readable CSV file",
                          exc.strerror or type(exc).__name__) from None
    except UnicodeDecodeError as exc:
        raise SchemaError(option, str(path), "a UTF-8 CSV file",
                          f"byte {exc.start}: {exc.reason}") from None
    except ValueError as exc:   # a NUL in the path
        raise SchemaError(option, str(path), "a readable CSV file", str(exc)) from None
    if "\x00" in text:
        raise SchemaError(option, str(path), "a text CSV file", "it holds NUL bytes")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        columns = tuple(c.strip() for c in (reader.fieldnames or []))
        rows = []
        for raw in reader:
            if None in raw:
                raise SchemaError(f"{option} line {reader.line_num}", raw[None],
                                  f"{len(columns)} cells, as in the header")
            rows.append({(k or "").strip(): (v or "").strip() for k, v in raw.items()})
    except csv.Error as exc:
        raise SchemaError(option, str(path), "a well-formed CSV file", str(exc)) from None
    for column in required:
        if column not in columns:
            hint = suggestion(column, columns)
            raise MissingFieldError(f"{option} column {column}",
                                    "columns " + ", ".join(required),
                                    f"the file has {', '.join(columns) or 'no header'}"
                                    + (f"; {hint}" if hint else ""))
    if not rows:
        raise SchemaError(option, str(path), "a CSV file with at least one row",
                          "it has a header only" if columns else "it is empty")
    return Table(str(path), hashlib.sha256(data).hexdigest(), rows, columns)


def _date(value: str, field: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise FieldValueError(field, value, "a date YYYY-MM-DD") from None


def _choice(value: str, field: str, choices, what: str) -> str:
    if value in choices:
        return value
    hint = suggestion(value, choices, any_case=True)
    raise UnknownNameError(field, value, f"{what}: " + ", ".join(choices), hint)


def _number(value: str, field: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise FieldValueError(field, value, "a dose in Gy (a finite number)") from None
    if not math.isfinite(number) or number < 0:
        raise FieldValueError(field, value, "a finite dose >= 0 Gy")
    return number


@dataclass(frozen=True)
class Observations:
    """Joined observations of one outcome: dose, outcome 0/1, patient, and what was left out."""
    dose_gy: list[float]
    outcome: list[int]
    patient: list[str]
    labels: list[str]
    counts: dict
    excluded: dict


def _index(indices: Table, metric: str, phase: str) -> tuple[dict, str]:
    column = METRIC_COLUMNS[metric]
    if column not in indices.columns:
        detail = ("the index table of tareplanner batch has no EUD; add an eud_gy column "
                  "(EUD of each structure, with its alpha stated in the docs of the study)"
                  if metric == "eud" else f"the table has {', '.join(indices.columns)}")
        raise MissingFieldError(f"--indices column {column}", f"a column {column} for "
                                f"--metric {metric}", detail)
    table = {}
    for line, row in enumerate(indices.rows, start=2):
        if row["phase"] != phase:
            continue
        key = (row["patient_id"], row["structure"])
        if key in table:
            raise FieldValueError(f"--indices line {line} structure", row["structure"],
                                  f"one row per patient, structure and phase ({phase})")
        table[key] = (row, line)
    if not table:
        phases = sorted({r["phase"] for r in indices.rows})
        raise FieldValueError("--phase", phase, "a phase of the index table: "
                              + ", ".join(phases))
    return table, column


def join_lesions(indices: Table, lesions: Table, *, metric: str, phase: str,
                 responders=("CR", "PR")) -> Observations:
    """Each lesion's dose (the metric's column, the phase's rows) and response (category in
    ``responders``); NE lesions are left out and counted."""
    table, column = _index(indices, metric, phase)
    patients = {p for p, _ in table}
    seen = set()
    out = Observations([], [], [], [], {}, {})
    for line, row in enumerate(lesions.rows, start=2):
        where = f"--lesions line {line}"
        pid, name = row["patient_id"], row["structure"]
        criteria = _choice(row["criteria"], f"{where} criteria", CRITERIA, "response criteria")
        category = _choice(row["category"], f"{where} category", CATEGORIES[criteria],
                           f"{criteria} categories")
        _date(row["date"], f"{where} date")
        if pid not in patients:
            raise FieldValueError(f"{where} patient_id", pid,
                                  f"a patient of the index table ({phase} phase)",
                                  suggestion(pid, sorted(patients)))
        if (pid, name) not in table:
            tumours = sorted(s for p, s in table if p == pid
                             and table[(p, s)][0]["kind"] == "tumour")
            raise FieldValueError(f"{where} structure", name,
                                  f"a tumour of patient {pid} in the index table: "
                                  + (", ".join(tumours) or "none"),
                                  suggestion(name, tumours))
        index_row, index_line = table[(pid, name)]
        if index_row["kind"] != "tumour":
            raise FieldValueError(f"{where} structure", name,
                                  f"a tumour (the index table has it as {index_row['kind']})")
        if (pid, name) in seen:
            raise FieldValueError(f"{where} structure", name,
                                  "one outcome per lesion (the assessment used for the fit)")
        seen.add((pid, name))
        out.counts[criteria] = out.counts.get(criteria, 0) + 1
        if category == "NE":
            out.excluded["NE"] = out.excluded.get("NE", 0) + 1
            continue
        out.dose_gy.append(_number(index_row.get(column, ""),
                                   f"--indices line {index_line} {column}"))
        out.outcome.append(int(category in responders))
        out.patient.append(pid)
        out.labels.append(f"{pid}/{name}")
    return out


def join_toxicity(indices: Table, toxicity: Table, *, metric: str, phase: str,
                  structure: str = "normal liver", min_grade: int = 3) -> Observations:
    """Each patient's liver dose (the metric's column of ``structure``) and toxicity (CTCAE
    grade >= ``min_grade``, or REILD yes)."""
    table, column = _index(indices, metric, phase)
    seen = set()
    out = Observations([], [], [], [], {}, {})
    for line, row in enumerate(toxicity.rows, start=2):
        where = f"--toxicity line {line}"
        pid = row["patient_id"]
        scale = _choice(row["scale"], f"{where} scale", TOXICITY_SCALES, "toxicity scales")
        grades = CTCAE_GRADES if scale == "CTCAE" else REILD_GRADES
        grade = _choice(row["grade"], f"{where} grade", grades, f"{scale} grades")
        _date(row["date"], f"{where} date")
        if (pid, structure) not in table:
            patients = sorted({p for p, _ in table})
            if pid in patients:
                raise FieldValueError(f"{where} patient_id", pid,
                                      f"a patient whose '{structure}' is in the index table "
                                      f"({phase} phase)")
            raise FieldValueError(f"{where} patient_id", pid,
                                  f"a patient of the index table ({phase} phase)",
                                  suggestion(pid, patients))
        if pid in seen:
            raise FieldValueError(f"{where} patient_id", pid, "one toxicity row per patient "
                                  "(the worst grade observed)")
        seen.add(pid)
        index_row, index_line = table[(pid, structure)]
        out.counts[scale] = out.counts.get(scale, 0) + 1
        out.dose_gy.append(_number(index_row.get(column, ""),
                                   f"--indices line {index_line} {column}"))
        event = int(grade) >= min_grade if scale == "CTCAE" else grade == "yes"
        out.outcome.append(int(event))
        out.patient.append(pid)
        out.labels.append(pid)
    return out
