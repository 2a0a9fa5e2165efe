"""The nightly HTML report: self-contained, escaped, readable; looked at in real headless Chromium."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.support import browser
from tests.support.sample_report import HOSTILE_TABLE, sample_page
from verifier.render.html import render_html
from verifier.render.page import ReportPage
from verifier.render.text import render_text
from verifier.report import CheckResult, Report, Status, Verification

DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "report.png"


class Collector(HTMLParser):
    """Collects the page's visible text, tag names and attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Collector:
    collector = Collector()
    collector.feed(html)
    return collector


def test_report_is_self_contained_and_escaped() -> None:
    html = render_html(sample_page())
    page = parse(html)
    assert "script" not in page.tags
    assert HOSTILE_TABLE in "".join(page.text)  # shown as text, not markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    external = [value for name, value in page.attributes if name in ("src", "href") and value]
    assert external == []
    assert not re.search(r"url\(|@import|https?://(?!www\.w3\.org/2000/svg)", html)


def test_report_shows_verdict_tables_and_charts() -> None:
    html = render_html(sample_page())
    text = " ".join(" ".join(parse(html).text).split())
    assert "WARNING" in text
    assert "restores and exactly matches the snapshot: 3 tables, 1,223,051 rows" in text
    assert "1 table has changed in production since" in text
    assert "backup is 41% smaller than the previous one" in text
    assert "1,204,331" in text and "1,204,390" in text
    assert "Last 30 runs" in text
    assert html.count("<svg") == 2
    size_line = re.search(r'<polyline[^>]*points="([^"]+)"', html)
    assert size_line is not None and len(size_line.group(1).split()) == 30
    assert "eatfit24_2026-11-23_00-32-00Z" in text and "FAILED" in text


def test_failed_restore_says_so_first() -> None:
    base = sample_page().report
    report = Report(
        run_id="r",
        command="check",
        source=base.source,
        started_at=base.started_at,
        results=[CheckResult("restore", Status.CRITICAL, "pg_restore failed")],
        verification=Verification("b1", exact=True, restored=False, sandbox="local", error="pg_restore: out of disk"),
    )
    html = render_html(ReportPage(report=report))
    text = " ".join(" ".join(parse(html).text).split())
    assert "CRITICAL" in text
    assert "The backup could not be restored: pg_restore: out of disk." in text
    assert "No history yet." in text
    assert "The repository holds no backups." in text


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, chromium: str) -> Path:
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render_html(sample_page()), encoding="utf-8")
    return path


def test_browser_dom_has_the_verdict_and_no_injected_script(rendered: Path) -> None:
    dom = browser.dump_dom(rendered)
    page = parse(dom)
    text = " ".join(" ".join(page.text).split())
    assert text.count("WARNING") >= 2  # the verdict and the size_trend badge
    assert "Backup integrity report: 127.0.0.1:5432/eatfit24" in text
    assert f'public."{HOSTILE_TABLE}"' in text  # quoted as quote_ident quotes it
    assert "script" not in page.tags
    assert page.tags.count("svg") == 2
    assert page.tags.count("circle") == 90  # 30 size points + 2 x 30 duration points


def test_browser_screenshot(rendered: Path, tmp_path: Path) -> None:
    shot = browser.screenshot(rendered, tmp_path / "report.png")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1120, 1800)


def update_docs_screenshot() -> Path:
    """Renders the sample report and saves its screenshot as docs/report.png (for the README)."""
    page = DOCS_SCREENSHOT.with_suffix(".html")
    DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
    page.write_text(render_html(sample_page(hostile=False)), encoding="utf-8")
    try:
        return browser.screenshot(page, DOCS_SCREENSHOT)
    finally:
        page.unlink()


if __name__ == "__main__":
    print(update_docs_screenshot())


def test_text_report_names_the_tables_that_need_attention() -> None:
    text = render_text(sample_page(hostile=False))
    assert text.splitlines()[3].startswith("WARNING: The backup eatfit24_2026-11-26_00-32-00Z restores")
    assert "Tables: 3 compared, 1 needs attention" in text
    assert "public.coupons" in text and "public.meals" not in text
    assert "failed verification: eatfit24_2026-11-23_00-32-00Z" in text
    assert "Repository: 20 backups" in text


def test_old_report_files_beyond_report_keep_are_removed(tmp_path: Path) -> None:
    from verifier.pipeline.report_delivery import prune_reports

    for day in range(1, 6):
        for suffix in (".json", ".html"):
            (tmp_path / f"202611{day:02d}T003000Z-ab12{suffix}").write_text("{}")
    (tmp_path / "notes.txt").write_text("mine")
    removed = prune_reports(tmp_path, keep=3)
    assert sorted(path.name for path in removed) == [
        "20261101T003000Z-ab12.html",
        "20261101T003000Z-ab12.json",
        "20261102T003000Z-ab12.html",
        "20261102T003000Z-ab12.json",
    ]
    assert len(list(tmp_path.glob("*.json"))) == 3
    assert (tmp_path / "notes.txt").exists()
