"""The parent-hash chain (records.chain) function by function, on small records built here.
Every expected hash is computed in the test with hashlib on bytes written out by hand (the
canonical JSON: sorted keys, no white space, UTF-8 as is), never with the module's own
function. Each test names the bug it catches."""

import hashlib

import pytest

from tareplanner.records.chain import (RecordChainError, RecordFile, camera_parent,
                                       check_parent, file_hashes, parent_ref, parents_of,
                                       read_record_file, record_sha256, verify_links)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _short(sha: str) -> str:
    return sha[:16] + "…"


# A case, its plan, the plan's directive and the directive's administration, each with its
# canonical JSON written out by hand.
CASE = {"schema": "tareplanner.case/1", "id": "é1"}
CASE_JSON = '{"id":"é1","schema":"tareplanner.case/1"}'.encode("utf-8")
CASE_SHA = _sha(CASE_JSON)
PLAN = {"schema": "tareplanner.plan/1", "input_sha256": CASE_SHA, "case": CASE}
PLAN_SHA = _sha(('{"case":{"id":"é1","schema":"tareplanner.case/1"},"input_sha256":"'
                 + CASE_SHA + '","schema":"tareplanner.plan/1"}').encode("utf-8"))
DIRECTIVE = {"schema": "tareplanner.directive/1", "parents": {"plan": {"sha256": PLAN_SHA}}}
DIRECTIVE_SHA = _sha(('{"parents":{"plan":{"sha256":"' + PLAN_SHA
                      + '"}},"schema":"tareplanner.directive/1"}').encode())


def _administration(directive=DIRECTIVE, sha=DIRECTIVE_SHA, n=1):
    return {"schema": "tareplanner.administration/1", "n": n,
            "parents": {"directive": {"sha256": sha}}, "directive": directive}


def test_record_hash_is_that_of_the_canonical_json():
    """Bugs caught: keys hashed in their given order, with white space, or with non-ASCII
    escaped (a record would then change its hash on a round trip through another writer)."""
    assert record_sha256({"schema": "tareplanner.case/1", "id": "é1"}) == CASE_SHA
    assert record_sha256(PLAN) == PLAN_SHA
    assert record_sha256(DIRECTIVE) == DIRECTIVE_SHA


def test_file_hashes_are_the_canonical_json_and_the_bytes():
    """Bugs caught: an input file accepted only by its canonical JSON (its bytes' hash lost)
    or the reverse, or a non-record file given a canonical hash."""
    raw = b'{ "schema": "tareplanner.case/1", "id": "\\u00e91" }\n'
    assert file_hashes(CASE, raw) == {CASE_SHA, _sha(raw)}
    assert file_hashes(CASE) == {CASE_SHA}
    assert file_hashes([1, 2], b"[1,2]") == {_sha(b"[1,2]")}
    assert file_hashes("text") == set()


def test_parent_reference_names_schema_hash_and_file_name():
    """Bugs caught: a reference with the canonical hash where the file's bytes were given
    (or the reverse), with the file's folder (a record that moves would lose its parent), or
    a file entry where none was given."""
    raw = b'{"schema": "tareplanner.camera/1"}'
    assert parent_ref({"schema": "tareplanner.camera/1"}, "/data/site/camera.json", raw) == {
        "schema": "tareplanner.camera/1", "sha256": _sha(raw), "file": "camera.json"}
    assert parent_ref(CASE) == {"schema": "tareplanner.case/1", "sha256": CASE_SHA}
    assert parent_ref([1], raw=b"[1]") == {"schema": None, "sha256": _sha(b"[1]")}


def test_camera_parent_of_a_resolution():
    """Bugs caught: an assumed resolution (no camera file) given a parent, a camera named
    with another schema, its folder kept, or a malformed camera entry accepted."""
    sha = _sha(b"camera bytes")
    assert camera_parent({"camera": {"sha256": sha, "file": "/x/y/cam.json"}}) == {
        "schema": "tareplanner.camera/1", "sha256": sha, "file": "cam.json"}
    assert camera_parent({"camera": {"sha256": sha}}) == {"schema": "tareplanner.camera/1",
                                                          "sha256": sha}
    assert camera_parent({"camera": {"sha256": sha, "file": ""}}) == {
        "schema": "tareplanner.camera/1", "sha256": sha}
    for resolution in (None, {}, {"camera": "cam.json"}, {"camera": {"sha256": 5}},
                       {"camera": {"file": "cam.json"}}):
        assert camera_parent(resolution) is None, resolution


