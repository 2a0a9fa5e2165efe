"""Three nights of `verifier run` against real PostgreSQL, then what a user looks at in the morning:
`verifier history`, `verifier list`, `verifier report`, the HTML file in reports/, the e-mail, and the
trend check that notices a truncated table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import SourceDatabase
from tests.support.mailbox import Mailbox
from verifier.cli.main import main


def run(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(arguments)
    return code, capsys.readouterr().out


def test_three_nights_then_the_morning_after(
    source_db: SourceDatabase, tmp_path: Path, mailbox: tuple[Mailbox, int], capsys: pytest.CaptureFixture[str]
) -> None:
    box, port = mailbox
    repository = tmp_path / "repo"
    data = source_db.config(repository).model_dump(mode="json", by_alias=True, exclude_none=True)
    data["report"] = {
        "email": {"to": ["dba@example.org"], "from": "backups@example.org", "smtp_host": "127.0.0.1",
                  "smtp_port": port, "security": "none"},
    }  # fmt: skip
    data["schedule"] = {"timezone": "Europe/Moscow"}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    base = ["--config", str(config)]

    # night 1 and 2: all good
    for night in (1, 2):
        code, out = run(["run", "--json", *base], capsys)
        report = json.loads(out)
        assert code == 0, [(r["name"], r["summary"]) for r in report["results"] if r["status"] != "OK"]
        names = {result["name"]: result for result in report["results"]}
        assert names["retention"]["summary"] == f"deleted 0 backups, kept {night}"
        assert names["email"]["summary"] == "report e-mailed to dba@example.org"
        if night == 2:
            assert names["size_trend"]["status"] == "OK"
            assert names["row_trend"]["status"] == "OK"

    # night 3: somebody truncated a table during the day
    source_db.execute('TRUNCATE "Sales"."OrderLines"')
    code, out = run(["run", "--json", *base], capsys)
    report = json.loads(out)
    row_trend = next(result for result in report["results"] if result["name"] == "row_trend")
    assert code == 1 and row_trend["status"] == "WARNING"
    assert '"Sales"."OrderLines": 500 → 0 rows (-100%)' in row_trend["details"]  # quoted as quote_ident quotes it

    # the morning after: history, list, report
    code, out = run(["history", *base], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["run", "started", "command", "status"]
    assert [line.split()[5] for line in lines[1:]] == ["WARNING", "OK", "OK"]  # after the id, date, time, zone, command
    assert lines[1].startswith(report["run_id"]) and "MSK" in lines[1]

    code, out = run(["history", "--json", "--last", "2", *base], capsys)
    runs = json.loads(out)
    assert len(runs) == 2 and runs[0]["status"] == "WARNING" and runs[0]["verify_ok"] is True

    code, out = run(["list", "--json", *base], capsys)
    backups = json.loads(out)
    assert len(backups) == 3
    assert all(backup["verification"] == "OK" and backup["manifest"] for backup in backups)

    code, out = run(["report", *base], capsys)
    assert code == 0  # the report was produced; the night's WARNING is in it
    assert "WARNING: The backup" in out and '"Sales"."OrderLines"' in out

    html_file = tmp_path / "last-night.html"
    code, _ = run(["report", "--format", "html", "--output", str(html_file), *base], capsys)
    assert code == 0
    html = html_file.read_text()
    assert "Backup integrity report" in html and html.count("<svg") == 2

    code, out = run(["report", "--format", "json", *base], capsys)
    assert json.loads(out)["run_id"] == report["run_id"]

    written = sorted((repository / "reports").glob("*.html"))
    assert len(written) == 3
    assert "500 → 0 rows" in written[-1].read_text()

    assert [message["Subject"].split("]")[0] for message in box.messages] == ["[OK", "[OK", "[WARNING"]
    assert box.messages[-1].get_content_type() == "multipart/alternative"


def test_report_without_history_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"source: {{dbname: x}}\nrepository: {{path: {tmp_path / 'repo'}}}\n")
    (tmp_path / "repo").mkdir(mode=0o700)  # a repository with no run yet (a missing one is another message)
    assert main(["report", "--config", str(config)]) == 3
    assert "no run in the history" in capsys.readouterr().err
