"""Links between pages: what one page writes, the other reads back unchanged, through a real
URL (urllib's parser, as a browser's address bar would hand it over); hostile links fall back
to defaults field by field."""

from urllib.parse import parse_qs, urlsplit

import pytest

from lib.core.links import DetectionLink, RunsLink

LINKS = [
    DetectionLink(),
    DetectionLink(data="demo", models=("demo-fasterrcnn", "demo-conditional-detr")),
    DetectionLink(data="path", ann="<shared>/assets/data/c o&c=o.json", img="checkpoints/x y",
                  models=("demo-fasterrcnn", "my yolo"), subset=25, seed=3, map_by="id"),
    RunsLink(),
    RunsLink(source="cloud", entity="team", project="p/q", runs=("a", "b c"),
             metrics="train/*", smooth=0.6),
    RunsLink(path="checkpoints", brush='{"lr": [0.001, 0.1]}', smooth=0.99),
]


def _through_a_url(link):
    parts = urlsplit("http://host/" + link.url())
    return parts.path.strip("/"), parse_qs(parts.query, keep_blank_values=True)


@pytest.mark.parametrize("link", LINKS, ids=lambda k: k.url()[:40])
def test_a_link_round_trips_through_its_url(link):
    page, query = _through_a_url(link)
    assert page == link.PAGE
    assert type(link).parse(query) == link


def test_a_link_writes_only_what_differs_from_the_page_s_defaults():
    assert DetectionLink().url() == "detection"
    assert RunsLink(source="local", metrics="val/*").url() == "runs"
    assert DetectionLink(data="demo", seed=4).query() == {"data": "demo", "seed": "4"}


def test_a_hostile_link_falls_back_to_defaults_field_by_field():
    link = DetectionLink.parse({"data": "upload", "subset": "1e12", "seed": "-5", "map_by": "x",
                                "models": ",,a,,b,", "ann": "x" * 10_000, "unknown": "1"})
    assert link.data == "" and link.map_by == "name"          # not a choice: default
    assert link.subset == 100_000 and link.seed == 0          # clamped
    assert link.models == ("a", "b") and len(link.ann) == 2000
    for bad in ("nan", "inf", "ten", ""):
        assert RunsLink.parse({"smooth": bad}).smooth in (0.0, 0.99)
    assert RunsLink.parse({"smooth": "nan"}).smooth == 0.0
