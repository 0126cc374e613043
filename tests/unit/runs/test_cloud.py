"""W&B cloud runs through a fake API: back-off, errors sorted by type and status, filters."""


import pytest

from lib import runs
from lib.core.errors import CloudError, InputError
from lib.runs import cloud
from tests.helpers import http_error


class FakeRun:
    def __init__(self, i):
        self.id, self.name, self.state = f"id{i}", f"r{i}", "finished"
        self.tags, self.notes = [], ""
        self.created_at = "2026-01-01T00:00:00"
        self.config = {"lr": 0.1 * i, "_private": 1}
        self.summary = {"acc": 0.5 + i / 10, "_runtime": 10.0 * i, "_wandb": {"x": 1}}


class FakeApi:
    def __init__(self, fail_times=0, error=None):
        self.calls, self.fail_times = 0, fail_times
        self.error = error if error is not None else http_error(429)

    def runs(self, path, filters=None, per_page=100):
        self.calls += 1
        if self.calls <= self.fail_times:
            raise self.error
        return [FakeRun(i) for i in range(3)]


def test_cloud_runs_with_backoff(monkeypatch):
    slept = []
    monkeypatch.setattr(cloud.time, "sleep", slept.append)
    api = FakeApi(fail_times=2)
    progress = []
    infos = runs.load_cloud("team", "proj", api=api,
                            progress=lambda p: progress.append((p.done, p.total)))
    assert [r.name for r in infos] == ["r0", "r1", "r2"] and api.calls == 3
    assert slept == [1.0, 2.0] and progress[-1] == (3, 3)
    assert infos[2].config == {"lr": pytest.approx(0.2)} and infos[2].runtime == 20.0
    assert infos[0].source == "cloud" and infos[0].path == "team/proj/id0"


def _errors():
    import requests
    import wandb.errors
    return {
        "401": (http_error(401), "refused the API key"),
        "403": (http_error(403), "refused the API key"),
        "auth": (wandb.errors.AuthenticationError("bad key"), "refused the API key"),
        "404": (http_error(404), "has no project 'team/proj'"),
        "missing project": (ValueError("Could not find project proj"),
                            "has no project 'team/proj'"),
        "no network": (wandb.errors.CommError("down", requests.ConnectionError("resolve")),
                       "no network"),
        "still busy": (http_error(503), "busy or rate-limiting"),
        "other": (KeyError("x"), r"W&B request failed \(KeyError\)"),
    }


@pytest.mark.parametrize("case", list(_errors()))
def test_cloud_errors_are_sorted_by_type_and_status(case, monkeypatch):
    """Classified by the client's exception types and status codes (their texts here say
    nothing), raised as one `CloudError`; only busy answers are retried."""
    error, message = _errors()[case]
    monkeypatch.setattr(cloud.time, "sleep", lambda s: None)
    api = FakeApi(fail_times=9, error=error)
    with pytest.raises(CloudError, match=message):
        runs.load_cloud("team", "proj", api=api)
    assert api.calls == (5 if case == "still busy" else 1)


@pytest.mark.parametrize("text,expect", [
    ("", None), ('{"state": "finished"}', {"state": "finished"}),
])
def test_run_filters(text, expect):
    assert runs.parse_filters(text) == expect


@pytest.mark.parametrize("text", ["[1]", "{bad", '"x"'])
def test_run_filters_that_are_not_an_object(text):
    with pytest.raises(InputError, match="Filters must be a JSON object"):
        runs.parse_filters(text)


def test_the_key_is_the_typed_one_else_the_environment_else_the_secrets(monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert runs.api_key("", {}) is None
    assert runs.api_key("", {"WANDB_API_KEY": "s"}) == "s"
    monkeypatch.setenv("WANDB_API_KEY", "e")
    assert runs.api_key("", {"WANDB_API_KEY": "s"}) == "e"
    assert runs.api_key("t", {"WANDB_API_KEY": "s"}) == "t"
