"""Shared fixtures: paths to the real data in ../shared, tiny random models built in the session.

Tiny models keep unit tests fast (a few ms per batch); tests of *quality* use the real starter
encoder ../shared/models/zh-e5-small.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KIT_SHARED", REPO.parent / "shared")).resolve()
DATA = SHARED / "data"
ZH_E5 = SHARED / "models" / "zh-e5-small"
LAW_PDFS = DATA / "pdfs" / "laws"
BROKEN_PDFS = DATA / "pdfs" / "broken"
CMRC = DATA / "retrieval" / "cmrc2018" / "beir"


def demo_config(workdir, model) -> dict:
    """configs/demo.yaml as the pipeline tests run it: a test workdir, the given model, the sample PDFs."""
    import yaml

    cfg = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text(encoding="utf-8"))
    cfg.update(workdir=str(workdir), model=str(model))
    cfg["prep"]["inputs"] = [str(REPO / "examples" / "data")]
    return cfg


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long tests (real training / end-to-end); CI runs them")


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Every test session gets its own embedding cache, so no test passes thanks to an earlier run."""
    d = tmp_path_factory.mktemp("kit_cache")
    old = os.environ.get("KIT_CACHE_DIR")
    os.environ["KIT_CACHE_DIR"] = str(d)
    yield d
    if old is None:
        os.environ.pop("KIT_CACHE_DIR", None)
    else:
        os.environ["KIT_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.exists():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def zh_e5_path() -> Path:
    if not (ZH_E5 / "model.safetensors").exists():
        pytest.skip(f"starter model not found at {ZH_E5}")
    return ZH_E5


# Characters for the tiny BERT's vocabulary: enough common Chinese to tokenise law text sensibly.
_TINY_CHARS = (
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没"
    "日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明"
    "其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却"
    "代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利"
    "条款章节编劳动合同用人单位者工资解除终止订立履行变更规定依照本法应当应该违反赔偿责任义务权利保护社会保险试用期经济补偿"
    "，。、；：？！“”（）《》0123456789abcdefghijklmnopqrstuvwxyz"
)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer, 64-wide random BERT with a character vocabulary, saved as a local HF folder."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    d = tmp_path_factory.mktemp("tiny-bert-zh")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(_TINY_CHARS))
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = BertTokenizerFast(vocab_file=str(d / "vocab.txt"), do_lower_case=True, tokenize_chinese_chars=True)
    tok.model_max_length = 128
    tok.save_pretrained(d)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=128, max_position_embeddings=130)
    BertModel(cfg).save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def tiny_xlmr(tmp_path_factory, zh_e5_path) -> Path:
    """A 2-layer random XLM-R with the real XLM-R tokenizer (the bge-m3 path needs its special tokens)."""
    import torch
    from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaModel

    d = tmp_path_factory.mktemp("tiny-xlmr")
    tok = AutoTokenizer.from_pretrained(str(zh_e5_path))
    tok.model_max_length = 128
    tok.save_pretrained(d)
    torch.manual_seed(0)
    cfg = XLMRobertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=130, pad_token_id=tok.pad_token_id,
                           bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    XLMRobertaModel(cfg).save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory, tiny_bert) -> Path:
    """The tiny BERT with a random one-logit classification head: a cross-encoder as FlagEmbedding's reranker
    trainer would start from it (AutoModelForSequenceClassification, num_labels=1)."""
    import shutil

    import torch
    from transformers import BertForSequenceClassification

    d = tmp_path_factory.mktemp("tiny-ce")
    shutil.copytree(tiny_bert, d, dirs_exist_ok=True)
    torch.manual_seed(1)
    BertForSequenceClassification.from_pretrained(str(tiny_bert), num_labels=1).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def small_eval(tmp_path_factory):
    """80 cmrc2018 paragraphs and their questions, written in FlagEmbedding's custom-eval layout."""
    if not (CMRC / "corpus.jsonl").exists():
        pytest.skip("cmrc2018 not available")
    d = tmp_path_factory.mktemp("eval")
    corpus = [json.loads(x) for x in open(CMRC / "corpus.jsonl", encoding="utf-8")][:80]
    ids = {c["_id"] for c in corpus}
    qrels = [line.rstrip("\n").split("\t") for line in open(CMRC / "qrels.tsv", encoding="utf-8")][1:]
    qrels = [q for q in qrels if q[1] in ids][:60]
    queries = {json.loads(x)["_id"]: json.loads(x)["text"] for x in open(CMRC / "queries.jsonl", encoding="utf-8")}
    with open(d / "corpus.jsonl", "w", encoding="utf-8") as f:
        for c in corpus:
            f.write(json.dumps({"id": c["_id"], "title": c["title"], "text": c["text"]}, ensure_ascii=False) + "\n")
        f.write("{not json\n")  # a bad line is reported, not fatal
    with open(d / "test_queries.jsonl", "w", encoding="utf-8") as f:
        for q, _, _ in qrels:
            f.write(json.dumps({"id": q, "text": queries[q]}, ensure_ascii=False) + "\n")
    with open(d / "test_qrels.jsonl", "w", encoding="utf-8") as f:
        for q, doc, rel in qrels:
            f.write(json.dumps({"qid": q, "docid": doc, "relevance": int(rel)}) + "\n")
    return d
