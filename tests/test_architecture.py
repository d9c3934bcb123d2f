"""The house, read from the code: what installs, and which way imports run.

Floors, bottom up: corpus, index, the shared composition (settings, pipeline), service,
eval (its benchmarks drive the service they measure), and the command line on top. A
module may import its own floor or any floor below it, never one above.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {
    "akhbar": "akhbar",
    "corpus": "akhbar.corpus",
    "index": "akhbar.index",
    "service": "akhbar.service",
    "eval": "akhbar.eval",
}

FLOORS: list[tuple[str, int]] = [  # longest prefix wins
    ("akhbar.corpus", 0),
    ("akhbar.index", 1),
    ("akhbar.settings", 2),
    ("akhbar.pipeline", 2),
    ("akhbar.service", 3),
    ("akhbar.eval", 4),
    ("akhbar.service.cli", 5),
]


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join((package, *parts))] = path
    return out


def _imports(path: Path, module: str) -> set[str]:
    """Every module name imported anywhere in the file, function bodies included."""
    names: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            names.add(stem)
            names.update(f"{stem}.{a.name}" for a in node.names)
    return names


def _floor(name: str) -> int | None:
    best: tuple[int, int] | None = None
    for prefix, floor in FLOORS:
        if (name == prefix or name.startswith(prefix + ".")) and (
            best is None or len(prefix) > best[0]
        ):
            best = (len(prefix), floor)
    return None if best is None else best[1]


MODULES = _modules()


def test_every_package_folder_installs_under_akhbar() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {name for name, path in MODULES.items() if path.name == "__init__.py"}
    assert listed == on_disk
    assert config["package-dir"] == {package: folder for folder, package in FOLDERS.items()}


@pytest.mark.parametrize("folder", ["corpus", "index", "service", "eval", "akhbar", "tests"])
def test_no_module_imports_a_bare_top_level_name(folder: str) -> None:
    # `import corpus` still resolves from a checkout's root, and would load a second copy of
    # every module beside `akhbar.corpus` (two Settings classes, two error hierarchies).
    bad = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / folder).rglob("*.py")
        for name in _imports(path, "")
        if name.split(".")[0] in {"corpus", "index", "service", "eval"}
    ]
    assert bad == []


def test_no_import_runs_up_the_house() -> None:
    upward = []
    for module, path in MODULES.items():
        own = _floor(module)
        if own is None:
            continue
        for name in _imports(path, module):
            floor = _floor(name)
            if floor is not None and floor > own:
                upward.append(f"{module} (floor {own}) imports {name} (floor {floor})")
    assert upward == []


def test_the_index_contract_depends_only_on_the_corpus_models() -> None:
    ours = {
        n
        for n in _imports(MODULES["akhbar.index.base"], "akhbar.index.base")
        if n.startswith("akhbar.")
    }
    assert {n.rsplit(".", 1)[0] if n not in MODULES else n for n in ours} <= {
        "akhbar.corpus.models"
    }


def test_the_floors_checker_sees_an_upward_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from akhbar.service.qa import QAEngine\n")
    names = _imports(probe, "akhbar.index.probe")
    assert "akhbar.service.qa" in names
    assert _floor("akhbar.service.qa") > _floor("akhbar.index.probe")  # type: ignore[operator]
