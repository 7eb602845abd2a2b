"""The boundaries hold. Every module of ``gradlens`` (analysis, plans, training settings, jobs,
experiments, the app's helpers) and the CLI's --help and jobs import without torch, with torch
made unimportable; all code that runs models is in ``probes``, which ``gradlens`` reaches only
through the CLI's lazy imports at its edge."""

import ast
import os
import subprocess
import sys

import pytest

from conftest import ROOT

SCRIPT = r"""
import importlib, pkgutil, sys

class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"{name} is blocked: this module must not need torch")
        return None

sys.meta_path.insert(0, BlockTorch())
import gradlens
for m in pkgutil.walk_packages(gradlens.__path__, "gradlens."):
    if not m.name.endswith("__main__"):
        importlib.import_module(m.name)
from gradlens.cli import main
try:
    main(["--help"])
except SystemExit as exc:
    assert exc.code == 0, exc.code
assert main(["jobs"]) == 0
assert "torch" not in sys.modules and not any(m.startswith("probes") for m in sys.modules)
print("torch-free")
"""


@pytest.mark.integration
def test_every_gradlens_module_and_the_cli_import_without_torch(tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         cwd=ROOT, timeout=300, env={**os.environ, "GRADLENS_RUNS": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("torch-free")


def imports(path):
    """``(module imported, at module level?)`` for every import statement in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    top = set(map(id, tree.body))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((a.name, id(node) in top) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, id(node) in top


def test_torch_lives_in_probes_and_gradlens_reaches_it_only_from_the_cli():
    torch_outside, wrong_way = [], []
    for path in sorted((ROOT / "gradlens").rglob("*.py")):
        for name, at_top in imports(path):
            where = str(path.relative_to(ROOT))
            if name.split(".")[0] == "torch":
                torch_outside.append(where)
            if name.split(".")[0] == "probes" and (at_top or path.name != "cli.py"):
                wrong_way.append(f"{where} imports {name}")
    assert torch_outside == [] and wrong_way == []
    for path in sorted((ROOT / "probes").rglob("*.py")):
        assert all(name.split(".")[0] != "streamlit" for name, _ in imports(path)), path


def test_the_analysis_takes_arrays_and_reads_no_run_file_or_pickle():
    """``gradlens.analysis`` computes on arrays; reading runs and caching is ``gradlens.evidence``'s,
    the app's is ``gradlens.ui``'s."""
    forbidden = {"gradlens.store", "gradlens.evidence", "gradlens.ui", "h5py", "pickle",
                 "streamlit", "torch"}
    found = [f"{path.name} imports {name}"
             for path in sorted((ROOT / "gradlens" / "analysis").rglob("*.py"))
             for name, _ in imports(path)
             if any(name == f or name.startswith(f + ".") for f in forbidden)]
    assert found == []
