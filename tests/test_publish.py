"""`kit publish`: the card's hub metadata checked with huggingface_hub's own parser, bge-m3 heads reloaded with
BGEM3FlagModel before anything goes, training state and keys never uploaded, private by default. No network here:
the upload calls are recorded by stand-ins of huggingface_hub's HfApi and modelscope's HubApi methods (their
signatures are the installed libraries')."""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from kit.cli import main
from kit.io import KitError, write_json
from kit.modelfolder import finish_output
from kit.publish import PublishOptions, card, publish
from kit.registry import resolve

RESULTS = {"/data/eval": {"name": "merged-0.5", "measured": "2026-06-01 10:00:00", "queries": 120, "corpus": 700,
                          "questions": {"questions": "real"}, "k": 10,
                          "metrics": {"mrr": 0.6123, "recall": 0.8811, "ndcg": 0.6702, "hit": 0.8811}}}


def kit_folder(src: Path, dst: Path, base: str = "BAAI/bge-small-zh-v1.5") -> Path:
    shutil.copytree(src, dst)
    finish_output(dst, replace(resolve(str(src)), name_or_path=str(src)))
    write_json(dst / "kit_manifest.json", {"stage": "train", "base_model": base, "finished": "2026-06-01"})
    write_json(dst / "kit_results.json", RESULTS)
    (dst / "checkpoint-40").mkdir()
    (dst / "checkpoint-40" / "optimizer.pt").write_bytes(b"state")
    (dst / ".cache").mkdir()
    (dst / ".cache" / "x").write_text("x")
    return dst


@pytest.fixture
def folder(tiny_bert, tmp_path):
    return kit_folder(tiny_bert, tmp_path / "model")


def digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())).hexdigest()


def test_the_card_metadata_is_what_the_hub_parses(folder):
    from huggingface_hub import ModelCard

    text, meta = card(folder, "acme/laws-zh", "apache-2.0")
    data = ModelCard(text).data
    assert data.base_model == "BAAI/bge-small-zh-v1.5" and data.library_name == "sentence-transformers"
    assert data.pipeline_tag == "sentence-similarity" and data.language == ["zh"] and data.license == "apache-2.0"
    got = {r.metric_type: r.metric_value for r in data.eval_results}
    assert got == {"mrr_at_10": 0.6123, "recall_at_10": 0.8811, "ndcg_at_10": 0.6702, "hit_at_10": 0.8811}
    assert data.model_name == "laws-zh" and "## Use it" in text and meta["model-index results"] == 4


def test_dry_run_lists_what_goes_where_and_changes_nothing(folder):
    before = digest(folder)
    r = CliRunner().invoke(main, ["publish", str(folder), "--repo", "acme/laws-zh", "--dry-run"])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("would upload to https://huggingface.co/acme/laws-zh (hf, private")
    listed = [line.split()[0] for line in r.stdout.splitlines() if line.startswith("  ")]
    assert "model.safetensors" in listed and "README.md" in listed and "kit_results.json" in listed
    assert not any(x.startswith(("checkpoint-", ".cache")) for x in listed)
    assert digest(folder) == before


def test_upload_to_the_hugging_face_hub(folder, monkeypatch):
    from huggingface_hub import HfApi

    calls = []
    for name in ("create_repo", "create_branch", "upload_folder"):
        monkeypatch.setattr(HfApi, name, lambda self, *a, _n=name, **k: calls.append((_n, a, k, self.token)))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    with pytest.raises(KitError, match="no hf token in the environment"):
        publish(PublishOptions(folder=str(folder), repo="acme/laws-zh"))
    assert calls == []
    monkeypatch.setenv("HF_TOKEN", "hf_SecretToken0123456789")
    r = publish(PublishOptions(folder=str(folder), repo="acme/laws-zh", revision="v2"))
    assert [c[0] for c in calls] == ["create_repo", "create_branch", "upload_folder"]
    assert calls[0][2]["private"] is True and calls[0][3] == "hf_SecretToken0123456789"
    assert calls[1][2]["branch"] == "v2" and calls[2][2]["revision"] == "v2"
    assert sorted(calls[2][2]["allow_patterns"]) == sorted(f for f, _ in r.files)
    assert "hf_SecretToken0123456789" not in r.summary() and r.uploaded
    assert "model-index:" in (folder / "README.md").read_text(encoding="utf-8")


