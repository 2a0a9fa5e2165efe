"""Reads a rendered report the way a reader sees it: the visible text of each row of one of its tables."""

from __future__ import annotations

from html.parser import HTMLParser


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible_text(html: str) -> str:
    """Returns the text of `html` a browser shows, whitespace collapsed (entities decoded)."""
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def table_rows(html: str, table_id: str) -> list[str]:
    """Returns the visible text of each body row of the table with id `table_id` (header row excluded).
    Raises ValueError when the page has no such table."""
    start = html.index(f'<table id="{table_id}">')
    section = html[start : html.index("</table>", start)]
    return [visible_text("<tr" + row) for row in section.split("<tr")[2:]]
