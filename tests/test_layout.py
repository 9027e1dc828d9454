"""The layout's rules (README, "Layout"), checked on the source: a rule a test does not hold
is a rule the next change breaks."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from integration.config import variables

ROOT = Path(__file__).resolve().parent.parent
DOMAINS = ("accounts", "files", "jobs", "redis", "runpod", "surfaces", "webhooks")
BASE = ("config", "errors", "logs", "metrics")
MAX_LINES = 330  # "about 300"


def _modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path, runtime_only: bool = True) -> set[str]:
    """Modules `path` imports (`from x import y` counts `x` and `x.y`), outside `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text())
    skipped = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped |= {id(n) for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_every_setting_is_in_the_readme_table():
    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `")]
    listed = {name for row in rows for name in re.findall(r"`([A-Z_]+)`", row.split("|")[1])}
    missing = [v.name for v in variables().values() if v.name not in listed]
    assert not missing, f"settings not in the README's variable table: {missing}"


def test_only_the_http_layer_imports_flask():
    offenders = [
        _name(path)
        for path in _modules("integration")
        if "integration/api" not in path.as_posix()
        and any(m.split(".")[0] in ("flask", "werkzeug", "flask_sock") for m in _imports(path))
    ]
    assert not offenders, f"below integration/api, these import Flask: {offenders}"


def test_views_do_not_import_other_views():
    views = {_name(p) for p in _modules("integration/api") if "Blueprint(" in p.read_text()}
    callers = [p for p in _modules("integration/api") if p.name != "__init__.py"]  # the package mounts them
    offenders = {_name(p): sorted(_imports(p) & views) for p in callers if _imports(p) & views}
    assert not offenders, offenders


def test_imports_go_one_way():
    """api and workers -> domains -> base; a domain never reaches up into the HTTP layer or the workers."""
    offenders = {}
    for path in _modules(*(f"integration/{d}" for d in DOMAINS)):
        up = sorted(m for m in _imports(path) if m.startswith(("integration.api", "workers")) or m == "integration.resources")
        if up:
            offenders[_name(path)] = up
    for name in BASE:
        path = ROOT / "integration" / f"{name}.py"
        down = sorted(m for m in _imports(path) if m.startswith("integration.") and m.split(".")[1] not in BASE)
        if down:
            offenders[_name(path)] = down
    assert not offenders, offenders


def test_each_redis_key_belongs_to_one_module_and_is_not_imported_across_packages():
    owners: dict[str, set[str]] = {}
    constants: dict[str, str] = {}  # constant name -> owning module
    for path in _modules("integration", "workers"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.match(r"^pr:[a-z]", node.value):
                owners.setdefault(node.value.split(":")[1], set()).add(_name(path))
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and str(node.value.value).startswith("pr:"):
                constants.update({t.id: _name(path) for t in node.targets if isinstance(t, ast.Name)})
    shared = {key: sorted(mods) for key, mods in owners.items() if len(mods) > 1}
    assert not shared, f"Redis keys written in more than one module: {shared}"
    reached = []
    for path in _modules("integration", "workers"):
        package = _name(path).rsplit(".", 1)[0]
        for module in _imports(path):
            owner, _, constant = module.rpartition(".")
            if constants.get(constant) == owner and not owner.startswith(package):
                reached.append(f"{_name(path)} uses {owner}.{constant}")
    assert not reached, reached


def test_modules_stay_small():
    large = {_name(p): n for p in _modules("integration", "workers") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not large, f"past about 300 lines a module is asking to be split: {large}"
