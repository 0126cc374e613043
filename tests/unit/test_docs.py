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


def test_settings_table_matches_the_settings_module():
    from lib.core.settings import SETTINGS
    table = (ROOT / "docs" / "settings.md").read_text()
    rows = {m[1]: m[2] for m in re.finditer(r"^\| `(LENS_\w+)` \| ([^|]*) \|", table, re.M)}
    assert set(rows) == set(SETTINGS)
    for env, setting in SETTINGS.items():
        if setting.default.isdigit():
            assert rows[env].strip() == setting.default, env


def test_only_the_settings_module_reads_lens_variables():
    """Every module under lib/ and pages/, in every subfolder (a walk, not one folder)."""
    modules = [p for folder in ("lib", "pages") for p in (ROOT / folder).rglob("*.py")]
    assert len(modules) > 60 and ROOT / "lib" / "core" / "settings.py" in modules
    offenders = [str(p.relative_to(ROOT)) for p in modules
                 if p != ROOT / "lib" / "core" / "settings.py"
                 and re.search(r"environ[^\n]*LENS_|getenv\([^)]*LENS_", p.read_text())]
    assert not offenders, offenders


def test_the_architecture_table_states_the_layout_test_s_import_rules():
    """docs/architecture.md quotes the import rules; tests/unit/test_layout.py enforces them."""
    from tests.unit.test_layout import ALLOWED
    text = (ROOT / "docs" / "architecture.md").read_text()
    rows = re.findall(r"^\| `lib/(\w+)(?:\.py)?` \|[^|]*\| ([^|]*) \|$", text, re.M)
    stated = {name: {p.strip() for p in allowed.split(",")} - {"nothing"}
              for name, allowed in rows}
    assert stated == ALLOWED
