"""The HTML report: self-contained (plotly.js inlined once, nothing fetched), visitor text
escaped, every table under its id."""

import re

import pandas as pd

from lib import plots
from lib.core import html_report


def test_report_is_self_contained_and_escaped():
    rows = [{"model": "<script>alert(1)</script>", "AP": 0.5, "AP low": 0.4, "AP high": 0.6}]
    sections = [html_report.Section("Intervals", [("intervals", pd.DataFrame(rows))],
                                    [plots.interval_whiskers(rows, ["AP"])] * 2,
                                    ["note <b>bold</b>"])]
    page = html_report.render("Report <i>", "sub", sections)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "note &lt;b&gt;bold&lt;/b&gt;" in page
    assert page.count("plotly.js v") == 1                      # the library, once, inline
    assert not re.search(r"<script[^>]+src=", page)            # nothing loaded from outside
    assert 'id="intervals"' in page and "0.5000" in page
