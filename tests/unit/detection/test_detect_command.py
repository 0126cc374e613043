"""The detection command line and logging a benchmark to W&B."""

import json

import pytest

from lib import runs
from lib.detection import benchmark
from lib.detection import detect_command as detect
from lib.detection.detections import Detections
from lib.detection.metrics import coco
from tests import reference
from tests.helpers import gt_results, write_coco


def test_cli_evaluate_prints_json_metrics(coco, tmp_path, capsys):
    preds = tmp_path / "results.json"
    preds.write_text(json.dumps(gt_results(coco, 0.1, 0.2)))
    assert detect.main(["evaluate", "--images", str(coco.images_dir), "--annotations",
                        str(coco.annotations_path), "--predictions", str(preds), "--json"]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(last) == ["AP", "AP50", "AP75", "APs", "APm", "APl",
                          "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
    ref = reference.pycocotools(coco, gt_results(coco, 0.1, 0.2))
    assert all(abs(last[k] - ref[k]) <= 1e-6 for k in last)


def test_cli_run_without_weights_says_how_to_fetch(coco, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = detect.main(["run", "--model", "fasterrcnn_resnet50_fpn", "--images",
                        str(coco.images_dir), "--annotations", str(coco.annotations_path),
                        "--out", str(tmp_path / "out.json"), "--subset", "2"])
    assert code == 2
    assert "python -m lib.weights fetch 'fasterrcnn_resnet50_fpn'" in capsys.readouterr().err


@pytest.mark.slow
def test_benchmark_logged_to_wandb_is_readable_by_runs_page(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("LENS_CACHE", str(tmp_path / "cache"))
    ds = write_coco(tmp_path / "data", [(10, 10, 30, 30, 1)])
    stats = coco.evaluate(ds, {1: Detections(1, [[10, 10, 40, 40]], [0.9], [1])}).stats
    benchmark.log_benchmark("my-yolo", ds, 5, 3, 0.5, stats, {"images_per_s": 12.5},
                            out_dir=tmp_path / "wb", models=["demo-fasterrcnn", "my-yolo"])
    infos, problems = runs.load_offline(tmp_path / "wb")
    assert not problems and len(infos) == 1
    info = infos[0]
    assert info.config["model"] == "my-yolo" and info.config["score_threshold"] == 0.5
    assert info.summary["AP50"] == pytest.approx(1.0) and info.summary["images_per_s"] == 12.5
    # its row links back to the Detection page on the same data and models
    from urllib.parse import parse_qs, urlsplit
    link = urlsplit(runs.detection_link(info))
    query = {k: v[0] for k, v in parse_qs(link.query).items()}
    assert link.path == "detection" and query == {
        "data": "path", "ann": str(ds.annotations_path), "img": str(ds.images_dir),
        "models": "my-yolo,demo-fasterrcnn", "subset": "5", "seed": "3"}   # map_by: default


def test_cli_evaluate_bootstrap_adds_intervals(coco, tmp_path, capsys):
    preds = tmp_path / "results.json"
    preds.write_text(json.dumps(gt_results(coco, 0.05, 0.3)))
    args = ["evaluate", "--images", str(coco.images_dir), "--annotations",
            str(coco.annotations_path), "--predictions", str(preds), "--json"]
    assert detect.main(args + ["--bootstrap", "200", "--seed", "3"]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("AP", "AP50", "AP75", "AR100"):
        low, high = last[f"{key}_ci"]
        assert low <= last[key] <= high and low < high
    assert detect.main(args + ["--bootstrap", "200", "--seed", "3"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == last   # seeded
    for bad in ("0", "1000000000"):
        assert detect.main(args + ["--bootstrap", bad]) == 2
        assert "from 1 to 10,000" in capsys.readouterr().err
