"""The layers of docs/architecture.md, kept true: imports in src/effnet (read with ast, nothing imported) go
down the layers or stay level, a task package never imports another one, and packages form no cycle."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "effnet"

# package (or top-level module) -> layer; a package may import its own layer and those below
LAYERS = {
    # foundation: plain helpers every layer may use
    "lazy": 0,
    "preprocessing": 0,
    "validation": 0,
    "profiling": 0,
    "quiet": 0,
    "checkpoint": 0,
    "run_lock": 0,
    "distributed": 0,
    "models": 1,
    "weights": 2,
    "data": 2,
    "factory": 2,
    "runtime": 3,
    "export": 3,
    "report": 3,
    "training": 4,
    "train_state": 4,
    "image_classifier": 5,
    "embedder": 5,
    "object_detector": 5,
    "image_segmenter": 5,
    "config": 5,
    "model_spec": 5,
    "bench": 6,
    "predict": 6,
    "cli": 7,
    "__main__": 7,
    "effnet": 7,  # the package's own __init__: the public facade
}
TASKS = {
    "image_classifier",
    "embedder",
    "object_detector",
    "image_segmenter",
}  # the same layer, and never each other's


def package_of(module: str) -> str:
    """``effnet.image_classifier.training`` -> ``image_classifier``; ``effnet`` -> ``effnet``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "effnet"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The effnet modules one import statement names; ``from effnet import distributed`` names
    ``effnet.distributed``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == "effnet"]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: from the module's package
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    if base.split(".")[0] != "effnet":
        return []
    found = []
    for alias in node.names:
        sub = SRC.parent.joinpath(*f"{base}.{alias.name}".split("."))
        is_module = sub.with_suffix(".py").is_file() or (sub / "__init__.py").is_file()
        found.append(f"{base}.{alias.name}" if is_module else base)
    return list(dict.fromkeys(found))  # `from effnet.x import a, b`: one import of effnet.x


def import_edges(root: Path = SRC) -> list[tuple[str, int, str]]:
    """(importing module, line, imported module) for every import of effnet in ``root``: at the top of a
    file, inside functions, under TYPE_CHECKING alike."""
    edges = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for target in imported_modules(node, module, path.name == "__init__.py"):
                edges.append((module, node.lineno, target))
    return edges


def layer_violations(edges: list[tuple[str, int, str]]) -> list[str]:
    """One line per import that goes up a layer, crosses between task packages, or comes from a package
    that no layer holds."""
    problems = []
    for module, line, target in edges:
        source, imported = package_of(module), package_of(target)
        where = f"{module} (line {line}) imports {target}"
        if source not in LAYERS:
            problems.append(f"{where}: package {source!r} is in no layer; add it to LAYERS and the doc")
        elif imported not in LAYERS:
            problems.append(f"{where}: package {imported!r} is in no layer; add it to LAYERS and the doc")
        elif LAYERS[imported] > LAYERS[source]:
            problems.append(
                f"{where}: upward import, {source} (layer {LAYERS[source]}) may not import {imported} "
                f"(layer {LAYERS[imported]}); move the shared code down a layer"
            )
        elif source in TASKS and imported in TASKS and source != imported:
            problems.append(f"{where}: task packages never import each other; move it to effnet.training")
    return problems


def package_cycles(edges: list[tuple[str, int, str]]) -> list[str]:
    """A line per cycle of packages importing each other, naming one import of each step."""
    graph: dict[str, dict[str, str]] = {}
    for module, line, target in edges:
        source, imported = package_of(module), package_of(target)
        if source != imported:
            graph.setdefault(source, {}).setdefault(imported, f"{module} (line {line}) imports {target}")
    cycles, state = [], {}  # state: 1 on the current path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                loop = [*path[path.index(nxt) :], nxt]
                steps = "; ".join(graph[a][b] for a, b in itertools.pairwise(loop))
                cycles.append(f"import cycle {' -> '.join(loop)}: {steps}")
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_imports_go_down_the_layers():
    problems = layer_violations(import_edges())
    assert not problems, "\n".join(problems)


def test_no_import_cycle_between_packages():
    cycles = package_cycles(import_edges())
    assert not cycles, "\n".join(cycles)


def test_the_checks_name_the_module_and_the_import():
    edges = [
        ("effnet.models.embedding", 7, "effnet.factory"),
        ("effnet.embedder.training", 3, "effnet.image_classifier.training"),
        ("effnet.factory", 9, "effnet.models"),
        ("effnet.gadgets", 1, "effnet.models"),
    ]
    upward, across, unplaced = layer_violations(edges)
    assert upward.startswith("effnet.models.embedding (line 7) imports effnet.factory: upward import")
    assert "task packages never import each other" in across and "'gadgets' is in no layer" in unplaced
    (cycle,) = package_cycles(edges)
    assert cycle.startswith("import cycle factory -> models -> factory: effnet.factory (line 9) imports")
