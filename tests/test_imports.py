"""The package's layering: what may import what, checked on a fresh interpreter
and on the import graph of the source itself."""
import ast
import subprocess
import sys

import pytest

from tests.conftest import REPO

PACKAGES = ("reviews", "schemas", "pipelines", "trainer", "deploy")


def modules_loaded_by(*imports: str) -> set[str]:
    """The top-level packages in sys.modules after importing these in a fresh interpreter."""
    code = f"import sys, {', '.join(imports)}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_the_trainer_and_the_server_load_no_beam():
    # What a Vertex AI training worker or the serving image imports: TensorFlow and
    # tf.Transform (which brings parts of tfx_bsl), never Beam (installed there only
    # as tf.Transform's dependency) and never our Beam stages.
    loaded = modules_loaded_by("trainer.task", "trainer.data", "trainer.export", "trainer.predict", "deploy.serving.server")
    assert not loaded & {"apache_beam", "pipelines"}, sorted(loaded & {"apache_beam", "pipelines"})
    assert {"tensorflow", "reviews"} <= loaded  # the check saw the real imports


def test_the_shared_package_loads_neither_beam_nor_tensorflow():
    # reviews/ is what the trainer and the server import instead of pipelines/; its
    # plain modules (all but exports) need not even TensorFlow until a file is touched.
    plain = ("contract", "records", "validation", "paths", "drift", "logs", "errors", "locks", "storage")
    loaded = modules_loaded_by(*(f"reviews.{name}" for name in plain))
    assert not loaded & {"apache_beam", "tensorflow", "tfx_bsl", "pipelines", "trainer", "deploy"}
    assert "reviews" in loaded


def module_name(path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def our_modules() -> dict:
    return {module_name(path): path for package in PACKAGES for path in (REPO / package).rglob("*.py")}


def imported_by(path, modules: dict) -> set[str]:
    """Our modules that this file imports, anywhere in it (a function-level import
    closes a circle as surely as one at the top)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from a import b` imports the module a.b when there is one, else a name of a.
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                     for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


def import_circles(graph: dict) -> list[list[str]]:
    """Every module that lies on a circle, as one circle through it (depth-first search)."""
    circles, state = [], {}

    def visit(module, trail):
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                circles.append(trail[trail.index(target):] + [target])
            elif target not in state:
                visit(target, trail + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return circles


def test_the_package_has_no_import_circle():
    modules = our_modules()
    graph = {name: imported_by(path, modules) - {name} for name, path in modules.items()}
    assert sum(map(len, graph.values())) > 50  # the graph was read, not empty
    assert import_circles(graph) == []


def test_the_circle_finder_finds_a_circle():
    assert import_circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert import_circles({"a": {"b"}, "b": set(), "c": {"b"}}) == []


@pytest.mark.parametrize("layer, forbidden", [
    ("reviews", ("pipelines", "trainer", "deploy", "apache_beam", "tfx_bsl")),
    ("trainer", ("pipelines", "apache_beam", "tfx_bsl", "deploy")),
])
def test_a_layer_imports_nothing_above_it(layer, forbidden):
    offenders = []
    for path in (REPO / layer).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            offenders += [f"{path.relative_to(REPO)}: {name}" for name in names if name.split(".")[0] in forbidden]
    assert offenders == []
