"""``tareplanner serve`` on the command line: its help says what it serves and to whom, and
without the 'web' extra it exits 2 naming the extra (nothing is started)."""

import pytest

from tareplanner.cli.main import main


def test_help_names_loopback_data_folder_and_one_session(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "127.0.0.1" in text and "--data" in text
    assert "One user session per process" in text
    assert 'pip install -e ".[web]"' in text


def test_without_the_web_extra_exits_2_naming_it(monkeypatch, tmp_path, capsys):
    import tareplanner.web
    monkeypatch.setattr(tareplanner.web, "missing_packages", lambda: ["trame-slicer"])
    assert main(["serve", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "'web' extra" in err and "trame-slicer" in err and ".[web]" in err


def test_data_folder_must_exist(monkeypatch, tmp_path, capsys):
    import tareplanner.web
    monkeypatch.setattr(tareplanner.web, "missing_packages", lambda: [])
    assert main(["serve", "--data", str(tmp_path / "missing")]) == 2
    assert "--data" in capsys.readouterr().err


def test_port_in_use_is_refused(monkeypatch, tmp_path, capsys):
    import socket

    import tareplanner.web
    monkeypatch.setattr(tareplanner.web, "missing_packages", lambda: [])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"--port: got {port}" in err and "a free port" in err
    assert main(["serve", "--port", "70000", "--data", str(tmp_path)]) == 2
