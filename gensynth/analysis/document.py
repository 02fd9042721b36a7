"""The report as a list of blocks, written twice: ``report.md`` and a self-contained ``index.html``.

``gensynth.analysis.report`` builds the blocks (headings, paragraphs, figures, tables with
the query that produced each, code); ``markdown`` and ``html`` write them. The HTML page
needs nothing outside itself: figures are embedded as ``data:`` URIs, styles are inline,
there is no script, and every table stands beside the SQL file that produced it (with the
``SET VARIABLE`` lines that rerun it in ``gensynth shell``). Paragraph text is written in a
small Markdown subset (``code``, **bold**, _emphasis_, [links](target)) that both renderers
understand.
"""

from __future__ import annotations

import base64
import html as _html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from gensynth.analysis.report_data import Query


@dataclass
class Heading:
    level: int
    text: str

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.text.lower()).strip("-")


@dataclass
class Text:
    text: str  # one paragraph, Markdown subset


@dataclass
class Figure:
    name: str  # file name beside the report, e.g. 'scaling.png'
    alt: str
    queries: list[Query] = field(default_factory=list)  # the sql/report/ files its data came from


@dataclass
class Table:
    headers: list[str]
    rows: list[list]
    empty: str  # said instead of the table when there are no rows
    query: Query | None = None  # the sql/report/ file that produced it
    show_query_when_empty: bool = False


@dataclass
class Code:
    text: str
    lang: str = "sh"


Block = Heading | Text | Figure | Table | Code


def fmt(v, digits: int = 3) -> str:
    """A cell as the report shows it."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.2e}"
        return f"{v:.{digits}f}"
    return str(v)


# ------------------------------------------------------------------------ markdown


def _md_table(t: Table) -> str:
    if not t.rows:
        return f"_{t.empty}_\n"
    out = ["| " + " | ".join(t.headers) + " |", "| " + " | ".join("---" for _ in t.headers) + " |"]
    out += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in t.rows]
    return "\n".join(out) + "\n"


def _sql_ref(q: Query, out: Path | None) -> str:
    """The query's file as a Markdown link relative to the report's directory ``out`` (where
    the file is on disk: the source tree or the installed package), else its name alone.
    The SQL text is always printed beside it, so the report stands without the link."""
    import os

    from gensynth.warehouse import SQL_DIR

    target = Path(SQL_DIR) / q.path.removeprefix("sql/")
    if out is None or not target.is_file():
        return f"`{q.path}`"
    return f"[`{q.path}`]({Path(os.path.relpath(target.resolve(), Path(out).resolve())).as_posix()})"


def _md_query(q: Query, out: Path | None = None) -> str:
    return f"Query: {_sql_ref(q, out)} (rerun in `gensynth shell`):\n\n```sql\n{q.shell_text()}\n```\n"


def markdown(blocks: list[Block], out: Path | None = None) -> str:
    """report.md: GitHub-flavoured Markdown, figures as relative image links; SQL files
    linked relative to ``out``, the directory report.md is written to (review B12: the
    links were ../../sql/..., dead anywhere but reports/<name>/ of the repository)."""
    lines: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            lines += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Text):
            lines += [b.text, ""]
        elif isinstance(b, Figure):
            lines += [f"![{b.alt}]({b.name})", ""]
            if b.queries:
                lines += ["Data: " + ", ".join(_sql_ref(q, out) for q in b.queries) + ".", ""]
        elif isinstance(b, Table):
            lines += [_md_table(b)]
            if b.query is not None and (b.rows or b.show_query_when_empty):
                lines += [_md_query(b.query, out)]
            lines += [""]
        elif isinstance(b, Code):
            lines += [f"```{b.lang}", b.text, "```", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- html


def inline(text: str) -> str:
    """The Markdown subset of paragraphs as HTML (escaped first)."""
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) >= 2:
            out.append(f"<code>{_html.escape(part[1:-1])}</code>")
            continue
        s = _html.escape(part)
        s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
        s = re.sub(r"(?<![\w])_(.+?)_(?![\w])", r"<em>\1</em>", s)
        s = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1", s)  # links to repository files: their text (no dead links)
        out.append(s)
    return "".join(out)


STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0; }
main { max-width: 1500px; margin: 0 auto; padding: 0 24px 48px 280px; }
nav { position: fixed; top: 0; left: 0; bottom: 0; width: 240px; overflow-y: auto; padding: 20px 16px;
      background: #f6f7f9; border-right: 1px solid #e2e4e8; font-size: 14px; }
nav ol { padding-left: 18px; margin: 6px 0; } nav a { color: #1f4e8c; text-decoration: none; }
nav a:hover { text-decoration: underline; } nav li.h3 { list-style: circle; margin-left: 14px; font-size: 13px; }
h1 { margin-top: 24px; } h2 { margin-top: 40px; border-bottom: 1px solid #e2e4e8; padding-bottom: 4px; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f1f3f5; padding: 0 3px; }
pre { font: 12px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f6f8fa;
      border: 1px solid #e2e4e8; padding: 10px; overflow: auto; max-height: 420px; margin: 0; }
figure { margin: 16px 0 24px; } figure img { max-width: 100%; height: auto; border: 1px solid #e2e4e8; }
figcaption { font-size: 13px; color: #555; margin-top: 6px; }
.pair { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 16px; align-items: start; margin: 12px 0 24px; }
.pair .sql h4 { margin: 0 0 4px; font-size: 13px; font-weight: 600; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #dfe2e6; padding: 3px 8px; text-align: left; white-space: nowrap; vertical-align: top; }
th { background: #f1f3f5; } td.num { text-align: right; } td.long { white-space: normal; min-width: 18em; }
tbody tr:nth-child(even) { background: #fafbfc; }
details summary { cursor: pointer; font-size: 13px; color: #1f4e8c; }
.empty { color: #666; font-style: italic; }
"""