def test_parents_of_legacy_fields_file_entries_and_parents():
    """Bugs caught: the older records' parent fields (input_sha256 of a plan, plan_sha256 of
    a directive, directive_sha256 of an administration) read for another schema or given
    another role; a top-level {file, sha256} entry not taken as a parent (or taken without
    its file, or with a malformed hash); the explicit parents' schema not filled in from the
    role, or an explicit schema overwritten."""
    h1, h2, h3 = _sha(b"1"), _sha(b"2"), _sha(b"3")
    assert parents_of({"schema": "tareplanner.plan/1", "input_sha256": h1}) == {
        "case": {"sha256": h1, "schema": "tareplanner.case/1"}}
    assert parents_of({"schema": "tareplanner.directive/1", "plan_sha256": h1}) == {
        "plan": {"sha256": h1, "schema": "tareplanner.plan/1"}}
    assert parents_of({"schema": "tareplanner.administration/1", "directive_sha256": h1}) == {
        "directive": {"sha256": h1, "schema": "tareplanner.directive/1"}}
    # the legacy field of another schema is no parent; nor is a hash that is not a string
    assert parents_of({"schema": "tareplanner.directive/1", "input_sha256": h1}) == {}
    assert parents_of({"schema": "tareplanner.plan/1", "input_sha256": 5}) == {}
    # top-level input files
    record = {"schema": "tareplanner.case/1",
              "measurement": {"file": "m.json", "sha256": h1},
              "site_limits": {"file": None, "sha256": h2},
              "lab": {"file": "lab.json", "sha256": h3},
              "no_file": {"sha256": h3},
              "upper": {"file": "u.json", "sha256": h3.upper()},
              "short": {"file": "s.json", "sha256": h3[:63]},
              "number": {"file": "n.json", "sha256": 7}}
    assert parents_of(record) == {
        "measurement": {"sha256": h1, "file": "m.json", "schema": "tareplanner.measurement/1"},
        "site_limits": {"sha256": h2, "file": None, "schema": "tareplanner.site-limits/1"},
        "lab": {"sha256": h3, "file": "lab.json", "schema": None}}
    # explicit parents: the schema filled in from the role, an explicit one kept; they
    # take the place of a legacy field of the same role
    record = {"schema": "tareplanner.plan/1", "input_sha256": h1,
              "parents": {"case": {"sha256": h2}, "camera": {"sha256": h3, "schema": "own/1"},
                          "site_limits": {"sha256": h1, "file": "s.json"},
                          "bad": {"sha256": 3}, "text": "x"}}
    assert parents_of(record) == {
        "case": {"sha256": h2, "schema": "tareplanner.case/1"},
        "camera": {"sha256": h3, "schema": "own/1"},
        "site_limits": {"sha256": h1, "file": "s.json", "schema": "tareplanner.site-limits/1"}}
    assert parents_of({"schema": "x", "parents": [h1]}) == {}


def test_check_parent_accepts_the_named_parent_and_names_a_wrong_one():
    """Bugs caught: a parent accepted that the child does not name, a missing reference let
    through when required (or refused when not), and a refusal that does not show both
    hashes (the one named, the one given) by their first 16 hex digits."""
    check_parent(PLAN, "plan.json", "case", CASE, "case.json")
    check_parent(PLAN, "plan.json", "case", {"schema": "x"}, "case.json",
                 raw=CASE_JSON)                       # named by the bytes of its file
    assert check_parent(CASE, "case.json", "plan", PLAN, "plan.json", required=False) is None
    with pytest.raises(RecordChainError) as missing:
        check_parent(CASE, "case.json", "plan", PLAN, "plan.json")
    assert missing.value.field == "case.json parents.plan"
    assert missing.value.value == "<missing>"
    assert "plan.json" in missing.value.allowed
    other = {"schema": "tareplanner.case/1", "id": "e2"}
    other_sha = _sha(b'{"id":"e2","schema":"tareplanner.case/1"}')
    with pytest.raises(RecordChainError) as wrong:
        check_parent(PLAN, "plan.json", "case", other, "other.json")
    assert wrong.value.field == "plan.json parents.case"
    assert wrong.value.value == _short(CASE_SHA)
    assert wrong.value.allowed == (f"the case that plan.json was made from (by SHA-256); "
                                   f"other.json is {_short(other_sha)}")
    assert "changed after plan.json was written" in wrong.value.detail
    # a record given with its file's bytes is still shown by its canonical hash
    with pytest.raises(RecordChainError) as both:
        check_parent(PLAN, "plan.json", "case", other, "other.json", raw=b"other bytes")
    assert both.value.allowed.endswith(f"other.json is {_short(other_sha)}")
    # neither a record nor bytes: no hash to show
    with pytest.raises(RecordChainError) as nothing:
        check_parent(PLAN, "plan.json", "case", "text", "x.txt")
    assert nothing.value.allowed.endswith("x.txt is …")
    # a parent that is no record is shown by the hash of its bytes
    with pytest.raises(RecordChainError) as raw_only:
        check_parent(PLAN, "plan.json", "case", "not a record", "x.bin", raw=b"abc")
    assert raw_only.value.allowed.endswith(f"x.bin is {_short(_sha(b'abc'))}")


