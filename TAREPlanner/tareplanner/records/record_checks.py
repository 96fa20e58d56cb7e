"""Checks of the records that commands read back (plan, measurement, dose folder), so that a
truncated, hand-edited or foreign record is refused with a named error (field, value, what
is allowed) before any of its values is used, never with a traceback.

The checks cover the parts the commands read: ``replay`` and ``report`` (plan record),
``dose`` (plan and measurement records), ``report --dose`` (dose folder). Text that reaches
the PDF report (names, identifiers, warnings) must hold no control characters.
"""

from __future__ import annotations

import math
import unicodedata
from pathlib import Path
from typing import Any

from ..errors import FieldValueError, MissingFieldError, SchemaError, TarePlannerInputError
from .fields import check_name

PLAN_SCHEMA = "tareplanner.plan/1"
#: activities of a plan record are below this (GBq): far above any vial (TheraSphere's
#: largest is 20 GBq), low enough that doses stay finite
MAX_ACTIVITY_GBQ = 1000.0
MEASUREMENT_SCHEMA = "tareplanner.measurement/1"

_MISSING = object()


def _at(obj: dict, key: str, where: str, kind: str, *, optional: bool = False,
        minimum: float | None = None, below: float | None = None) -> Any:
    """``obj[key]`` checked to be of ``kind``: object, list, text, name, number, label."""
    path = f"{where}.{key}"
    value = obj.get(key, _MISSING)
    if value is _MISSING or value is None:
        if optional:
            return None
        raise MissingFieldError(path, _ALLOWED[kind])
    if kind == "object":
        ok = isinstance(value, dict)
    elif kind == "list":
        ok = isinstance(value, list)
    elif kind == "text":
        ok = isinstance(value, str) and not _has_control(value)
    elif kind == "name":
        check_name(value, path)
        ok = True
    elif kind == "number":
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
              and math.isfinite(value)
              and (minimum is None or value >= minimum) and (below is None or value < below))
    elif kind == "label":
        ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 255
    else:  # pragma: no cover
        raise AssertionError(kind)
    if not ok:
        allowed = _ALLOWED[kind]
        if kind == "number" and (minimum is not None or below is not None):
            allowed += "".join([f" >= {minimum:g}" if minimum is not None else "",
                                f" and < {below:g}" if below is not None else ""])
        raise FieldValueError(path, value, allowed)
    return value


_ALLOWED = {"object": "a JSON object", "list": "a JSON list",
            "text": "text without control characters", "name": "a name",
            "number": "a finite number", "label": "a label number 1 to 255"}


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cs") for c in text)


def _items(obj: dict, key: str, where: str) -> list[tuple[str, dict]]:
    """The objects of the list ``obj[key]`` with their paths."""
    items = _at(obj, key, where, "list")
    out = []
    for i, item in enumerate(items):
        path = f"{where}.{key}[{i}]"
        if not isinstance(item, dict):
            raise FieldValueError(path, item, "a JSON object")
        out.append((path, item))
    return out


def _violations(obj: dict, key: str, where: str) -> None:
    for path, v in _items(obj, key, where):
        _at(v, "limit", path, "text")
        _at(v, "dose_gy", path, "number")
        _at(v, "limit_gy", path, "number")


def read_plan_record(path: str) -> dict:
    """A plan record from a file; a named error when unreadable, of another schema or
    missing what replay and report read (:func:`check_plan_record`)."""
    from .fields import read_json_file

    return check_plan_record(read_json_file(path, "record"), path)