def _html_table(t: Table) -> str:
    if not t.rows:
        return f'<p class="empty">{inline(t.empty)}</p>'
    head = "".join(f"<th>{_html.escape(h)}</th>" for h in t.headers)
    body = "".join("<tr>" + "".join(_html_cell(v) for v in r) + "</tr>" for r in t.rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _html_cell(v) -> str:
    text = fmt(v)
    kind = "num" if isinstance(v, (int, float)) and not isinstance(v, bool) else "long" if len(text) > 40 else ""
    return f'<td class="{kind}">{inline(text)}</td>' if kind else f"<td>{inline(text)}</td>"


def _html_query(q: Query) -> str:
    return (f'<div class="sql"><h4>{_html.escape(q.path)} (rerun in <code>gensynth shell</code>)</h4>'
            f"<pre>{_html.escape(q.shell_text())}</pre></div>")


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def html(blocks: list[Block], out: Path, title: str) -> str:
    """index.html: one file, figures embedded, a contents list, each table beside its SQL."""
    sections = [b for b in blocks if isinstance(b, Heading) and b.level in (2, 3)]
    nav = "".join(f'<li class="h{h.level}"><a href="#{h.anchor}">{inline(h.text)}</a></li>' for h in sections)
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f'<h{b.level} id="{b.anchor}">{inline(b.text)}</h{b.level}>')
        elif isinstance(b, Text):
            body.append(f"<p>{inline(b.text)}</p>")
        elif isinstance(b, Figure):
            sql = "".join(f"<details><summary>{_html.escape(q.path)}</summary>{_html_query(q)}</details>"
                          for q in b.queries)
            body.append(f'<figure><img src="{_data_uri(out / b.name)}" alt="{_html.escape(b.alt)}">'
                        f"<figcaption>{_html.escape(b.name)}" + (" — data: " + ", ".join(
                            f"<code>{_html.escape(q.path)}</code>" for q in b.queries) if b.queries else "")
                        + f"{sql}</figcaption></figure>")
        elif isinstance(b, Table):
            if b.query is not None and (b.rows or b.show_query_when_empty):
                body.append(f'<div class="pair"><div>{_html_table(b)}</div>{_html_query(b.query)}</div>')
            else:
                body.append(_html_table(b))
        elif isinstance(b, Code):
            body.append(f"<pre>{_html.escape(b.text)}</pre>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{_html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>"
            f"<nav><strong>Contents</strong><ol>{nav}</ol></nav><main>{''.join(body)}</main></body></html>\n")
