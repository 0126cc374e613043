"""The layout the README promises: imports point one way between lib's packages, no module
imports itself in a cycle, no file does several jobs (over ~400 lines), and the README's layout
section names every package there is."""

import ast
import re
from pathlib import Path

from tests.conftest import ROOT

LIB = ROOT / "lib"
#: package -> the packages it may import. Shared concerns first, then the capabilities
#: (which never import each other), then what sits on top of them.
ALLOWED = {
    "core": set(),
    "media": {"core"},
    "models": {"core", "media"},
    "serving": {"core", "models"},
    "classification": {"core", "media", "models", "serving"},
    "segmentation": {"core", "media", "models", "serving"},
    "detection": {"core", "media", "models", "serving"},
    "runs": {"core", "media"},          # media: logged images through the one image intake
    "demo": {"core", "media"},
    "training": {"core", "media", "models", "serving", "demo", "classification",
                 "segmentation", "detection", "runs"},
    "ui": {"core", "media", "models", "serving", "demo"},
    "plots": set(),
}
#: the command lines that keep their documented names, each forwarding to its package
FORWARDERS = {"detect": "detection", "track": "segmentation", "train": "training", "synth": "demo",
              "weights": "models"}
#: files allowed more lines (none today: the .wandb scanner was split by what it reads)
LONG_OK: set = set()


def modules() -> dict[str, Path]:
    found = {}
    for path in LIB.rglob("*.py"):
        if "frontend" in path.parts:
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(p for p in parts if p != "__init__")] = path
    return found


def imports(path: Path) -> set[str]:
    """Every lib module `path` imports, at any depth (`from lib.x import y` names module
    lib.x.y when that is a module, else lib.x)."""
    mods = modules()
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lib"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in mods else node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("lib.")}
    return out


def package(module: str) -> str:
    return module.split(".")[1]


def test_imports_point_one_way_between_packages():
    wrong = []
    for module, path in modules().items():
        if module == "lib":
            continue
        mine = package(module)
        allowed = ALLOWED.get(mine, {FORWARDERS.get(mine)} if mine in FORWARDERS else None)
        assert allowed is not None, f"{module}: a package the layout does not know"
        for target in imports(path):
            if target != "lib" and package(target) not in allowed | {mine}:
                wrong.append(f"{module} -> {target}")
    assert not wrong, wrong


def test_no_import_cycle():
    graph = {m: {t for t in imports(p) if t in modules() and t != m}
             for m, p in modules().items()}
    seen, on_path, cycles = set(), [], []

    def visit(node):
        if node in on_path:
            cycles.append(on_path[on_path.index(node):] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        on_path.append(node)
        for nxt in sorted(graph[node]):
            visit(nxt)
        on_path.pop()
    for m in sorted(graph):
        visit(m)
    # a package's interface module importing its own modules is not a cycle unless they
    # import it back
    assert not cycles, cycles[:3]


def test_no_file_does_several_jobs():
    files = [*modules().values(), *(ROOT / "pages").glob("*.py")]
    long = {str(p.relative_to(ROOT)): n for p in files
            if p not in LONG_OK and (n := len(p.read_text().splitlines())) > 420}
    assert not long, long


def test_the_readme_is_short_and_its_layout_names_every_package():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    layout = text[text.index("## Layout"):]
    layout = layout[:layout.index("\n## ", 5)]
    packages = {p.name for p in LIB.iterdir() if (p / "__init__.py").is_file()}
    named = set(re.findall(r"lib/(\w+)/", layout))
    assert named == packages, (named ^ packages)


def test_every_package_docstring_names_its_modules():
    """A package's `__init__` says what each of its modules is for: none left out."""
    stale = {}
    for init in LIB.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        missing = {p.stem for p in init.parent.glob("*.py") if p.stem != "__init__"
                   and f"`{p.stem}`" not in doc}
        if missing:
            stale[init.parent.name] = sorted(missing)
    assert not stale, stale


def test_every_module_that_registers_models_is_imported_by_its_package():
    """`lib.models.build.discover` finds builders and model names by importing every package
    of lib (no list of modules): a module that registers (`@builder(`, `known(`) must be
    imported by its package's `__init__`, or its models are missing until something else
    imports it."""
    unseen = []
    for name, path in modules().items():
        text = path.read_text()
        if name.startswith("lib.models") or not ("@builder(" in text or ".known(" in text):
            continue
        package, module = name.rsplit(".", 1)
        if module not in imports(modules()[package]) and name not in imports(modules()[package]):
            unseen.append(name)
    assert not unseen, unseen
    assert "BUILDER_MODULES" not in (LIB / "models" / "build.py").read_text()


def test_pages_are_setup_views_and_dispatch_only():
    """A page module holds imports, constants (UPPER_CASE), functions and classes; the only
    calls at its top level are `ui.page_setup()`, `main()` and the first paint (`st.title`,
    `st.write`, which Home draws before its heavy imports)."""
    allowed_calls = {"ui.page_setup", "main", "st.title", "st.write"}
    found = []
    for path in sorted((ROOT / "pages").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)):
                continue
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                continue                                            # the docstring
            if isinstance(node, ast.Assign) and all(
                    isinstance(t, (ast.Name, ast.Tuple)) and ast.unparse(t).isupper()
                    for t in node.targets):
                continue
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and \
                    ast.unparse(node.value.func) in allowed_calls:
                continue
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)[:60]}")
    assert not found, found
