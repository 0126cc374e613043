"""Every runs test reads and caches in its own folder."""


import pytest


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LENS_CACHE", str(tmp_path / "cache"))
