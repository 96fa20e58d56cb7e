"""Replay: a plan record recomputes to itself; any change is reported (EURATOM art. 56)."""

import json

from tareplanner.cli.main import main


def test_replay_reproduces_and_detects_changes(base_case, write_case, tmp_path, capsys):
    site = tmp_path / "site.json"
    site.write_text(json.dumps({"schema": "tareplanner.site-limits/1", "site": "Test",
                                "products": {"therasphere": {"normal_liver_gy": 90}}}))
    base_case["positions"][0]["goal"] = {"maximum": True}
    record_path = tmp_path / "plan.json"
    assert main(["plan", str(write_case(base_case)), "--site-limits", str(site),
                 "-o", str(record_path)]) == 0
    capsys.readouterr()
    assert main(["replay", str(record_path)]) == 0
    assert "reproduced exactly" in capsys.readouterr().out

    record = json.loads(record_path.read_text())
    record["positions"][0]["activity_gbq"] *= 1.01        # a tampered result
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(record))
    assert main(["replay", str(tampered), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert [d["field"] for d in result["differences"]] == ["positions[0].activity_gbq"]

    record = json.loads(record_path.read_text())
    record["case"]["lung_shunt_fraction"] = 0.07          # a changed input
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(record))
    assert main(["replay", str(changed), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["input_changed"] is True


def test_replay_refuses_other_documents(base_case, write_case, capsys):
    assert main(["replay", str(write_case(base_case))]) == 2
    assert "record.schema" in capsys.readouterr().err
