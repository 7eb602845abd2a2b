import subprocess
import sys

from conftest import ROOT, SMALL
from gradlens.cli import build_parser, main


def test_every_probe_flag_has_help_and_a_default():
    parser = build_parser()
    probe = parser._subparsers._group_actions[0].choices["probe"]
    flags = [a for a in probe._actions if a.dest != "help"]
    assert len(flags) >= 12
    for action in flags:
        assert action.help and "(default:" in action.help, action.dest


def test_info_reports_the_run(tiny_run, capsys):
    assert main(["info", str(tiny_run)]) == 0
    out = capsys.readouterr().out
    assert "languages  " + " ".join(SMALL["languages"]) in out
    assert f"steps done {SMALL['steps']} of {SMALL['steps']}" in out and "MB" in out


def test_errors_are_one_clear_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gradlens", "info", str(tmp_path / "none")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.startswith("gradlens: error: ") and "no such run file" in proc.stderr
    assert "Traceback" not in proc.stderr
