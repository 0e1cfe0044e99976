"""The library's shape, enforced: one-way layering and modules of a readable size.

Layers (``DESIGN.md`` section 2), from the bottom up:

1. **core** (``cvbook.core``, and the package root ``cvbook/__init__.py``, which holds
   ``__version__``): imports no other cvbook module.
2. **shared homes** (:data:`SHARED`: ``image``, ``geometry``, ``render``, ``nn``,
   ``metrics``, ``viz``, ``data``, ``cluster``): import only ``core`` and other shared
   homes, and the homes import each other without cycles (a home that needs another
   one sits above it).
3. **per-paper modules**: every other top-level module or package of ``cvbook``
   (``attribution``, ``fixres``, ``dtc``, ``c3dpo``, ``zoo`` and the chapters to come).
   A paper module imports ``core``, the shared homes, its own package and ``zoo`` (the
   shipped checkpoints), never another paper module: what two chapters share moves
   down into a shared home. ``zoo`` itself imports no paper module (it ships networks
   built from the shared homes), so that the exception cannot make a cycle.
4. **notebooks** import anything; nothing in the library imports a notebook.

Every import counts: module level, inside functions (lazy imports), under
``TYPE_CHECKING``, ``import a.b``, ``from a import b`` (``from cvbook import zoo`` is an
import of ``cvbook.zoo``) and relative imports (``from . import x``, resolved against
the importing module's package).

The second test flags any module over :data:`MAX_LINES` lines: a module that grows past
it becomes a package of smaller modules named after what they hold.
"""

from __future__ import annotations

import ast
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "lib" / "cvbook"

CORE = {"core", ""}  # "" is the package root, cvbook/__init__.py
SHARED = {"image", "geometry", "render", "nn", "metrics", "viz", "data", "cluster"}
CHECKPOINTS = "zoo"  # the one paper-level module every paper module may import

# Known offenders, to be emptied by the lead at merge time (issue 9): each entry names an
# import that breaks the layering today and the work that removes it.
ALLOWED_EDGES: set[tuple[str, str]] = set()  # none: every known offender is fixed

MAX_LINES = 600
# Known offenders, to be emptied by the lead at merge time: the "library split" branch
# turns dtc.py into the package dtc/ and moves fixres.py's crops and sources to image/
# and data/.
ALLOWED_LONG: set[str] = set()  # none: dtc and fixres were split


def _module_name(path: Path, lib: Path = LIB) -> str:
    rel = path.relative_to(lib.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imported_modules(path: Path, lib: Path = LIB) -> set[str]:
    """Every ``cvbook.*`` module that the file at ``path`` (in the package ``lib``)
    imports, as absolute names."""
    name = _module_name(path, lib)
    package = name if _is_package(path) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            # "from cvbook import zoo" / "from . import core" import submodules
            for a in node.names:
                sub = f"{mod}.{a.name}"
                if _exists(sub, lib):
                    found.add(sub)
    return {m for m in found if m == "cvbook" or m.startswith("cvbook.")}


def _exists(module: str, lib: Path) -> bool:
    rel = Path(*module.split("."))
    return (lib.parent / rel.with_suffix(".py")).is_file() or \
        (lib.parent / rel / "__init__.py").is_file()


def top(module: str) -> str:
    """The top-level unit of a module: ``cvbook.metrics.pose`` -> ``metrics``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer(unit: str) -> int:
    return 0 if unit in CORE else 1 if unit in SHARED else 2


def violation(importer: str, imported: str) -> str | None:
    """Why ``importer`` may not import ``imported`` (``None`` when it may)."""
    a, b = top(importer), top(imported)
    if a == b or (importer, imported) in ALLOWED_EDGES:
        return None
    if layer(a) == 0 and layer(b) != 0:
        return "core imports no other cvbook module"
    if layer(a) == 1 and layer(b) == 2:
        return f"a shared home ({a}) imports a per-paper module ({b})"
    if layer(a) == 2 and layer(b) == 2 and (b != CHECKPOINTS or a == CHECKPOINTS):
        return f"a per-paper module ({a}) imports another per-paper module ({b})"
    return None


def _library_files() -> list[Path]:
    return sorted(p for p in LIB.rglob("*.py") if "__pycache__" not in p.parts)


def test_imports_go_one_way() -> None:
    bad = []
    for path in _library_files():
        importer = _module_name(path)
        for imported in sorted(imported_modules(path)):
            why = violation(importer, imported)
            if why:
                bad.append(f"{importer} imports {imported}: {why}")
    assert not bad, "layering broken:\n" + "\n".join(bad)


def test_shared_homes_import_each_other_without_cycles() -> None:
    graph: dict[str, set[str]] = {h: set() for h in SHARED}
    for path in _library_files():
        a = top(_module_name(path))
        if a in SHARED:
            graph[a].update(top(m) for m in imported_modules(path)
                            if top(m) in SHARED and top(m) != a)
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle between shared homes: "
                                     + " -> ".join(trail + [node, nxt]))
            if nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for h in sorted(graph):
        if h not in state:
            visit(h, [])


def test_no_module_is_too_long() -> None:
    long = {}
    for path in _library_files():
        rel = path.relative_to(LIB).as_posix()
        n = len(path.read_text().splitlines())
        if n > MAX_LINES and rel not in ALLOWED_LONG:
            long[rel] = n
    assert not long, (f"modules over {MAX_LINES} lines (split them into a package of "
                      f"modules named after what they hold): {long}")


def test_allow_lists_are_not_stale() -> None:
    """An allow-list entry that no longer applies must be removed (so that the lists
    only shrink)."""
    for rel in ALLOWED_LONG:
        path = LIB / rel
        assert path.is_file() and len(path.read_text().splitlines()) > MAX_LINES, \
            f"{rel} is no longer over {MAX_LINES} lines (or gone): remove it from ALLOWED_LONG"
    edges = {(_module_name(p), m) for p in _library_files() for m in imported_modules(p)}
    for edge in ALLOWED_EDGES:
        assert edge in edges, f"{edge} no longer exists: remove it from ALLOWED_EDGES"


# ------------------------------------------------------------------ the checker itself
def test_checker_resolves_relative_and_submodule_imports(tmp_path) -> None:
    pkg = tmp_path / "cvbook"
    (pkg / "metrics").mkdir(parents=True)
    (pkg / "core").mkdir()
    for f in ("__init__.py", "zoo.py", "c3dpo.py", "core/__init__.py",
              "metrics/__init__.py"):
        (pkg / f).write_text("")
    (pkg / "metrics" / "bad.py").write_text(
        "from .. import c3dpo\nfrom . import good\n\ndef f():\n    from cvbook.zoo import x\n")
    (pkg / "metrics" / "good.py").write_text("import cvbook.core\n")
    found = imported_modules(pkg / "metrics" / "bad.py", pkg)
    assert found == {"cvbook", "cvbook.c3dpo", "cvbook.metrics", "cvbook.metrics.good",
                     "cvbook.zoo"}
    assert violation("cvbook.metrics.bad", "cvbook.c3dpo")
    assert violation("cvbook.metrics.bad", "cvbook.zoo")
    assert violation("cvbook.core.x", "cvbook.metrics") == "core imports no other cvbook module"
    assert violation("cvbook.c3dpo", "cvbook.zoo") is None
    assert violation("cvbook.zoo", "cvbook.c3dpo")
    assert violation("cvbook.c3dpo", "cvbook.dtc")
    assert violation("cvbook.newpaper", "cvbook.geometry.so3") is None
    assert violation("cvbook.attribution.extremal", "cvbook.attribution.core") is None
