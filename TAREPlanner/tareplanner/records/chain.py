"""The record chain: every record names its parents by SHA-256, and every command that takes
a parent checks that the two belong together.

    measurement -> case -> plan -> written directive -> administration
                                \\-> dose (measurement, plan, administration) -> report

A parent reference is ``{"schema", "sha256"[, "file"]}`` under the record's ``parents``
(older records: the fields they already held, ``input_sha256`` of a plan, ``plan_sha256``
of a directive, ``directive_sha256`` of an administration, ``measurement`` of a case). The
hash of a record is that of its canonical JSON (sorted keys, no white space:
:func:`record_sha256`); an input file named by the hash of its bytes (a measurement in its
case, a site-limits or camera file) matches that too (:func:`file_hashes`). Any top-level
entry ``{"file", "sha256"}`` of a record is a parent of that name, so an input record added
later (a camera file) joins the chain without code here.

One check (:func:`check_parent`) serves the command line, the Slicer module and the web
page; :func:`verify_links` checks a whole set of records (``tareplanner replay A B C``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import FieldValueError
from .case import canonical_sha256

#: the schema of each parent role (a role not listed is any input record file)
ROLE_SCHEMAS = {
    "measurement": "tareplanner.measurement/1",
    "case": "tareplanner.case/1",
    "plan": "tareplanner.plan/1",
    "directive": "tareplanner.directive/1",
    "administration": "tareplanner.administration/1",
    "site_limits": "tareplanner.site-limits/1",
    "response": "tareplanner.response/1",
}
#: the role a record of each schema plays as a parent
SCHEMA_ROLES = {schema: role for role, schema in ROLE_SCHEMAS.items()}
#: copies of a parent that a record holds inside itself (the plan its case, the
#: administration its directive): the parent is then present even when its file is not given
EMBEDDED = {("tareplanner.plan/1", "case"): "case",
            ("tareplanner.administration/1", "directive"): "directive"}
#: a parent of each of these roles has at most one child of each of these schemas
ONE_CHILD = {("directive", "tareplanner.administration/1")}
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class RecordChainError(FieldValueError):
    """Two records that do not belong together (a record given as the parent of another is
    not the one it names), a record changed after its child was written, a missing parent,
    or two children where one is allowed."""


def record_sha256(document: Mapping[str, Any]) -> str:
    """The SHA-256 by which a child names this record: that of its canonical JSON."""
    return canonical_sha256(document)


def file_hashes(document: Any, raw: bytes | None = None) -> set[str]:
    """Every hash by which a child may name this document: its canonical JSON, and the
    bytes of its file when given (input files are named by their bytes)."""
    hashes = set()
    if isinstance(document, dict):
        hashes.add(record_sha256(document))
    if raw is not None:
        hashes.add(hashlib.sha256(raw).hexdigest())
    return hashes


def parent_ref(document: Mapping[str, Any], file: str | Path | None = None,
               raw: bytes | None = None) -> dict:
    """A reference to a parent: its schema, its SHA-256 (of the file's bytes when ``raw``
    is given, else of the canonical JSON) and, when given, its file name (not its folder:
    the record may move)."""
    ref = {"schema": document.get("schema") if isinstance(document, dict) else None,
           "sha256": hashlib.sha256(raw).hexdigest() if raw is not None
           else record_sha256(document)}
    if file is not None:
        ref["file"] = Path(file).name
    return ref


def parents_of(record: Mapping[str, Any]) -> dict[str, dict]:
    """The parents a record names: role -> {"sha256", "schema"?, "file"?}."""
    out: dict[str, dict] = {}
    schema = record.get("schema")
    legacy = {"tareplanner.plan/1": ("case", "input_sha256"),
              "tareplanner.directive/1": ("plan", "plan_sha256"),
              "tareplanner.administration/1": ("directive", "directive_sha256")}
    if schema in legacy:
        role, key = legacy[schema]
        if isinstance(record.get(key), str):
            out[role] = {"sha256": record[key], "schema": ROLE_SCHEMAS[role]}
    for key, value in record.items():
        if key != "parents" and isinstance(value, dict) and isinstance(value.get("sha256"), str) \
                and "file" in value and _HEX64.match(value["sha256"]):
            out[key] = {"sha256": value["sha256"], "file": value.get("file"),
                        "schema": ROLE_SCHEMAS.get(key)}
    parents = record.get("parents")
    if isinstance(parents, dict):
        for role, ref in parents.items():
            if isinstance(ref, dict) and isinstance(ref.get("sha256"), str):
                out[role] = {**ref, "schema": ref.get("schema") or ROLE_SCHEMAS.get(role)}
    return out


def _short(sha: Any) -> str:
    return f"{str(sha)[:16]}…"


def check_parent(child: Mapping[str, Any], child_label: str, role: str, parent: Any,
                 parent_label: str, raw: bytes | None = None, *,
                 required: bool = True) -> None:
    """Refuse ``parent`` (read from ``parent_label``) as the ``role`` of ``child`` (read from
    ``child_label``) unless the child names it by hash. A child that names no parent of that
    role is refused too when ``required``."""
    named = parents_of(child).get(role)
    if named is None:
        if required:
            raise RecordChainError(f"{child_label} parents.{role}", "<missing>",
                                   f"a record that names its {role} by SHA-256, to check "
                                   f"{parent_label} against")
        return
    actual = file_hashes(parent, raw)
    if named["sha256"] not in actual:
        shown = record_sha256(parent) if isinstance(parent, dict) else next(iter(actual), "")
        raise RecordChainError(
            f"{child_label} parents.{role}", _short(named["sha256"]),
            f"the {role} that {child_label} was made from (by SHA-256); {parent_label} is "
            f"{_short(shown)}",
            f"{parent_label} is another {role}, or it was changed after {child_label} was "
            "written")


@dataclass
class RecordFile:
    """A record read from a file (a dose folder: its dose.json), with its hashes."""

    label: str
    document: dict
    raw: bytes | None = None
    hashes: set = field(default_factory=set)

    @property
    def schema(self) -> str:
        return str(self.document.get("schema"))


def read_record_file(path: str | Path, option: str = "record") -> RecordFile:
    """A record from ``path`` (a folder written by ``tareplanner dose``: its dose.json)."""
    from ..errors import SchemaError
    from .fields import loads_strict

    path = Path(path)
    label = str(path)
    if path.is_dir():
        path = path / "dose.json"
        if not path.is_file():
            raise SchemaError(option, label, "a record file or a folder written by "
                                             "tareplanner dose")
    try:
        raw = path.read_bytes()
        document = loads_strict(raw.decode("utf-8").removeprefix("\ufeff"), option, label)
    except OSError as exc:
        raise SchemaError(option, label, "a readable JSON file",
                          exc.strerror or type(exc).__name__) from None
    except UnicodeDecodeError as exc:
        raise SchemaError(option, label, "a UTF-8 text file", str(exc)) from None
    if not isinstance(document, dict) or not isinstance(document.get("schema"), str):
        raise SchemaError(f"{option} {label}", "no schema", "a tareplanner record (with its "
                          "schema: " + ", ".join(sorted(ROLE_SCHEMAS.values())) + ", "
                          "tareplanner.dose/1)")
    return RecordFile(label, document, raw, file_hashes(document, raw))


def verify_links(records: Iterable[RecordFile]) -> list[str]:
    """Check every parent every given record names: present (as a given file or a copy the
    record holds) and unchanged; at most one administration per directive. Returns a line
    per link checked; raises :class:`RecordChainError` naming both records otherwise."""
    records = list(records)
    by_hash: dict[str, RecordFile] = {}
    for r in records:
        for h in r.hashes:
            if h in by_hash and by_hash[h] is not r:
                raise RecordChainError(r.label, _short(h), "each record once",
                                       f"{by_hash[h].label} is the same record")
            by_hash[h] = r
    lines = []
    children: dict[tuple[str, str], RecordFile] = {}
    queue = list(records)
    while queue:
        r = queue.pop(0)
        for role, ref in parents_of(r.document).items():
            sha = ref["sha256"]
            parent = by_hash.get(sha)
            embedded_key = EMBEDDED.get((r.schema, role))
            wanted = ref.get("schema") or ROLE_SCHEMAS.get(role)
            others = [o for o in records if wanted and o.schema == wanted and o is not r]
            if parent is None and others:
                check_parent(r.document, r.label, role, others[0].document, others[0].label,
                             others[0].raw)
            if parent is None and embedded_key is not None:
                copy = r.document.get(embedded_key)
                if not isinstance(copy, dict) or record_sha256(copy) != sha:
                    raise RecordChainError(
                        f"{r.label} {embedded_key}", _short(record_sha256(copy))
                        if isinstance(copy, dict) else copy,
                        f"the {role} it names ({_short(sha)})",
                        f"the copy of the {role} that {r.label} holds was changed")
                lines.append(f"{r.label}: {role} {_short(sha)} (the copy it holds)")
                if sha not in by_hash:
                    copy_record = RecordFile(f"{r.label} ({role} it holds)", copy,
                                             hashes={sha})
                    by_hash[sha] = copy_record
                    queue.append(copy_record)
                continue
            if parent is None:
                raise RecordChainError(
                    f"{r.label} parents.{role}", _short(sha),
                    f"its {role} among the records given"
                    + (f" ({ref['file']})" if ref.get("file") else ""),
                    "a missing parent: give every record of the chain")
            wanted = ref.get("schema")
            if wanted and parent.schema != wanted and role in ROLE_SCHEMAS:
                raise RecordChainError(f"{r.label} parents.{role}", parent.label, wanted)
            key = (sha, r.schema)
            if (role, r.schema) in ONE_CHILD:
                if key in children:
                    raise RecordChainError(
                        r.label, f"a second {r.schema.split('.')[-1].split('/')[0]} of "
                        f"{parent.label}", "one per " + role,
                        f"{children[key].label} and {r.label} both name {parent.label}")
                children[key] = r
            lines.append(f"{r.label}: {role} {parent.label} {_short(sha)}")
    return lines