def check_plan_record(record: Any, source: str = "record", where: str = "record") -> dict:
    """The plan record when it holds what replay, report and dose read; a named error
    (``<where>.<field>``) otherwise."""
    from .. import catalogue

    if not isinstance(record, dict):
        raise SchemaError(where, source, "a JSON object (a tareplanner.plan/1 record)")
    if record.get("schema") != PLAN_SCHEMA:
        raise SchemaError(f"{where}.schema", record.get("schema"), PLAN_SCHEMA)
    _at(record, "case", where, "object")
    _at(record, "input_sha256", where, "text")
    _at(record, "created", where, "text")
    _at(_at(record, "software", where, "object"), "version", f"{where}.software", "text")
    product = _at(record, "product", where, "object")
    key = _at(product, "key", f"{where}.product", "text")
    if key not in catalogue.product_keys():
        raise FieldValueError(f"{where}.product.key", key, ", ".join(catalogue.product_keys()))
    _at(product, "display_name", f"{where}.product", "text")
    for name in ("method", "dose_model", "lsf_method", "limits_source"):
        _at(record, name, where, "text")
    for name in ("case_id", "patient_id"):
        if record.get(name) is not None:
            _at(record, name, where, "name")
    _at(record, "treatment_time", where, "text", optional=True)
    nuclide = _at(record, "nuclide", where, "object")
    _at(nuclide, "name", f"{where}.nuclide", "text")
    _at(nuclide, "energy_per_activity_j_per_gbq", f"{where}.nuclide", "number", minimum=0)
    _at(record, "lung_shunt_fraction", where, "number", minimum=0, below=1)
    _at(record, "residual_fraction", where, "number", minimum=0, below=1)
    for name in ("tissue_density_g_per_ml", "lung_mass_kg", "lung_dose_gy",
                 "lung_dose_cumulative_gy"):
        _at(record, name, where, "number", minimum=0)
    _at(record, "total_activity_gbq", where, "number", minimum=0, below=MAX_ACTIVITY_GBQ)
    _at(record, "whole_liver_dose_gy", where, "number", optional=True, minimum=0)

    limits = _at(record, "limits", where, "object")
    for name, entry in limits.items():
        path = f"{where}.limits.{name}"
        if name.startswith("applied_"):
            if entry not in limits or not isinstance(limits.get(entry), dict):
                raise FieldValueError(path, entry, "the name of one of the record's limits")
            continue
        if not isinstance(entry, dict):
            raise FieldValueError(path, entry, "an object with a value and a source")
        _at(entry, "value", path, "number", optional=True)
        _at(entry, "source", path, "text")
    _at(limits, "applied_normal_liver", f"{where}.limits", "text")
    for name in ("lung_single_gy", "lung_cumulative_gy"):
        _at(limits, name, f"{where}.limits", "object")

    positions = _items(record, "positions", where)
    if not positions:
        raise FieldValueError(f"{where}.positions", [], "at least one position")
    for path, pos in positions:
        _at(pos, "name", path, "name")
        _at(pos, "activity_gbq", path, "number", minimum=0, below=MAX_ACTIVITY_GBQ)
        _at(pos, "normal_dose_gy", path, "number", minimum=0)
        _at(pos, "perfused_dose_gy", path, "number", optional=True, minimum=0)
        _at(pos, "normal_volume_ml", path, "number", minimum=0)
        _at(pos, "limited_by", path, "text")
        _at(pos, "goal", path, "object", optional=True)
        for tpath, tumour in _items(pos, "tumours", path):
            _at(tumour, "name", tpath, "name")
            _at(tumour, "volume_ml", tpath, "number", minimum=0)
            _at(tumour, "tnr", tpath, "number", optional=True, minimum=0)
            _at(tumour, "dose_gy", tpath, "number", minimum=0)
        _violations(pos, "violations", path)
    ordering = _at(record, "ordering", where, "object")
    _at(ordering, "kind", f"{where}.ordering", "text")
    for path, entry in _items(ordering, "positions", f"{where}.ordering"):
        _at(entry, "name", path, "text")
        for name, value in entry.items():
            if isinstance(value, str) and _has_control(value):
                raise FieldValueError(f"{path}.{name}", value, _ALLOWED["text"])
    _violations(record, "violations", where)
    _uncertainty(record, positions, where)
    for path, warning in _items(record, "warnings", where):
        _at(warning, "code", path, "text")
        _at(warning, "message", path, "text")
    return record


def _uncertainty(record: dict, positions: list, where: str) -> None:
    """The figures the report prints for every position and tumour (keyed by their names,
    so a renamed position or tumour leaves its figures behind)."""
    if record.get("uncertainty") is None:
        return
    uncertainty = _at(record, "uncertainty", where, "object")
    figures = _at(uncertainty, "figures", f"{where}.uncertainty", "object")
    wanted = ["lung"]
    for _, pos in positions:
        wanted += [f"{pos['name']}: activity", f"{pos['name']}: normal liver"]
        wanted += [f"{pos['name']}/{t['name']}" for _, t in _items(pos, "tumours", where)]
    for key in wanted:
        figure = figures.get(key)
        path = f"{where}.uncertainty.figures.{key}"
        if not isinstance(figure, dict):
            raise FieldValueError(path, figure, "the interval of every position and tumour "
                                                "of the record (low, high, unit)")
        _at(figure, "low", path, "number")
        _at(figure, "high", path, "number")
        _at(figure, "unit", path, "text")


