"""`kit publish`: a model folder made ready for the Hugging Face Hub or ModelScope, checked, then uploaded.

Steps (each a function): :func:`check_folder` (a loadable model: config, weights, tokenizer) -> :func:`card`
(the model card with the Hub's metadata: base_model, library_name, pipeline_tag, language, tags and the measured
results as ``model-index``, built with ``huggingface_hub``'s own ``ModelCardData``/``EvalResult`` and parsed back
with its ``ModelCard``: what the Hub would reject fails here) -> :func:`check_heads` (a bge-m3 folder is reloaded with
FlagEmbedding's ``BGEM3FlagModel``: both heads present, loaded from the files rather than initialised at random, and
the sparse output non-empty) -> :func:`plan` (what goes where: training state and hidden files stay; a record file
holding what looks like a key stops everything) -> :func:`upload` (``huggingface_hub`` or the ``modelscope`` SDK, token
from the environment only, private unless --public). ``--dry-run`` stops before writing or uploading anything.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .io import KitError, read_json, write_json, write_text
from .options import option

HUBS = ("hf", "modelscope")
TOKEN_VARIABLES = {"hf": ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"), "modelscope": ("MODELSCOPE_API_TOKEN",)}
SKIP_DIRS = ("checkpoint-", "runs", "__pycache__", "logs")
SKIP_FILES = {"optimizer.pt", "scheduler.pt", "trainer_state.json", "training_args.bin", "rng_state.pth"}
SCANNED = ("README.md", "kit_manifest.json", "kit_model.json", "kit_results.json", "config.json",
           "config_sentence_transformers.json", "configuration.json")
SAMPLE = ["劳动合同应当以书面形式订立。", "用人单位应当按时足额支付劳动报酬。"]


@dataclass
class PublishOptions:
    """`kit publish`'s flags."""

    folder: str = option(argument=True, yaml=False, help="The model folder (kit train / merge / deploy output).")
    repo: str = option(yaml=False, required=True, help="ORG/NAME on the hub.")
    hub: str = option("hf", choices=HUBS, yaml=False, help="hf (Hugging Face Hub) or modelscope.")
    private: bool = option(True, yaml=False, help="Create the repository private (--no-private: public).")
    revision: str | None = option(None, yaml=False, help="Branch to upload to (hf: created from main when missing; "
                                  "default main / ModelScope's master).")
    license: str | None = option(None, yaml=False, help="Licence id for the card's metadata (e.g. apache-2.0).")
    dry_run: bool = option(False, yaml=False, help="List what would go where, check the card and the heads; write "
                           "and upload nothing.")


@dataclass
class PublishResult:
    repo: str
    hub: str
    url: str
    files: list = field(default_factory=list)      # (path in the repo, bytes)
    metadata: dict = field(default_factory=dict)
    heads: dict = field(default_factory=dict)
    uploaded: bool = False
    private: bool = True
    revision: str | None = None

    def summary(self) -> str:
        total = sum(n for _, n in self.files)
        head = (f"{'uploaded to' if self.uploaded else 'would upload to'} {self.url} ({self.hub}, "
                f"{'private' if self.private else 'public'}, revision {self.revision or 'default'}): "
                f"{len(self.files)} files, {total / 1e6:.1f} MB")
        lines = [head] + [f"  {p}  {n / 1e6:.2f} MB" for p, n in self.files]
        lines.append("card metadata: " + ", ".join(f"{k}={v}" for k, v in self.metadata.items()))
        if self.heads:
            lines.append(f"bge-m3 heads: {self.heads}")
        return "\n".join(lines)


def check_folder(folder: Path) -> None:
    from .modelfolder import weight_files

    if not folder.is_dir():
        raise KitError(f"{folder}: no such folder")
    missing = [n for n in ("config.json",) if not (folder / n).exists()]
    if missing or not weight_files(folder):
        raise KitError(f"{folder}: not a model folder ({', '.join(missing) or 'no weights'} missing)")
    if not any((folder / n).exists() for n in ("tokenizer.json", "tokenizer_config.json", "vocab.txt")):
        raise KitError(f"{folder}: no tokenizer files; a published model would not load")


def _load(folder: Path, name: str) -> dict:
    return read_json(folder / name) if (folder / name).exists() else {}


def eval_results(folder: Path) -> list:
    """kit_results.json (what kit bench measured) as huggingface_hub EvalResults: one per eval set and metric."""
    from huggingface_hub import EvalResult

    out = []
    for path, r in sorted(_load(folder, "kit_results.json").items()):
        k, questions = r.get("k", 10), (r.get("questions") or {}).get("questions", "unknown")
        for metric, value in (r.get("metrics") or {}).items():
            if value is None:
                continue
            out.append(EvalResult(task_type="retrieval", task_name="Retrieval", dataset_type="kit-eval",
                                  dataset_name=f"{Path(path).name} ({r.get('queries')} {questions} questions, "
                                               f"{r.get('corpus')} passages)", dataset_split="test",
                                  metric_type=f"{metric}_at_{k}", metric_name=f"{metric.upper()}@{k}",
                                  metric_value=round(float(value), 4)))
    return out


