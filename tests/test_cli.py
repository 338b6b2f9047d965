"""CLI habits: every subcommand is registered with --help and an example; exit codes are in `kit --help`; a bad
model is one line and exit 2; results go to stdout, progress and logs to stderr (checked for every subcommand on
real inputs)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kit.cli import main

REPO = Path(__file__).resolve().parent.parent
COMMANDS = ["prep", "gen-queries", "split", "mine", "train", "merge", "adapter", "bench", "export", "run"]
PDFS = ["中华人民共和国劳动合同法实施条例_excerpt.pdf", "中华人民共和国就业促进法_2007.pdf"]


def test_all_stages_are_registered():
    assert set(COMMANDS) <= set(main.commands)


@pytest.mark.parametrize("name", sorted(main.commands))   # every registered subcommand, whoever added it
def test_help_has_an_example_and_the_exit_codes(name):
    r = CliRunner().invoke(main, [name, "--help"])
    assert r.exit_code == 0 and "Example" in r.output and "kit " in r.output
    assert "Exit status:" in r.output and "130" in r.output


def test_kit_help_documents_exit_codes_and_streams():
    """Through the installed console script, as a user runs it."""
    kit = shutil.which("kit", path=str(Path(sys.executable).parent))
    r = subprocess.run([kit, "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    start = lines.index("  Exit status:")
    codes = [ln.split()[0] for ln in lines[start + 1:start + 5]]
    assert codes == ["0", "1", "2", "130"]
    assert "Results go to stdout; progress bars and logs go to stderr." in r.stdout
    v = subprocess.run([kit, "--version"], capture_output=True, text=True, timeout=120)
    assert v.returncode == 0 and v.stdout.startswith("kit, version ")


def test_kit_error_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: x\nprep: {inputs: [nowhere]}\n")
    r = CliRunner().invoke(main, ["run", str(bad)])
    assert r.exit_code == 2 and "error:" in r.output and "Traceback" not in r.output


# ------------------------------------------------------------------------------ stdout vs stderr, per command
def results_only(r) -> str:
    """The command succeeded, said what it produced on stdout, and kept progress and logs off stdout."""
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert out.strip(), "nothing on stdout: the result belongs there"
    for noise in ("it/s", "%|", "\r", "INFO ", "WARNING ", "DEBUG ", "[kit ", "Traceback", "Loading weights"):
        assert noise not in out, f"progress/log text on stdout: {noise!r} in\n{out}"
    return out


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """prep -> gen-queries -> split on two real statutes (each command checked in the first test below)."""
    d = tmp_path_factory.mktemp("cli")
    (d / "pdfs").mkdir()
    for p in PDFS:
        shutil.copy(REPO / "examples" / "data" / p, d / "pdfs" / p)
    runs = {"prep": ["prep", str(d / "pdfs"), "-o", str(d / "corpus.jsonl"), "--max-tokens", "160"],
            "gen-queries": ["gen-queries", str(d / "corpus.jsonl"), "-o", str(d / "pairs.jsonl"), "--generator", "ict",
                            "--per-chunk", "2"],
            "split": ["split", str(d / "pairs.jsonl"), "--corpus", str(d / "corpus.jsonl"), "-o", str(d / "data"),
                      "--eval-ratio", "0.5"]}
    results = {name: CliRunner().invoke(main, args) for name, args in runs.items()}
    return d, results


@pytest.mark.parametrize("name", ["prep", "gen-queries", "split"])
def test_data_commands_print_results_on_stdout(work, name):
    out = results_only(work[1][name])
    assert {"prep": "wrote ", "gen-queries": "pairs from", "split": "train:"}[name] in out


def test_mine_prints_its_result_on_stdout(work, tiny_bert):
    d, _ = work
    r = CliRunner().invoke(main, ["mine", str(d / "data" / "train.jsonl"), "--corpus", str(d / "data" / "train_corpus.jsonl"),
                                  "--model", str(tiny_bert), "-o", str(d / "data" / "train_hn.jsonl"), "--negatives", "2",
                                  "--range", "2-20", "--relative-margin", "0"])
    results_only(r)


def test_export_bench_and_run_print_results_on_stdout(work, tmp_path):
    d, _ = work
    out = results_only(CliRunner().invoke(main, ["export", "--train", str(d / "data" / "train.jsonl"),
                                                 "--eval", str(d / "data" / "eval"), "-o", str(tmp_path / "exp")]))
    assert "eval:" in out and "wrote " in out
    out = results_only(CliRunner().invoke(main, ["bench", "--eval", str(d / "data" / "eval"), "-o", str(tmp_path / "r"),
                                                 "--model", "bm25=bm25"]))
    assert out.strip().splitlines()[-1] == f"report: {tmp_path / 'r'}/report.html"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"workdir: {tmp_path / 'wd'}\nmodel: x\nprep: {{inputs: [{d / 'pdfs'}], max_tokens: 160}}\n"
                   "queries: {generator: ict, per_chunk: 1}\nsplit: {eval_ratio: 0.5}\n", encoding="utf-8")
    out = results_only(CliRunner().invoke(main, ["run", str(cfg), "--until", "split"]))
    assert out.startswith("pipeline finished")


def test_no_third_party_debug_lines_at_default_verbosity(work, tmp_path):
    """jieba logs "Building prefix dict ..." at DEBUG from a handler of its own; a user sees none of it."""
    d, _ = work
    kit = str(Path(sys.executable).parent / "kit")
    r = subprocess.run([kit, "bench", "--eval", str(d / "data" / "eval"), "-o", str(tmp_path / "r"),
                        "--model", "bm25=bm25"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    for noise in ("Building prefix dict", "Loading model cost", "DEBUG"):
        assert noise not in r.stderr, r.stderr[-2000:]


def test_prep_prints_no_pdfminer_font_warnings(tmp_path):
    """The sample statutes make pdfminer warn about fonts it cannot measure; none of that reaches the user."""
    kit = str(Path(sys.executable).parent / "kit")
    pdf = REPO / "examples" / "data" / "中华人民共和国劳动合同法实施条例_excerpt.pdf"
    r = subprocess.run([kit, "prep", str(pdf), "-o", str(tmp_path / "c.jsonl")], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "FontBBox" not in r.stderr and "pdfminer" not in r.stderr, r.stderr[-2000:]
    v = subprocess.run([kit, "-v", "prep", str(pdf), "-o", str(tmp_path / "v.jsonl")], capture_output=True,
                       text=True, timeout=600)
    assert v.returncode == 0 and "FontBBox" in v.stderr   # still there for whoever asks with -v


def test_model_commands_print_results_on_stdout(work, tiny_bert, tmp_path):
    d, _ = work
    rows = tmp_path / "rows.jsonl"
    texts = [json.loads(x)["text"] for x in (d / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:6]]
    rows.write_text("".join(json.dumps({"query": t[:12], "pos": [t], "neg": [x for x in texts if x != t][:3]},
                                       ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    out = results_only(CliRunner().invoke(main, ["train", "--model", str(tiny_bert), "--data", str(rows), "-o",
                                                 str(tmp_path / "ft"), "--dry-run"]))
    assert "torchrun" in out
    base = tmp_path / "bge-tiny-zh"
    shutil.copytree(tiny_bert, base)
    from helpers.training import fake_finetune
    ft = fake_finetune(base, tmp_path / "bge-tiny-zh-ft")
    out = results_only(CliRunner().invoke(main, ["merge", "--base", str(base), "--finetuned", str(ft), "-o",
                                                 str(tmp_path / "merged"), "--weights", "0.5"]))
    assert out.startswith(f"merged model written to {tmp_path / 'merged'}: 0.500 x fine-tuned")
    out = results_only(CliRunner().invoke(main, ["adapter", "--provider", f"local:{tiny_bert}", "--train", str(rows),
                                                 "--corpus", str(d / "corpus.jsonl"), "-o", str(tmp_path / "ad"),
                                                 "--epochs", "2"]))
    assert out.startswith("adapter saved to")


# ----------------------------------------------------------------------------------- unknown model: one line
@pytest.mark.parametrize("args", [
    ["bench", "--eval", "EVAL", "-o", "OUT", "--model", "x=local:./no/such/model"],
    ["bench", "--eval", "EVAL", "-o", "OUT", "--model", "x=local:nobody/no-such-model"],
    ["merge", "--base", "./missing-base", "--finetuned", "./missing-ft", "-o", "OUT"],
    ["train", "--model", "nobody/no-such-model", "--data", "ROWS", "-o", "OUT"],
    ["mine", "ROWS", "--corpus", "CORPUS", "--model", "a/b/c", "-o", "OUT/hn.jsonl"],
])
def test_unknown_model_is_one_line_and_exit_2(work, tmp_path, args, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    d, _ = work
    subst = {"EVAL": str(d / "data" / "eval"), "OUT": str(tmp_path / "out"), "ROWS": str(d / "data" / "train.jsonl"),
             "CORPUS": str(d / "corpus.jsonl")}
    args = [subst.get(a, a.replace("OUT", str(tmp_path / "out"))) for a in args]
    r = CliRunner().invoke(main, args)
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert r.exit_code == 2 and len(errors) == 1, r.output
    assert "Traceback" not in r.output and ("no such folder" in errors[0] or "Hugging Face cache" in errors[0])
