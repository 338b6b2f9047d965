"""Installing the kit with nothing but its own setup.cfg: what it imports is declared, the tested pins fit the
bounds, package data ships inside the wheel, and a fresh venv (`pip install .`, then `pip install -e .`) runs
`kit --version` and a small offline end-to-end job (prep one PDF, export, bench with BM25)."""
from __future__ import annotations

import ast
import configparser
import importlib.metadata as md
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
PDF = REPO / "examples" / "data" / "中华人民共和国劳动合同法实施条例_excerpt.pdf"


def install_requires() -> dict[str, Requirement]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg", encoding="utf-8")
    reqs = [Requirement(line) for line in cfg["options"]["install_requires"].strip().splitlines()
            if line.strip() and not line.strip().startswith("#")]
    return {canonicalize_name(r.name): r for r in reqs}


def kit_imports() -> set[str]:
    mods = set()
    for p in (REPO / "kit").rglob("*.py"):
        for n in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(n, ast.Import):
                mods |= {a.name.split(".")[0] for a in n.names}
            elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
                mods.add(n.module.split(".")[0])
    return {m for m in mods if m not in sys.stdlib_module_names and m != "kit"}


def optional_extras() -> dict[str, Requirement]:
    """The extras a user installs for an optional engine (``pip install kit[ray]``); `test` is not one."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg", encoding="utf-8")
    extras = cfg["options.extras_require"] if cfg.has_section("options.extras_require") else {}
    reqs = [Requirement(line) for name, block in extras.items() if name != "test"
            for line in block.strip().splitlines() if line.strip() and not line.strip().startswith("#")]
    return {canonicalize_name(r.name): r for r in reqs}


def test_every_import_of_the_kit_is_declared():
    """In install_requires, or in an optional engine's extra (imported lazily, with a one-line error without it)."""
    declared = set(install_requires()) | set(optional_extras())
    dists = md.packages_distributions()
    missing = {m: dists.get(m) for m in kit_imports()
               if not {canonicalize_name(d) for d in dists.get(m, [m])} & declared}
    assert not missing, f"imported by kit/ but not in setup.cfg install_requires: {missing}"


def test_tested_pins_fit_the_bounds():
    """requirements.txt pins the versions tested together; setup.cfg's bounds must admit every one of them."""
    bounds = install_requires()
    pins = [Requirement(line.split("#")[0].strip()) for line in (REPO / "requirements.txt").read_text().splitlines()
            if line.split("#")[0].strip()]
    outside = [str(p) for p in pins if canonicalize_name(p.name) in bounds
               and not bounds[canonicalize_name(p.name)].specifier.contains(next(iter(p.specifier)).version,
                                                                             prereleases=True)]
    assert not outside, f"pinned outside setup.cfg's bounds: {outside}"
    # the bound that matters most: transformers 5.24 breaks `import FlagEmbedding` (1.4.2)
    assert not bounds["transformers"].specifier.contains("5.24.0")
    assert bounds["transformers"].specifier.contains("5.23.0")


def source_copy(dst: Path) -> Path:
    """What `pip install .` sees, copied so that building never writes into the working tree."""
    dst.mkdir(parents=True)
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dst / name)
    shutil.copytree(REPO / "kit", dst / "kit", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dst


def test_wheel_ships_package_data_and_every_subpackage(tmp_path):
    src = source_copy(tmp_path / "src")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("kit-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    data = {str(p.relative_to(REPO)) for p in (REPO / "kit" / "data").rglob("*") if p.is_file()}
    assert data and data <= names, data - names
    packages = {str(p.parent.relative_to(REPO)) + "/__init__.py" for p in (REPO / "kit").rglob("__init__.py")}
    assert packages <= names, packages - names
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "kit = kit.cli:main" in entry


def run(cmd, env, cwd, timeout=900) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def small_eval(corpus: Path, out: Path) -> Path:
    """A few questions (a phrase from the middle of a chunk) with that chunk as the answer."""
    out.mkdir()
    chunks = [json.loads(x) for x in corpus.read_text(encoding="utf-8").splitlines() if x.strip()]
    (out / "corpus.jsonl").write_text("".join(json.dumps({"id": c["id"], "title": c["title"], "text": c["text"]},
                                                         ensure_ascii=False) + "\n" for c in chunks), encoding="utf-8")
    picked = [c for c in chunks if len(c["text"]) > 60][:6]
    (out / "test_queries.jsonl").write_text("".join(json.dumps({"id": f"q{i}", "text": c["text"][20:50]},
                                                               ensure_ascii=False) + "\n" for i, c in enumerate(picked)),
                                            encoding="utf-8")
    (out / "test_qrels.jsonl").write_text("".join(json.dumps({"qid": f"q{i}", "docid": c["id"], "relevance": 1}) + "\n"
                                                  for i, c in enumerate(picked)), encoding="utf-8")
    return out


@pytest.mark.slow
def test_fresh_venv_install_runs_end_to_end(tmp_path):
    """CI's install check: `pip install .` (not editable) into a new venv with CPU torch first, no requirements
    file; then the console script works offline from another folder; then `pip install -e .` works too."""
    src = source_copy(tmp_path / "src")
    venv = tmp_path / "venv"
    base_python = getattr(sys, "_base_executable", None) or shutil.which("python3")
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True, timeout=300)
    py, kit = venv / "bin" / "python", venv / "bin" / "kit"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH", "KIT_"))}
    env.update(PATH=f"{venv / 'bin'}:{env.get('PATH', '')}", PIP_DISABLE_PIP_VERSION_CHECK="1")
    run([str(py), "-m", "pip", "install", "-q", "torch==2.13.0"], env, tmp_path)   # CPU torch first (README)
    run([str(py), "-m", "pip", "install", "-q", str(src)], env, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", KIT_CACHE_DIR=str(tmp_path / "cache"))
    version = run([str(kit), "--version"], env, work).stdout
    assert version.strip() == f"kit, version {md.version('kit')}"
    location = run([str(py), "-c", "import kit, FlagEmbedding, LM_Cocktail; print(kit.__file__)"], env, work).stdout
    assert str(venv) in location                       # the installed copy, not the working tree
    run([str(py), "-c", "from kit.catalog import catalog; assert catalog()"], env, work)   # prices: package data
    prep = run([str(kit), "prep", str(PDF), "-o", "corpus.jsonl"], env, work).stdout
    assert "wrote corpus.jsonl" in prep
    ev = small_eval(work / "corpus.jsonl", work / "eval")
    run([str(kit), "export", "--eval", str(ev), "-o", "export"], env, work)
    bench = run([str(kit), "bench", "--eval", "export/beir", "-o", "report", "--model", "bm25=bm25"], env, work)
    results = json.loads((work / "report" / "results.json").read_text(encoding="utf-8"))
    assert results["models"]["bm25"]["domain"]["metrics"]["mrr@10"] > 0.5 and "report.html" in bench.stdout
    # editable install of the same tree: the console script now runs the source folder
    run([str(py), "-m", "pip", "install", "-q", "-e", str(src)], env, tmp_path)
    assert run([str(kit), "--version"], env, work).stdout == version
    location = run([str(py), "-c", "import kit, FlagEmbedding; print(kit.__file__)"], env, work).stdout
    assert str(src) in location
    assert re.search(r"transformers==5\.2[0-3]\.", run([str(py), "-m", "pip", "freeze"], env, work).stdout)