def _file(label, document):
    """A record as read from a file, with the hash of its canonical JSON."""
    return RecordFile(label, document, None, {record_sha256(document)})


def test_verify_links_lists_every_link_checked():
    """Bugs caught: a link not checked or not reported, a parent found through its embedded
    copy reported as a given file (or the reverse), the copy's own parents not followed."""
    plan, directive = _file("plan.json", PLAN), _file("directive.json", DIRECTIVE)
    admin = _file("admin.json", _administration())
    lines = verify_links([plan, directive, admin])
    assert lines == [
        f"plan.json: case {_short(CASE_SHA)} (the copy it holds)",
        f"directive.json: plan plan.json {_short(PLAN_SHA)}",
        f"admin.json: directive directive.json {_short(DIRECTIVE_SHA)}"]
    # a plan naming a site-limits file beside its embedded case: both links checked; a
    # second plan of the same case finds it in the first plan's copy
    site = {"schema": "tareplanner.site-limits/1", "site": "S"}
    site_sha = _sha(b'{"schema":"tareplanner.site-limits/1","site":"S"}')
    with_site = dict(PLAN, parents={"site_limits": {"sha256": site_sha}})
    second = dict(PLAN, note="second")
    lines = verify_links([_file("p1.json", with_site), _file("site.json", site),
                          _file("p2.json", second)])
    assert lines == [
        f"p1.json: case {_short(CASE_SHA)} (the copy it holds)",
        f"p1.json: site_limits site.json {_short(site_sha)}",
        f"p2.json: case p1.json (case it holds) {_short(CASE_SHA)}"]
    # the administration alone: its directive from the copy it holds, whose plan is missing
    with pytest.raises(RecordChainError) as missing:
        verify_links([admin])
    assert missing.value.field == "admin.json (directive it holds) parents.plan"
    assert missing.value.value == _short(PLAN_SHA)
    assert missing.value.detail == "a missing parent: give every record of the chain"
    assert missing.value.allowed == "its plan among the records given"
    # a missing parent named with its file: the file is named
    named = {"schema": "tareplanner.directive/1",
             "parents": {"plan": {"sha256": PLAN_SHA, "file": "plan-2026.json"}}}
    with pytest.raises(RecordChainError) as missing:
        verify_links([_file("d.json", named)])
    assert missing.value.allowed == "its plan among the records given (plan-2026.json)"


def test_verify_links_refusals_name_both_records():
    """Bugs caught: the same record given twice, a changed embedded copy, a parent of
    another schema, and two administrations of one directive (a directive is given once)
    each let through, or refused without naming the records."""
    plan, directive = _file("plan.json", PLAN), _file("directive.json", DIRECTIVE)
    with pytest.raises(RecordChainError) as twice:
        verify_links([plan, _file("copy.json", PLAN)])
    assert (twice.value.field, twice.value.value) == ("copy.json", _short(PLAN_SHA))
    assert twice.value.allowed == "each record once"
    assert twice.value.detail == "plan.json is the same record"

    changed = dict(PLAN, case={"schema": "tareplanner.case/1", "id": "e2"})
    with pytest.raises(RecordChainError) as copy:
        verify_links([_file("plan.json", changed)])
    assert copy.value.field == "plan.json case"
    assert copy.value.value == _short(_sha(b'{"id":"e2","schema":"tareplanner.case/1"}'))
    assert copy.value.allowed == f"the case it names ({_short(CASE_SHA)})"
    assert copy.value.detail == "the copy of the case that plan.json holds was changed"

    not_a_copy = dict(PLAN, case="case.json")
    with pytest.raises(RecordChainError) as text:
        verify_links([_file("plan.json", not_a_copy)])
    assert text.value.value == "case.json"

    # a directive naming, as its plan, a record of another schema
    wrong = {"schema": "tareplanner.directive/1",
             "parents": {"plan": {"sha256": CASE_SHA, "schema": "tareplanner.plan/1"}}}
    with pytest.raises(RecordChainError) as schema:
        verify_links([_file("case.json", CASE), _file("d.json", wrong)])
    assert (schema.value.field, schema.value.value) == ("d.json parents.plan", "case.json")
    assert schema.value.allowed == "tareplanner.plan/1"

    first = _file("a1.json", _administration(n=1))
    second = _file("a2.json", _administration(n=2))
    with pytest.raises(RecordChainError) as two:
        verify_links([plan, directive, first, second])
    assert two.value.field == "a2.json"
    assert two.value.value == "a second administration of directive.json"
    assert two.value.allowed == "one per directive"
    assert two.value.detail == "a1.json and a2.json both name directive.json"