def test_upload_to_modelscope(folder, monkeypatch):
    from modelscope.hub.api import HubApi

    calls = []
    monkeypatch.setattr(HubApi, "login", lambda self, token: calls.append(("login", token)))
    monkeypatch.setattr(HubApi, "create_repo", lambda self, repo, **k: calls.append(("create_repo", repo, k)))
    monkeypatch.setattr(HubApi, "upload_folder", lambda self, **k: calls.append(("upload_folder", k)))
    monkeypatch.setenv("MODELSCOPE_API_TOKEN", "ms-0123456789abcdef")
    r = publish(PublishOptions(folder=str(folder), repo="acme/laws-zh", hub="modelscope", private=False))
    assert calls[0] == ("login", "ms-0123456789abcdef") and calls[1][2]["visibility"] == 5
    assert "configuration.json" in calls[2][1]["allow_patterns"] and (folder / "configuration.json").exists()
    assert r.url == "https://modelscope.cn/models/acme/laws-zh"


def test_a_key_in_a_record_file_stops_everything(folder):
    m = json.loads((folder / "kit_manifest.json").read_text())
    m["command"] = "kit train --api-key=sk-live0123456789abcdef"
    write_json(folder / "kit_manifest.json", m)
    with pytest.raises(KitError, match="kit_manifest.json: holds what looks like a key"):
        publish(PublishOptions(folder=str(folder), repo="acme/laws-zh", dry_run=True))


def test_bad_input_is_one_line(tmp_path, folder):
    r = CliRunner().invoke(main, ["publish", str(tmp_path / "nope"), "--repo", "acme/x", "--dry-run"])
    assert r.exit_code == 2 and "no such folder" in r.output and "Traceback" not in r.output
    with pytest.raises(KitError, match="not a repository id"):
        publish(PublishOptions(folder=str(folder), repo="laws-zh", dry_run=True))


@pytest.fixture(scope="module")
def m3_folder(tmp_path_factory):
    from helpers.training import build_m3

    return build_m3(tmp_path_factory.mktemp("m3") / "bge-m3-tiny")


def test_bge_m3_heads_are_reloaded_before_anything_goes(m3_folder, tmp_path):
    r = publish(PublishOptions(folder=str(m3_folder), repo="acme/m3-laws", dry_run=True))
    assert min(r.heads["sparse_tokens"]) > 0 and min(r.heads["colbert_vectors"]) > 0
    assert {"sparse_linear.pt", "colbert_linear.pt"} <= {f for f, _ in r.files}
    no_colbert = shutil.copytree(m3_folder, tmp_path / "no-colbert")
    (no_colbert / "colbert_linear.pt").unlink()
    with pytest.raises(KitError, match="without colbert_linear.pt: its sparse and ColBERT outputs would be random"):
        publish(PublishOptions(folder=str(no_colbert), repo="acme/m3-laws", dry_run=True))
    import torch

    dead = shutil.copytree(m3_folder, tmp_path / "dead-sparse")
    head = torch.load(dead / "sparse_linear.pt", weights_only=True)
    head["bias"].fill_(-100.0)                      # relu(-100 + ...) = 0: no token weighs anything
    torch.save(head, dead / "sparse_linear.pt")
    with pytest.raises(KitError, match="the sparse head gives a text no lexical weight"):
        publish(PublishOptions(folder=str(dead), repo="acme/m3-laws", dry_run=True))
