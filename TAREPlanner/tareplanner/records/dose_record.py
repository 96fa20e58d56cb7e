"""The dose record (``tareplanner.dose/1``): building it from a predictive dose and its
post-treatment part, and checking one read from disk."""

from __future__ import annotations

from datetime import datetime

DOSE_SCHEMA = "tareplanner.dose/1"

DOSE_RECORD_REQUIRED = ("schema", "created", "plan_input_sha256", "dose", "predictive")


def indices_only(report: dict) -> dict:
    """A structure report without its histograms (what records and comparisons keep)."""
    return {name: {k: v for k, v in r.items() if k not in ("dvh", "bed_dvh")}
            for name, r in report.items()}


def dose_record(plan: dict, dose_info: dict, predictive_info: dict, planned_report: dict,
                voxel_versus_partition: dict | None = None,
                parents: dict | None = None) -> dict:
    """A ``tareplanner.dose/1`` record of a predictive dose, with (when given) why its voxel
    means differ from the plan's partition-model doses (``dosimetry.partition.explain_voxel_doses``); the
    post-treatment part is added with :func:`with_post_treatment`."""
    predictive = {**predictive_info, "structures": indices_only(planned_report)}
    if voxel_versus_partition is not None:
        predictive["voxel_versus_partition"] = voxel_versus_partition
    from .chain import parent_ref
    return {"schema": DOSE_SCHEMA,
            "created": datetime.now().astimezone().isoformat(timespec="seconds"),
            "parents": parents or {"plan": parent_ref(plan)},
            "plan_input_sha256": plan["input_sha256"], "dose": dose_info,
            "predictive": predictive, "warnings": []}


def with_post_treatment(record: dict, post_treatment: dict,
                        comparison: dict | None = None) -> dict:
    """The dose record with its post-treatment part (and comparison); the post-treatment
    warnings (e.g. of the activity check) join the record's warnings."""
    out = dict(record)
    out["post_treatment"] = post_treatment
    if comparison:
        out["comparison"] = comparison
    codes = {(w["code"], w["message"]) for w in out.get("warnings") or []}
    out["warnings"] = list(out.get("warnings") or []) + [
        w for w in post_treatment.get("warnings") or [] if (w["code"], w["message"]) not in codes]
    return out


def validate_dose_record(record, where: str = "dose record") -> dict:
    """Check a ``tareplanner.dose/1`` record read from disk (schema, required parts)."""
    from ..errors import MissingFieldError, SchemaError

    if not isinstance(record, dict) or record.get("schema") != DOSE_SCHEMA:
        raise SchemaError(f"{where}.schema", record.get("schema") if isinstance(record, dict)
                          else None, DOSE_SCHEMA)
    for key in DOSE_RECORD_REQUIRED:
        if key not in record:
            raise MissingFieldError(f"{where}.{key}", "see docs/schemas/dose-1.schema.json")
    for part in ("predictive", "post_treatment"):
        if part in record and not isinstance(record[part].get("structures"), dict):
            raise SchemaError(f"{where}.{part}.structures", record[part].get("structures"),
                              "an object of structures")
    warnings = record.get("warnings", [])
    if not isinstance(warnings, list) or not all(
            isinstance(w, dict) and isinstance(w.get("code"), str)
            and isinstance(w.get("message"), str) for w in warnings):
        raise SchemaError(f"{where}.warnings", warnings,
                          "a list of objects with a code and a message")
    check = (record.get("post_treatment") or {}).get("activity_check")
    if check is not None and (not isinstance(check, dict) or not isinstance(
            check.get("applicable"), bool)):
        raise SchemaError(f"{where}.post_treatment.activity_check", check,
                          "an object with applicable (true or false)")
    return record


def with_lung_criterion(record: dict, directive: dict) -> dict:
    """The dose record with the lung-dose medical-event criterion of 10 CFR 35.3045(a)(3)
    checked on the post-treatment image: the mean lung dose it shows against the lung dose
    of the written directive (exceeding it by 0.5 Sv and by 50 %; data/administration.json).
    The image's lung dose is an estimate (resolution, noise and scatter in the lungs);
    without a post-treatment lung dose nothing is added."""
    from ..physics.administration import exceeds_organ_dose_criterion
    from .directive import criteria

    lungs = ((record.get("post_treatment") or {}).get("structures") or {}).get("lungs") or {}
    expected = directive.get("lung_dose_gy")
    dose = lungs.get("mean_gy")
    if not isinstance(dose, (int, float)) or not isinstance(expected, (int, float)):
        return record
    organ = criteria()["criteria"]["medical_event_organ_dose"]
    event = exceeds_organ_dose_criterion(dose, expected, organ["excess_dose_gy"],
                                         organ["relative_excess"])
    out = dict(record)
    out["lung_criterion"] = {"applicable": True, "organ": "lungs",
                             "basis": "mean lung dose of the post-treatment image against the "
                                      "written directive's lung dose",
                             "expected_dose_gy": expected, "image_dose_gy": dose,
                             "excess_dose_gy": organ["excess_dose_gy"],
                             "relative_excess_criterion": organ["relative_excess"],
                             "medical_event": event, "source": organ["source"]}
    if event:
        out["warnings"] = list(out.get("warnings") or []) + [{
            "code": "medical-event-lung",
            "message": f"mean lung dose {dose:.2f} Gy in the post-treatment image exceeds the "
                       f"written directive's {expected:.2f} Gy by {dose - expected:.2f} Gy "
                       f"({dose / expected - 1:+.0%}; 10 CFR 35.3045(a)(3): by 0.5 Sv and "
                       "50 % or more); confirm on the image and report as the regulation "
                       "requires"}]
    return out
