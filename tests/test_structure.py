"""The package's layering: no import cycles, and no codec special-cased by name outside its module."""

from __future__ import annotations

import ast
from pathlib import Path

from irncodec.lr_codecs import available_codecs

PACKAGE = Path(__file__).resolve().parents[1] / "irncodec"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import, at module level or inside functions, except ``if TYPE_CHECKING:`` ones."""
    out: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                out.append(child)
            visit(child)

    visit(tree)
    return out


def import_graph() -> dict[str, set[str]]:
    """Which irncodec modules each irncodec module imports (lazy imports included)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        deps: set[str] = set()
        for node in _imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name in modules}
                continue
            base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else (node.module or "")
            for alias in node.names:
                target = f"{base}.{alias.name}"
                deps.add(target if target in modules else base)
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_package_has_no_import_cycles():
    graph = import_graph()
    assert "irncodec.lr_codecs" in graph["irncodec.container"]  # the parser sees imports
    assert "irncodec.lr_codecs.base" in graph["irncodec.lr_codecs.entropy"]
    assert "irncodec.pipeline" in graph["irncodec.ratecontrol"]
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_no_codec_is_special_cased_by_name_outside_its_module():
    """Code asks the registry (per_level_models, needs_model, options...) instead of
    comparing with a codec's name, so a new codec touches one module."""
    names = set(available_codecs())
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "lr_codecs":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                constants = [c for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)]
                if any(c.value in names for c in constants):
                    offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {ast.unparse(node)}")
    assert not offenders, "\n".join(offenders)


def test_only_the_entropy_path_imports_compressai(tmp_path):
    """CompressAI (and the torch_geometric it pulls in) takes seconds to import: JPEG/WebP/PNG files skip it."""
    import subprocess
    import sys

    from .conftest import photo_like

    png = tmp_path / "in.png"
    photo_like(20, 14).save(png)
    script = ("import sys, irncodec; data = irncodec.encode(sys.argv[1], codec='jpeg'); irncodec.decode(data); "
              "print('compressai' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", script, str(png)], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"
