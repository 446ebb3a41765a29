"""The house rules, read from the source: imports run one way through the layers, and only the plugin
module imports vllm."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Each package may import itself and the packages listed here, nothing above it:
# data -> models -> serving (server, client, query, plugin) -> evaluation (rankers, metrics, bench)
# -> training (early stopping uses the evaluation) -> the CLI.
MAY_IMPORT = {
    "tokenizer": set(),
    "models": {"tokenizer"},
    "serve": {"tokenizer"},
    "bench": {"tokenizer", "models", "serve"},
    "train": {"tokenizer", "models", "bench"},
    "cli": {"tokenizer", "models", "serve", "bench", "train"},
}
VLLM_MODULE = "lsrec.serve.vllm_plugin"


def packages(root: Path) -> dict[str, Path]:
    """`lsrec.<name>` -> its folder, from pyproject.toml's setuptools package-dir."""
    config = tomllib.loads((root / "pyproject.toml").read_text())
    return {name.split(".", 1)[1]: root / folder
            for name, folder in config["tool"]["setuptools"]["package-dir"].items()}


def imported_modules(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a file, those inside functions included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: within the package (subpackages are not used)
                found.append((node.lineno, f"lsrec.{package}" + (f".{node.module}" if node.module else "")))
            else:
                found.append((node.lineno, node.module))
    return found


def forbidden_imports(root: Path) -> list[str]:
    problems = []
    for package, folder in packages(root).items():
        for path in sorted(folder.rglob("*.py")):
            module = f"lsrec.{package}.{path.stem}"
            for line, name in imported_modules(path, package):
                where = f"{path.relative_to(root)}:{line}"
                if (name == "vllm" or name.startswith("vllm.")) and module != VLLM_MODULE:
                    problems.append(f"{where} imports {name}: only {VLLM_MODULE} may import vllm")
                if name.startswith("lsrec."):
                    target = name.split(".")[1]
                    if target != package and target not in MAY_IMPORT[package]:
                        problems.append(f"{where}: lsrec.{package} imports {name}, which sits above it")
    return problems


def test_every_package_has_a_place_in_the_layers():
    assert set(packages(ROOT)) == set(MAY_IMPORT)


def test_imports_run_one_way_and_only_the_plugin_imports_vllm():
    assert forbidden_imports(ROOT) == []


def test_the_check_finds_a_wrong_way_import_and_a_stray_vllm_import(tmp_path):
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    for folder in packages(ROOT).values():
        (tmp_path / folder.name).mkdir()
    (tmp_path / "benchmarks" / "ranker.py").write_text("def f():\n    from lsrec.train.trainer import train\n")
    (tmp_path / "tokenizer" / "vocab.py").write_text("from lsrec.bench import metrics\n")
    (tmp_path / "lsrec_serve" / "client.py").write_text("import vllm\n")
    (tmp_path / "lsrec_serve" / "vllm_plugin.py").write_text("from vllm.v1 import sample\nfrom . import query\n")
    problems = forbidden_imports(tmp_path)
    assert len(problems) == 3, problems
    assert any("benchmarks/ranker.py:2: lsrec.bench imports lsrec.train.trainer" in p for p in problems)
    assert any("tokenizer/vocab.py:1" in p for p in problems)
    assert any("lsrec_serve/client.py:1 imports vllm" in p for p in problems)
