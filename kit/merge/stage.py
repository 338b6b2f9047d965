"""Merge a fine-tuned embedding model with its base (LM_Cocktail) so it keeps general ability.

LM_Cocktail does the weight averaging (``mix_models``) and the example-driven weight search
(``mix_models_with_data``). What it does not do, and the kit adds: bge-m3's sparse/ColBERT heads
(separate ``*.pt`` files LM_Cocktail never reads) are merged with the same weights, and the
sentence-transformers files are rewritten with the model's real pooling and prompts (LM_Cocktail
writes CLS pooling for every encoder, which is wrong for mean-pooled models such as e5).
"""
from __future__ import annotations

import contextlib
import io
import random
import re
import sys
from dataclasses import replace
from pathlib import Path

from ..formats import read_training_rows
from ..io import KitError, ReadReport, write_json
from ..modelcard import write_card
from ..modelfolder import HEAD_FILES, MANIFEST_FILE, cast_weights, git_revision, local_model_dir, now, \
    package_versions, save_dtype_for, stored_dtype, write_sentence_transformers_files
from ..options import validated
from ..registry import ensure_available, resolve, write_kit_model
from ..logs import note
from .options import MergeOptions


def parse_weights(values) -> list[float]:
    """Accept 0.5, "0.3,0.5" or [0.3, "0.5,0.7"]; every weight must lie in [0, 1]."""
    if isinstance(values, (int, float, str)):
        values = [values]
    out: list[float] = []
    for v in values:
        for part in str(v).split(","):
            if part.strip():
                try:
                    w = float(part)
                except ValueError:
                    raise KitError(f"merge weight {part!r} is not a number") from None
                if not 0.0 <= w <= 1.0:
                    raise KitError(f"merge weight {w} must lie between 0 and 1 (weight of the fine-tuned model)")
                out.append(w)
    if not out:
        raise KitError("no merge weights given")
    return out


def merge_heads(base: Path, finetuned: Path, output: Path, weight: float) -> list[str]:
    """Merge bge-m3's sparse/ColBERT heads: w * fine-tuned + (1 - w) * base, tensor by tensor."""
    import shutil

    import torch

    done = []
    for head in HEAD_FILES:
        ft_file, base_file = finetuned / head, base / head
        if ft_file.exists() and base_file.exists():
            ft = torch.load(ft_file, map_location="cpu", weights_only=True)
            bs = torch.load(base_file, map_location="cpu", weights_only=True)
            if ft.keys() != bs.keys():
                raise KitError(f"{ft_file}: keys differ from {base_file}; not the same architecture")
            merged = {k: weight * ft[k].float() + (1 - weight) * bs[k].float() for k in ft}
            merged = {k: v.to(ft[k].dtype) for k, v in merged.items()}
            torch.save(merged, output / head)
            done.append(head)
        elif ft_file.exists() or base_file.exists():
            src = ft_file if ft_file.exists() else base_file
            note(f"[kit merge] {head} only in {src.parent}; copied unchanged")
            shutil.copy2(src, output / head)
            done.append(head)
    return done


def _local_dir(name: str) -> Path:
    d = local_model_dir(name)
    if d is None:
        raise KitError(f"{name}: not a local folder and not in the Hugging Face cache")
    return d


def load_examples(path, spec, count: int, neg_number: int, seed: int) -> tuple[list[dict], int]:
    """Rows for mix_models_with_data, with the model's instructions applied as at inference."""
    report = ReadReport()
    rows = [r for _, r in read_training_rows(path, report) if r.get("neg")]
    if report:
        note(report.summary())
    if not rows:
        raise KitError(f"{path}: no rows with query, pos and neg for --auto merging")
    random.Random(seed).shuffle(rows)
    rows = rows[:count]
    neg_number = max(1, min(neg_number, min(len(r["neg"]) for r in rows)))
    examples = [{"query": spec.query_text(r["query"]),
                 "pos": [spec.passage_text(p) for p in r["pos"]],
                 "neg": [spec.passage_text(n) for n in r["neg"]]} for r in rows]
    return examples, neg_number


