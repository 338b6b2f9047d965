"""Every subcommand is registered on the one `kit` group and has --help with an example."""
import pytest
from click.testing import CliRunner

from kit.cli import main

COMMANDS = ["prep", "gen-queries", "split", "mine", "train", "merge", "adapter", "bench", "run"]


def test_all_stages_are_registered():
    assert set(COMMANDS) <= set(main.commands)


@pytest.mark.parametrize("name", COMMANDS)
def test_help_has_an_example(name):
    r = CliRunner().invoke(main, [name, "--help"])
    assert r.exit_code == 0 and "Example" in r.output and "kit " in r.output


def test_kit_error_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: x\nprep: {inputs: [nowhere]}\n")
    r = CliRunner().invoke(main, ["run", str(bad)])
    assert r.exit_code == 2 and "error:" in r.output and "Traceback" not in r.output
