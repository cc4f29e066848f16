"""The three images copy the same code, listed once: .dockerignore lets through
setup.py and setup.py's PACKAGES, and each Dockerfile copies its context whole
(parsed here; no Docker daemon needed)."""
import ast

import pytest

from tests.conftest import REPO

DOCKERFILES = ("deploy/dataflow/Dockerfile", "deploy/serving/Dockerfile", "deploy/vertex/Dockerfile")


def setup_packages() -> set[str]:
    tree = ast.parse((REPO / "setup.py").read_text())
    value = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                 and any(getattr(target, "id", None) == "PACKAGES" for target in node.targets))
    return set(ast.literal_eval(value))


def allowed_by_dockerignore() -> set[str]:
    lines = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*"  # an allow-list: everything else stays out of the context
    return {rule[1:].strip("/") for rule in rules if rule.startswith("!")}


def copies_from_context(dockerfile: str) -> list[str]:
    """The COPY instructions that read the build context (not another stage)."""
    instructions = [line.strip() for line in (REPO / dockerfile).read_text().splitlines()]
    return [line for line in instructions if line.upper().startswith("COPY ") and "--from=" not in line]


def test_the_context_is_setup_py_and_the_installed_packages():
    packages = setup_packages()
    assert {"reviews", "pipelines", "trainer", "deploy", "schemas"} <= packages
    assert allowed_by_dockerignore() == {"setup.py", *packages}
    assert all((REPO / name / "__init__.py").exists() for name in packages)


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_each_image_copies_the_context_once_and_installs_it(dockerfile):
    assert copies_from_context(dockerfile) == ["COPY . ."]
    installs = [line for line in (REPO / dockerfile).read_text().splitlines() if line.startswith("RUN pip install")]
    assert len(installs) == 1 and installs[0].split()[-1] == "."  # the copied setup.py, whole


def test_every_top_level_package_of_the_repository_is_installed():
    # A new package with an __init__.py that setup.py does not list would be missing from the images.
    found = {path.parent.name for path in REPO.glob("*/__init__.py")} - {"tests", "benchmarks"}
    assert found == setup_packages()
