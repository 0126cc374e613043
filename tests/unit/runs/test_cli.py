"""python -m lib.runs export."""

import json

import pandas as pd

from lib.runs import __main__ as runs_cli


def test_export_cli_json_and_csv(project, capsys, tmp_path):
    assert runs_cli.main(["export", str(project), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    alpha = next(r for r in rows if r["name"] == "alpha")
    assert alpha["config.model.depth"] == 2 and alpha["summary.best"] == 0.5
    assert set(alpha) >= {"id", "name", "project", "state", "tags", "created", "runtime"}
    out = tmp_path / "runs.csv"
    assert runs_cli.main(["export", str(project), "--format", "csv", "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    assert len(frame) == 3 and "config.lr" in frame.columns
