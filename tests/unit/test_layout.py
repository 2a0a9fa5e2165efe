"""The house rules of the layout (docs/ARCHITECTURE.md "Rooms and rules"), read from the code's own imports with `ast`.

Every import counts, also one inside a function (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# an alarm, not a rule: modules are split by job, never by a line count (docs/ARCHITECTURE.md "Rooms and
# rules"); one past this is worth a look for a second job hiding in it. Today's longest is about 400 lines.
ALARM_LINES = 600
LOWER_LAYERS = ("verifier.postgres", "verifier.docker", "verifier.zabbix", "verifier.prometheus", "verifier.repository")
HIGHER_LAYERS = ("verifier.pipeline", "verifier.sandbox", "verifier.physical", "verifier.cli")
# below the pipeline a function takes the config sections it needs; offsite/ and daemon/ (its schedule and
# systemd units) included: the pipeline and the CLI hand them their sections
BELOW_PIPELINE = (*LOWER_LAYERS, "verifier.sandbox", "verifier.physical", "verifier.offsite", "verifier.daemon")
# the outside systems, each spoken by one adapter: import root -> where it may be imported
ADAPTERS = {
    "psycopg": ("verifier.postgres", "verifier.demo"),
    "docker": ("verifier.docker",),
    "zabbix_utils": ("verifier.zabbix",),
    "prometheus_client": ("verifier.prometheus",),
    "smtplib": ("verifier.mailer",),
    "boto3": ("verifier.offsite",),
    "botocore": ("verifier.offsite",),
}


def module_name(path: Path) -> str:
    """Returns the dotted name of a source file (`checks/` under the name it installs as)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "checks":
        parts[0] = "pg_backup_verifier_checks"
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def product_files() -> list[Path]:
    return sorted([*(ROOT / "verifier").rglob("*.py"), *(ROOT / "checks").rglob("*.py")])


MODULES = {module_name(path): path for path in product_files()}


def imports(path: Path) -> Iterator[tuple[str, list[str]]]:
    """Yields (imported module, names taken from it) for every import in the file, lazy ones included."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [alias.name for alias in node.names]


def internal_targets(path: Path) -> set[str]:
    """Returns the product modules a file imports (`from package import module` names the module)."""
    targets = set()
    for module, names in imports(path):
        for name in names or [""]:
            candidate = f"{module}.{name}" if name else module
            if candidate in MODULES:
                targets.add(candidate)
            elif module in MODULES:
                targets.add(module)
    targets.discard(module_name(path))
    return targets


def within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)


GRAPH = {name: internal_targets(path) for name, path in MODULES.items()}


def test_no_import_circle() -> None:
    done: set[str] = set()

    def visit(module: str, trail: list[str]) -> None:
        if module in trail:
            pytest.fail("import circle: " + " -> ".join([*trail[trail.index(module) :], module]))
        if module in done:
            return
        for target in sorted(GRAPH[module]):
            visit(target, [*trail, module])
        done.add(module)

    for module in sorted(GRAPH):
        visit(module, [])


def test_lower_layers_never_import_higher_ones() -> None:
    upward = [
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if within(module, LOWER_LAYERS)
        for target in targets
        if within(target, HIGHER_LAYERS)
    ]
    assert upward == []


def test_lower_layers_never_draw() -> None:
    """The repository plans and applies retention, render/ draws the plan: no lower layer imports render/."""
    drawing = [
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if within(module, LOWER_LAYERS)
        for target in targets
        if within(target, ("verifier.render",))
    ]
    assert drawing == []


def test_docker_knows_nothing_of_postgres() -> None:
    crossing = [
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if within(module, ("verifier.docker",))
        for target in targets
        if within(target, ("verifier.postgres",))
    ]
    assert crossing == []


def test_each_outside_system_is_imported_by_its_adapter_only() -> None:
    strays = [
        f"{module} imports {imported}"
        for module, path in MODULES.items()
        for imported, _ in imports(path)
        if imported.split(".")[0] in ADAPTERS and not within(module, ADAPTERS[imported.split(".")[0]])
    ]
    assert strays == []


def test_below_the_pipeline_functions_take_config_sections_not_the_whole_config() -> None:
    whole = [
        module
        for module, path in MODULES.items()
        if within(module, BELOW_PIPELINE)
        for imported, names in imports(path)
        if imported == "verifier.config" and "Config" in names
    ]
    assert whole == []


def test_no_test_module_imports_another_test_module() -> None:
    """Shared helpers live in tests/support/."""
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for imported, names in imports(path):
            leaves = [imported.split(".")[-1], *(f"{imported}.{name}".split(".")[-1] for name in names)]
            if imported.startswith("tests.") and any(leaf.startswith("test_") for leaf in leaves):
                offenders.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert offenders == []


def test_no_module_is_far_past_the_size_alarm() -> None:
    long = {
        module: lines for module, path in MODULES.items() if (lines := len(path.read_text().splitlines())) > ALARM_LINES
    }
    assert long == {}


def test_no_constant_is_defined_in_two_modules() -> None:
    """A module-level constant holding a literal has one home and is imported from there: two definitions of
    one name and value (`SUPERUSER = "postgres"` in the cluster and its template) drift apart when one changes."""
    homes: dict[tuple[str, str], list[str]] = {}
    for module, path in MODULES.items():
        for node in ast.parse(path.read_text(), str(path)).body:
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id.isupper()
                and isinstance(node.value, ast.Constant)
            ):
                homes.setdefault((node.targets[0].id, repr(node.value.value)), []).append(module)
    assert {constant: found for constant, found in homes.items() if len(found) > 1} == {}


def test_every_package_is_installed() -> None:
    """pyproject.toml lists the packages by name (checks/ installs as pg_backup_verifier_checks)."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {module_name(path.parent / "__init__.py") for path in product_files() if path.name == "__init__.py"}
    assert set(setuptools["packages"]) == packages
    assert setuptools["package-dir"] == {"pg_backup_verifier_checks": "checks"}
