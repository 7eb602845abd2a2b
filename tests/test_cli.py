import subprocess
import sys

import pytest

from conftest import ROOT, SMALL
from gradlens.cli import build_parser, main


def test_every_probe_flag_has_help_and_a_default(capsys, monkeypatch):
    import dataclasses

    from gradlens.probe_config import ProbeConfig

    monkeypatch.setenv("COLUMNS", "10000")  # no wrapping inside a help text
    with pytest.raises(SystemExit):
        build_parser().parse_args(["probe", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
    defaults = vars(build_parser().parse_args(["probe"]))
    fields = dataclasses.fields(ProbeConfig)
    assert len(fields) >= 12
    for f in fields:
        flag = "--" + f.name.replace("_", "-")
        helptext = " ".join(f.metadata.get("help", "").split())
        assert helptext and flag in text, f.name
        assert f"{helptext} (default: " in text, f"{flag}: its help and default are not shown"
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        assert defaults[f.name] == default, f.name


def test_info_reports_the_run(tiny_run, capsys):
    assert main(["info", str(tiny_run)]) == 0
    out = capsys.readouterr().out
    assert "languages  " + " ".join(SMALL["languages"]) in out
    assert f"steps done {SMALL['steps']} of {SMALL['steps']}" in out and "MB" in out


def test_a_plan_is_set_against_plans_from_other_probes_of_the_model(tmp_path, capsys):
    import json

    from conftest import random_run

    first, again = random_run(tmp_path / "first"), random_run(tmp_path / "again")
    out = tmp_path / "plan.json"
    assert main(["plan", str(first), "--out", str(out), "--against", str(again)]) == 0
    agreement = json.loads((tmp_path / "plan-agreement.json").read_text())
    assert agreement["runs"] == [str(first), str(again)]
    assert agreement["mean_jaccard"] == 1.0          # the same sketches twice: the same plan
    assert len(agreement["pairs"]) == 1 and "agree by Jaccard 1.00" in capsys.readouterr().out
    other = random_run(tmp_path / "other", languages=("spa", "ita", "deu"))
    assert main(["plan", str(first), "--out", str(out), "--against", str(other)]) == 2
    assert "only probes of the same model and languages compare" in capsys.readouterr().err


@pytest.mark.integration
def test_errors_are_one_clear_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gradlens", "info", str(tmp_path / "none")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.startswith("gradlens: error: ") and "no such run file" in proc.stderr
    assert "Traceback" not in proc.stderr