def check_measurement_record(record: Any, source: str = "measurement") -> dict:
    """The measurement record when it holds what ``dose`` reads (image and label files,
    label numbers); a named error (``measurement.<field>``) otherwise."""
    where = "measurement"
    if not isinstance(record, dict):
        raise SchemaError(where, source, f"a JSON object (a {MEASUREMENT_SCHEMA} record)")
    if record.get("schema") != MEASUREMENT_SCHEMA:
        raise SchemaError(f"{where}.schema", record.get("schema"), MEASUREMENT_SCHEMA)
    inputs = _at(record, "inputs", where, "object")
    for image in ("ct", "spect"):
        _at(_at(inputs, image, f"{where}.inputs", "object"), "source",
            f"{where}.inputs.{image}", "text")
    labels = _at(inputs, "labels", f"{where}.inputs", "object")
    _at(labels, "liver", f"{where}.inputs.labels", "text")
    has_tumours = _at(labels, "tumours", f"{where}.inputs.labels", "text",
                      optional=True) is not None
    tumour_labels = _at(record, "tumour_labels", where, "object")
    if tumour_labels and not has_tumours:
        raise MissingFieldError(f"{where}.inputs.labels.tumours",
                                "the tumour label map that tumour_labels number")
    for name in tumour_labels:
        check_name(name, f"{where}.tumour_labels")
        _at(tumour_labels, name, f"{where}.tumour_labels", "label")
    outputs = record.get("label_outputs") or {}
    if not isinstance(outputs, dict) or "territories" not in outputs:
        raise FieldValueError(f"{where}.label_outputs", outputs.get("territories")
                              if isinstance(outputs, dict) else outputs,
                              "a measurement written with --measurement-output (it saves "
                              "the territory and lung label maps)")
    _at(outputs, "territories", f"{where}.label_outputs", "text")
    _at(outputs, "lungs", f"{where}.label_outputs", "text")
    territories = _at(outputs, "territory_labels", f"{where}.label_outputs", "object")
    if not territories:
        raise FieldValueError(f"{where}.label_outputs.territory_labels", territories,
                              "one label per position")
    for name in territories:
        check_name(name, f"{where}.label_outputs.territory_labels")
        _at(territories, name, f"{where}.label_outputs.territory_labels", "label")
    return record


def check_dose_folder(folder: str | Path) -> dict:
    """The dose record of a folder written by ``tareplanner dose`` once its record, DVH
    tables and planned dose map read; a named error (``--dose``) otherwise."""
    import csv

    import numpy as np

    from .dose_record import validate_dose_record
    from ..imaging.readers import read_image
    from .fields import read_json_file

    folder = Path(folder)
    if not (folder / "dose.json").is_file():
        raise SchemaError("--dose", str(folder), "a folder written by tareplanner dose")
    record = validate_dose_record(read_json_file(folder / "dose.json", "--dose dose.json"),
                                  "--dose dose.json")
    for name in ("dvh_planned.csv", "dvh_delivered.csv"):
        path = folder / name
        if not path.exists():
            if name == "dvh_planned.csv":
                raise MissingFieldError(f"--dose {name}", "the planned DVH table")
            continue
        try:
            rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
            data = np.array([[float(x) for x in r] for r in rows[1:]], dtype=float)
        except (OSError, UnicodeDecodeError, ValueError, IndexError) as exc:
            raise SchemaError(f"--dose {name}", str(path), "a DVH table of numbers with a "
                              "header row", str(exc)) from None
        if len(rows) < 2 or data.ndim != 2 or data.shape[1] != len(rows[0]) \
                or not np.isfinite(data).all():
            raise SchemaError(f"--dose {name}", str(path), "a DVH table of finite numbers "
                              "with a header row, one column per header")
    try:
        read_image(folder / "dose_planned_gy.nii.gz")
    except TarePlannerInputError as exc:
        raise exc.within("--dose") from None
    return record


#: longest time from administration to the post-treatment image, in half-lives: after 20
#: half-lives less than 1e-6 of the activity is left
PET_MAX_HALF_LIVES = 20


def check_dose_options(args) -> None:
    """The numeric and time options of ``tareplanner dose``, before anything is computed."""
    from .fields import timestamp

    out = Path(getattr(args, "out", "") or ".")
    if out.exists() and not out.is_dir():
        from ..errors import OutputPathError
        raise OutputPathError("--out", str(out), "a folder, not a file")
    bin_gy = getattr(args, "bin_gy", 1.0)
    if not (isinstance(bin_gy, (int, float)) and math.isfinite(bin_gy) and 0 < bin_gy <= 100):
        raise FieldValueError("--bin-gy", bin_gy, "a DVH bin width > 0 and <= 100 Gy")
    if getattr(args, "administration_time", None) is not None:
        timestamp({"--administration-time": args.administration_time},
                  "--administration-time", "", required=True)


def check_pet_times(administration: str, acquisition: str, half_life_h: float) -> None:
    """The PET is acquired after the administration, within :data:`PET_MAX_HALF_LIVES`."""
    from datetime import datetime

    try:
        given, taken = datetime.fromisoformat(administration), datetime.fromisoformat(acquisition)
        elapsed_h = (taken - given).total_seconds() / 3600.0
    except (TypeError, ValueError) as exc:
        raise FieldValueError("--administration-time", administration,
                              "an ISO 8601 date-time with UTC offset, as is the PET's "
                              f"acquisition time ({acquisition})", str(exc)) from None
    if not 0 <= elapsed_h <= PET_MAX_HALF_LIVES * half_life_h:
        raise FieldValueError("--administration-time", administration,
                              f"a time before the PET acquisition ({acquisition}) and at most "
                              f"{PET_MAX_HALF_LIVES} half-lives "
                              f"({PET_MAX_HALF_LIVES * half_life_h:.0f} h) earlier")
