"""The README's quick tour and the how-to pages' examples run as written, and the README's first lines are the
two commands CI relies on."""

import pathlib
import re

ROOT = pathlib.Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()
HOWTO = ROOT / "docs" / "howto"


def test_first_lines_are_the_two_commands():
    lines = README.splitlines()
    assert lines[0] == "```bash" and lines[3] == "```"
    assert lines[1].startswith("python -m pip install -e") and lines[1].endswith("python -m experiments")
    assert lines[2].startswith("python -m pip install -e") and "pytest" in lines[2]
    assert "-m" not in lines[2].split("pytest", 1)[1].split()  # every tier: CI runs this line verbatim


def test_quick_tour_runs(tmp_path, monkeypatch, capsys):
    tour = re.search(r"## Quick tour\n\n```python\n(.*?)```", README, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(tour.replace("/tmp/xor.npz", str(tmp_path / "xor.npz")), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "gradient check" in out and "OK: max rel" in out
    assert "tol" in out and "[0 1 1 0]" in out


def test_own_activation_and_loss_example_runs(capsys):
    page = (HOWTO / "own_activation.md").read_text()
    code = re.search(r"# Your own activation or loss: derive, verify, train\n.*?```python\n(.*?)```", page, re.S).group(1)
    exec(compile(code, "docs/howto/own_activation.md", "exec"), {})
    out = capsys.readouterr().out
    assert "activation 'swish': derivative OK" in out and "loss 'huber': derivative OK" in out
    assert "activation 'tanh?': the hand-derived derivative is WRONG" in out and "gradients OK" in out
    first, last = map(float, re.search(r"loss ([0-9.]+) -> ([0-9.]+)", out).groups())
    assert last < 0.25 * first


def test_blocks_example_runs(capsys):
    page = (HOWTO / "blocks.md").read_text()
    code = re.search(r"# Blocks: dropout.*?```python\n(.*?)```", page, re.S).group(1)
    exec(compile(code, "docs/howto/blocks.md", "exec"), {})
    out = capsys.readouterr().out
    assert out.count("OK") >= 2, out  # the network's gradient check and the block's derivation
    acc = float(re.search(r"val accuracy ([0-9.]+)", out).group(1))
    assert acc > 0.8, out
