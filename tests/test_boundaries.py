"""The torch boundary holds: the analysis, the plan, the jobs, the experiments, the app's helpers
and the CLI's --help and jobs import without torch (a real import, with torch made unimportable)."""

import os
import subprocess
import sys

from conftest import ROOT

# the modules that run models: the only ones allowed to import torch
TORCH = {"gradlens.train.loop", "gradlens.train.mgcm", "gradlens.train.routing"}

SCRIPT = r"""
import importlib, pkgutil, sys

class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"{name} is blocked: this module must not need torch")
        return None

sys.meta_path.insert(0, BlockTorch())
import gradlens
torch_modules = set(sys.argv[1].split(","))
for m in pkgutil.walk_packages(gradlens.__path__, "gradlens."):
    if m.name.endswith("__main__") or m.name in torch_modules:
        continue
    importlib.import_module(m.name)
from gradlens.cli import main
try:
    main(["--help"])
except SystemExit as exc:
    assert exc.code == 0, exc.code
assert main(["jobs"]) == 0
assert "torch" not in sys.modules
print("torch-free")
"""


def test_torch_free_modules_and_the_cli_import_without_torch(tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT, ",".join(sorted(TORCH))],
                         capture_output=True, text=True, cwd=ROOT, timeout=300,
                         env={**os.environ, "GRADLENS_RUNS": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("torch-free")