def test_verify_links_checks_a_parent_given_under_another_hash():
    """Bug caught: a child whose parent is given but changed (so its hash is not found)
    reported as a missing parent instead of a changed one: the file of the schema the child
    wants is checked against the hash it names."""
    edited = dict(PLAN, note="edited")
    changed = _file("plan.json", edited)
    with pytest.raises(RecordChainError) as err:
        verify_links([changed, _file("directive.json", DIRECTIVE)])
    assert err.value.field == "directive.json parents.plan"
    assert "changed after directive.json was written" in err.value.detail
    edited_sha = _sha(('{"case":{"id":"é1","schema":"tareplanner.case/1"},"input_sha256":"'
                       + CASE_SHA + '","note":"edited","schema":"tareplanner.plan/1"}'
                       ).encode("utf-8"))
    assert err.value.allowed.endswith(f"plan.json is {_short(edited_sha)}")
    # a parent of a role the chain does not know, with its schema named: the same check
    lab = {"schema": "x/1", "parents": {"lab": {"sha256": CASE_SHA,
                                                 "schema": "tareplanner.case/1"}}}
    with pytest.raises(RecordChainError) as err:
        verify_links([_file("lab.json", lab),
                      _file("case.json", {"schema": "tareplanner.case/1", "id": "e2"})])
    assert err.value.field == "lab.json parents.lab"
    assert "changed after lab.json was written" in err.value.detail


def test_read_record_file_hashes_the_bytes_and_refuses_what_is_no_record(tmp_path):
    """Bugs caught: a record file's bytes hash lost (an input file named by its bytes then
    fails), a UTF-8 byte-order mark refused, a dose folder without dose.json or a JSON
    without a schema accepted."""
    from tareplanner.errors import SchemaError
    raw = '\ufeff{"schema": "tareplanner.case/1", "id": "é1"}'.encode("utf-8")
    path = tmp_path / "case.json"
    path.write_bytes(raw)
    rec = read_record_file(path)
    assert (rec.label, rec.document, rec.schema) == (str(path), CASE, "tareplanner.case/1")
    assert rec.hashes == {CASE_SHA, _sha(raw)}
    folder = tmp_path / "dose"
    folder.mkdir()
    with pytest.raises(SchemaError) as err:
        read_record_file(folder, "--dose")
    assert (err.value.field, err.value.value, err.value.allowed) == (
        "--dose", str(folder), "a record file or a folder written by tareplanner dose")
    (folder / "dose.json").write_bytes(b'{"schema": "tareplanner.dose/1"}')
    assert read_record_file(folder).label == str(folder)
    schemas = ("tareplanner.administration/1, tareplanner.camera/1, tareplanner.case/1, "
               "tareplanner.directive/1, tareplanner.measurement/1, tareplanner.plan/1, "
               "tareplanner.response/1, tareplanner.site-limits/1, tareplanner.dose/1")
    for content in (b'[1]', b'{"schema": 3}'):
        path.write_bytes(content)
        with pytest.raises(SchemaError) as err:
            read_record_file(path, "--plan")
        assert (err.value.field, err.value.value) == (f"--plan {path}", "no schema")
        assert err.value.allowed == f"a tareplanner record (with its schema: {schemas})"
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(SchemaError) as err:
        read_record_file(path, "--plan")
    assert (err.value.field, err.value.value, err.value.allowed) == (
        "--plan", str(path), "a UTF-8 text file")
    assert err.value.detail == ("'utf-8' codec can't decode byte 0xff in position 0: "
                                "invalid start byte")
    with pytest.raises(SchemaError) as err:
        read_record_file(tmp_path / "absent.json")
    assert (err.value.field, err.value.value, err.value.allowed) == (
        "record", str(tmp_path / "absent.json"), "a readable JSON file")
    assert err.value.detail == "No such file or directory"
    path.write_bytes(b"{")
    with pytest.raises(SchemaError) as err:
        read_record_file(path, "--plan")
    assert (err.value.field, err.value.value, err.value.allowed) == ("--plan", str(path),
                                                                     "valid JSON")