def base_model(folder: Path) -> str | None:
    """The hub id the model descends from: the base named in kit_manifest.json when it is a hub id, else the base
    folder's own card's base_model (a local copy of a hub model), else None (the Hub wants an id, not a path)."""
    from huggingface_hub import ModelCard

    man = _load(folder, "kit_manifest.json")
    base = str(man.get("base_model") or man.get("base") or "")
    if base and not Path(base).exists() and base.count("/") == 1:
        return base
    if base and (Path(base) / "README.md").is_file():
        try:
            found = ModelCard.load(Path(base) / "README.md", ignore_metadata_errors=True).data.base_model
        except Exception:  # noqa: BLE001 - an unreadable card of the base names no base
            return None
        return found if isinstance(found, str) else None
    return None


def metadata(folder: Path, repo: str, license: str | None):
    from huggingface_hub import ModelCardData

    from .registry import resolve

    spec = resolve(str(folder))
    name = repo.split("/")[-1]
    return ModelCardData(base_model=base_model(folder), library_name="sentence-transformers",
                         pipeline_tag="sentence-similarity", language=["zh"], license=license, model_name=name,
                         tags=["sentence-transformers", "feature-extraction", spec.family, "kit"],
                         eval_results=eval_results(folder) or None)


def _body(folder: Path) -> str:
    """The card's text without its front matter: the kit's card for a kit folder, else the folder's README."""
    from .modelcard import card_text, is_kit_folder

    text = card_text(folder) if is_kit_folder(folder) else (
        (folder / "README.md").read_text(encoding="utf-8") if (folder / "README.md").exists() else f"# {folder.name}\n")
    if text.startswith("---"):
        end = text.find("\n---", 3)
        text = text[end + 4:] if end > 0 else text
    return text.lstrip("\n")


def card(folder: Path, repo: str, license: str | None) -> tuple[str, dict]:
    """(README.md text, the metadata as the Hub parses it). Parsed back with huggingface_hub's ModelCard: a card
    whose metadata the library rejects, or whose model-index does not round-trip, is one line here."""
    from huggingface_hub import ModelCard

    data = metadata(folder, repo, license)
    text = f"---\n{data.to_yaml()}\n---\n\n{_body(folder)}"
    try:
        parsed = ModelCard(text).data
    except Exception as e:  # noqa: BLE001 - the library's own verdict, in one line
        raise KitError(f"{folder}: the card's metadata does not parse with huggingface_hub ({e})") from None
    back = [(r.metric_type, r.metric_value) for r in (parsed.eval_results or [])]
    if back != [(r.metric_type, r.metric_value) for r in (data.eval_results or [])]:
        raise KitError(f"{folder}: the card's model-index does not read back as written")
    meta = parsed.to_dict()
    return text, {k: meta[k] for k in ("base_model", "library_name", "pipeline_tag", "language", "license") if
                  meta.get(k)} | {"model-index results": len(back)}


def check_heads(folder: Path) -> dict:
    """A bge-m3 folder, reloaded as users will load it: both head files, loaded from the files (BGEM3FlagModel
    initialises missing heads at random without an error), sparse output non-empty, ColBERT vectors finite."""
    import numpy as np
    import torch

    from .modelfolder import HEAD_FILES
    from .providers.m3 import is_m3_folder
    from .registry import resolve

    spec = resolve(str(folder))
    present = [h for h in HEAD_FILES if (folder / h).exists()]
    if spec.family != "bge-m3" and not present:
        return {}
    if not is_m3_folder(folder):
        raise KitError(f"{folder}: a bge-m3 folder without {', '.join(sorted(set(HEAD_FILES) - set(present)))}: "
                       f"its sparse and ColBERT outputs would be random; not published")
    from FlagEmbedding import BGEM3FlagModel

    model = BGEM3FlagModel(str(folder), use_fp16=False, devices="cpu", passage_max_length=spec.max_length)
    for name, module in (("sparse_linear.pt", model.model.sparse_linear), ("colbert_linear.pt", model.model.colbert_linear)):
        saved = torch.load(folder / name, map_location="cpu", weights_only=True)
        if any(not torch.equal(saved[k].float(), v.float().cpu()) for k, v in module.state_dict().items()):
            raise KitError(f"{folder}: {name} was not loaded by BGEM3FlagModel (its weights differ from the file)")
    out = model.encode(SAMPLE, batch_size=len(SAMPLE), max_length=min(128, spec.max_length), return_dense=True,
                       return_sparse=True, return_colbert_vecs=True)
    weights = [sum(1 for v in lw.values() if float(v) > 0) for lw in out["lexical_weights"]]
    if min(weights) == 0:
        raise KitError(f"{folder}: the sparse head gives a text no lexical weight; not published")
    if not all(len(v) and np.isfinite(v).all() for v in out["colbert_vecs"]):
        raise KitError(f"{folder}: the ColBERT head gives empty or non-finite vectors; not published")
    return {"sparse_tokens": weights, "colbert_vectors": [len(v) for v in out["colbert_vecs"]]}


