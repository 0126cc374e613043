"""The README's first lines give the install/run and test commands, and CI runs the latter."""

import re

from tests.conftest import ROOT


def readme_commands() -> list[str]:
    head = "\n".join((ROOT / "README.md").read_text().splitlines()[:6])
    return re.findall(r"`([^`]*(?:streamlit run|pytest)[^`]*)`", head)


def test_readme_opens_with_install_run_and_test_commands():
    run, test = readme_commands()
    assert run.startswith("pip install -r requirements.txt") and "streamlit run app.py" in run
    assert "requirements-dev.txt" in test and "pytest" in test


def test_ci_runs_the_readme_test_command():
    _, test = readme_commands()
    assert test in (ROOT / ".ci/run").read_text().splitlines()


def test_headless_opencv_only():
    reqs = (ROOT / "requirements.txt").read_text()
    assert "opencv-python-headless" in reqs
    assert not re.search(r"^opencv-python(?!-headless)", reqs, re.M)
