"""The page every HTML report shares: one self-contained file, styles inline, no scripts, no network."""

from __future__ import annotations

import datetime as dt
from html import escape

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem auto; max-width: 1240px; color: #1f1f1f; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5rem 0; } td, th { padding: .2rem .6rem; text-align: left; }
th { background: #f2f2f2; } tr:nth-child(even) td { background: #fafafa; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; display: block; margin: .5rem 0; }
.meta { color: #555; } .error { color: #b2182b; font-weight: 600; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; }
.synthetic { background: #fff4d6; padding: .4rem .7rem; border-left: 4px solid #e6a700; }
"""


def page(title: str, body: str) -> str:
    """A whole HTML document; ``body`` is trusted markup built with :func:`escape`."""
    made = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        f"style-src 'unsafe-inline'\"><title>{escape(title)}</title><style>{STYLE}</style></head>\n"
        f'<body><h1>{escape(title)}</h1><p class="meta">generated {made} by dfstream</p>\n{body}\n'
        f"</body></html>\n"
    )


def table(header: list[str], rows: list[list], numeric: set[int] = frozenset(), escaped: set[int] = frozenset()) -> str:
    """An HTML table; cells are escaped unless their column is in ``escaped`` (already markup)."""

    def cell(i, v, tag):
        text = v if i in escaped else escape("" if v is None else str(v))
        cls = ' class="num"' if i in numeric else ""
        return f"<{tag}{cls}>{text}</{tag}>"

    head = "".join(cell(i, h, "th") for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell(i, v, "td") for i, v in enumerate(row)) + "</tr>\n" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>"


def img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{escape(alt)}">'


def fmt(v, digits: int = 3) -> str:
    """A number for a table cell (``n/a`` for None)."""
    return "n/a" if v is None else f"{v:.{digits}f}"