def plan(folder: Path, hub: str) -> list[tuple[str, int]]:
    """(path in the repository, bytes) of every file that goes: not training state, not hidden files."""
    from .secrets import redact_text

    files = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if not p.is_file() or any(part.startswith((".", *SKIP_DIRS)) for part in rel.parts) or p.name in SKIP_FILES:
            continue
        if p.name in SCANNED and p.stat().st_size < 5_000_000:
            text = p.read_text(encoding="utf-8", errors="replace")
            if redact_text(text) != text:
                raise KitError(f"{p}: holds what looks like a key or password; nothing was uploaded (remove it first)")
        files.append((rel.as_posix(), p.stat().st_size))
    names = {f for f, _ in files} | {"README.md"} | ({"configuration.json"} if hub == "modelscope" else set())
    return sorted((n, (folder / n).stat().st_size if (folder / n).exists() else 0) for n in names)


def token(hub: str) -> str:
    for name in TOKEN_VARIABLES[hub]:
        if os.environ.get(name):
            from .secrets import remember_key_variable

            remember_key_variable(name)
            return os.environ[name]
    raise KitError(f"no {hub} token in the environment ({' or '.join(TOKEN_VARIABLES[hub])}); --dry-run lists what "
                   f"would go where without one")


def upload(folder: Path, o: PublishOptions, files: list[str]) -> None:
    from .secrets import redact_text

    secret = token(o.hub)
    message = "kit publish"
    try:
        if o.hub == "hf":
            from huggingface_hub import HfApi

            api = HfApi(token=secret)
            api.create_repo(o.repo, private=o.private, repo_type="model", exist_ok=True)
            if o.revision and o.revision != "main":
                api.create_branch(o.repo, branch=o.revision, exist_ok=True)
            api.upload_folder(repo_id=o.repo, folder_path=str(folder), revision=o.revision, allow_patterns=files,
                              commit_message=message)
        else:
            try:
                from modelscope.hub.api import HubApi
            except ImportError:
                raise KitError("--hub modelscope needs the modelscope SDK: pip install modelscope") from None
            api = HubApi()
            api.login(secret)
            api.create_repo(o.repo, visibility=1 if o.private else 5, license=o.license, exist_ok=True)
            api.upload_folder(repo_id=o.repo, folder_path=str(folder), revision=o.revision, allow_patterns=files,
                              commit_message=message)
    except KitError:
        raise
    except Exception as e:  # noqa: BLE001 - every failed call is one line, without the token
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise KitError(redact_text(f"upload to {o.hub} {o.repo} failed ({type(e).__name__}: {first[:300]})")) from None


def url(o: PublishOptions) -> str:
    if o.hub == "hf":
        return f"https://huggingface.co/{o.repo}" + (f"/tree/{o.revision}" if o.revision else "")
    return f"https://modelscope.cn/models/{o.repo}" + (f"/files?Revision={o.revision}" if o.revision else "")


def publish(o: PublishOptions) -> PublishResult:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    folder = Path(o.folder)
    try:
        if o.repo.count("/") != 1:
            raise HFValidationError("expected ORG/NAME")
        validate_repo_id(o.repo)
    except HFValidationError as e:
        raise KitError(f"--repo {o.repo!r}: not a repository id ORG/NAME ({e})") from None
    check_folder(folder)
    text, meta = card(folder, o.repo, o.license)
    heads = check_heads(folder)
    files = plan(folder, o.hub)
    result = PublishResult(o.repo, o.hub, url(o), files, meta, heads, private=o.private, revision=o.revision)
    if o.dry_run:
        return result
    write_text(folder / "README.md", text)
    if o.hub == "modelscope" and not (folder / "configuration.json").exists():
        write_json(folder / "configuration.json", {"framework": "pytorch", "task": "sentence-embedding"})
    result.files = plan(folder, o.hub)
    upload(folder, o, [f for f, _ in result.files])
    result.uploaded = True
    return result


__all__ = ["PublishOptions", "PublishResult", "card", "check_heads", "plan", "publish"]