@contextlib.contextmanager
def fp32_loading():
    """LM_Cocktail 0.0.4 loads models with transformers' default dtype, which transformers 5 made "auto" (the
    stored dtype): a bf16 fine-tuned model would be averaged in bf16, rounding at every step. Its loader is
    pointed at fp32 for the merge, so the average is exact and the only rounding is the final cast (save_dtype)."""
    import torch
    from LM_Cocktail import utils
    from transformers import AutoModel

    original = utils.load_embedder

    def load_embedder(model_name: str, trust_remote_code: bool):
        return AutoModel.from_pretrained(model_name, trust_remote_code=trust_remote_code, device_map={"": "cpu"},
                                         dtype=torch.float32)

    utils.load_embedder = load_embedder
    try:
        yield
    finally:
        utils.load_embedder = original


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, s):
        for st in self.streams:
            st.write(s)
        return len(s)


def _merge_one(base: str, finetuned: str, out: Path, weight: float | None, options: MergeOptions,
               spec) -> float:
    from LM_Cocktail import mix_models, mix_models_with_data

    models = [finetuned, base]
    captured = io.StringIO()
    # LM_Cocktail prints its progress (and the weights it chose) to stdout: to stderr, where logs go, and read
    with contextlib.redirect_stdout(_Tee(sys.stderr, captured)), fp32_loading():
        if weight is None:
            examples, neg_number = load_examples(options.example_data, spec, options.example_count,
                                                 options.neg_number, options.seed)
            random.seed(options.seed)   # LM_Cocktail samples negatives with the global RNG
            # 0.0.4 names this parameter `example_ata` (sic), so it is passed positionally.
            mix_models_with_data(models, "encoder", examples, options.temperature, options.batch_size,
                                 options.max_input_length, neg_number, str(out))
            m = re.search(rf"^{re.escape(finetuned)} ([0-9.eE-]+)$", captured.getvalue(), re.M)
            if not m:
                raise KitError("could not read the weights LM_Cocktail chose")
            weight = float(m.group(1))
        else:
            mix_models(models, "encoder", [weight, 1 - weight], str(out))
    return weight


def merge(base: str, finetuned: str, output, options: MergeOptions | None = None) -> list[Path]:
    """Merge ``finetuned`` into ``base``; one output folder per weight (``OUT/w0.5`` when several)."""
    options = validated(options or MergeOptions(), "merge")
    output = Path(output)
    if options.auto and not options.example_data:
        raise KitError("--auto needs --example-data FILE (a few query/pos/neg rows from your domain)")
    ensure_available(base, "base model")
    ensure_available(finetuned, "fine-tuned model")
    ft_spec = resolve(finetuned)
    base_spec = resolve(base)
    if ft_spec.family != base_spec.family:
        note(f"[kit merge] note: base looks like {base_spec.family}, fine-tuned like {ft_spec.family}; "
              f"using the fine-tuned model's settings")
    ft_dir = local_model_dir(finetuned)   # a hub id not downloaded yet: LM_Cocktail fetches it; fp32 then
    dtype = save_dtype_for(options.save_dtype, stored_dtype(ft_dir) if ft_dir is not None else None)
    weights: list[float | None] = [None] if options.auto else parse_weights(options.weights)
    outs = []
    for w in weights:
        out = output if len(weights) == 1 else output / f"w{w:g}"
        started = now()
        used = _merge_one(base, finetuned, out, w, options, ft_spec)
        # the base's family counts too: a bge-m3 fine-tuned outside the kit (no kit_model.json, no heads: trained
        # without unified fine-tuning) is not recognised as bge-m3, and its merge would lose the base's heads
        heads = merge_heads(_local_dir(base), _local_dir(finetuned), out, used) \
            if "bge-m3" in (ft_spec.family, base_spec.family) else []
        spec = replace(ft_spec, name_or_path=str(out))
        # LM_Cocktail just wrote CLS pooling and no prompts; write what the model really uses.
        write_sentence_transformers_files(out, spec)
        write_kit_model(out, spec)
        stored = cast_weights(out, dtype)
        write_json(out / MANIFEST_FILE, {
            "stage": "merge",
            "method": "LM_Cocktail.mix_models_with_data" if options.auto else "LM_Cocktail.mix_models",
            "base": base, "finetuned": finetuned,
            "weight_finetuned": used, "weight_base": 1 - used,
            "example_data": options.example_data if options.auto else None,
            "heads_merged": heads,
            "family": spec.family, "pooling": spec.pooling, "weights": stored,
            "packages": package_versions(), "git_revision": git_revision(),
            "started": started, "finished": now(),
        })
        write_card(out)   # replaces the card LM_Cocktail's sentence-transformers save wrote (it says CLS pooling)
        note(f"[kit merge] {out}: {used:.3f} x fine-tuned + {1 - used:.3f} x base")
        outs.append(out)
    return outs
