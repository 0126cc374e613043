"""A page's view as one self-contained HTML file to hand over (the detection benchmark, a run
comparison): tables and Plotly figures (plotly.js inlined once), opening offline in any
browser, for people who will not run Lens.

Pages hand over the very tables and figures they show, so every number in the file is the
page's. Text from visitors (model names, dataset fields) is escaped.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import pandas as pd

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .9rem; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
p.note { color: #555; font-size: .9rem; max-width: 60rem; }
"""


@dataclass
class Section:
    title: str
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)   # (id, table)
    figures: list = field(default_factory=list)                           # Plotly figures
    notes: list[str] = field(default_factory=list)


def render(title: str, subtitle: str, sections: list[Section]) -> str:
    """The HTML document: sections in order, each with notes, tables and figures."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p class='note'>{html.escape(subtitle)}</p>"]
    plotly_included = False
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        parts += [f"<p class='note'>{html.escape(n)}</p>" for n in s.notes]
        for table_id, table in s.tables:
            parts.append(table.to_html(index=False, table_id=table_id, escape=True,
                                       float_format=lambda v: f"{v:.4f}", na_rep="n/a",
                                       border=0))
        for fig in s.figures:
            parts.append(fig.to_html(full_html=False,
                                     include_plotlyjs=not plotly_included,
                                     config={"displaylogo": False}))
            plotly_included = True
    parts.append("</body></html>")
    return "\n".join(parts)
