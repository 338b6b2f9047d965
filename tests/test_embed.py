"""LocalEncoder + EmbeddingCache: same vectors as a reference implementation, each text embedded once."""
import numpy as np
import pytest

from kit.embed import EmbeddingCache, LocalEncoder, embed_with_cache


def test_cache_roundtrip_and_resume(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    calls = []
    fail_on_call = [2]

    def compute(batch):
        calls.append(list(batch))
        if len(calls) == fail_on_call[0]:
            raise RuntimeError("killed")
        return np.array([[len(t), 1.0] for t in batch], dtype=np.float32)

    texts = ["a", "bb", "ccc", "dddd", "a"]
    with pytest.raises(RuntimeError):
        embed_with_cache("ns", texts, compute, cache, batch_size=2)
    assert cache.count("ns") == 2  # the finished batch survived the failure
    calls.clear()
    fail_on_call[0] = -1
    vecs, stats = embed_with_cache("ns", texts, compute, cache, batch_size=2)
    assert stats == {**stats, "unique": 4, "cached": 2, "encoded": 2}
    assert sum(len(c) for c in calls) == 2  # only the two missing texts were computed
    assert vecs[:, 0].tolist() == [1, 2, 3, 4, 1]
    # a fresh cache object on the same file sees everything
    assert EmbeddingCache(tmp_path / "c.sqlite").count("ns") == 4


def test_local_encoder_matches_sentence_transformers(zh_e5_path, tmp_path):
    from sentence_transformers import SentenceTransformer

    queries = ["劳动合同应当采用什么形式？", "试用期最长多久"]
    passages = ["建立劳动关系，应当订立书面劳动合同。", "劳动合同期限三个月以上不满一年的，试用期不得超过一个月。"]
    enc = LocalEncoder(str(zh_e5_path), precision="fp32", cache=tmp_path / "c.sqlite", progress=False)
    q, p = enc.encode_queries(queries), enc.encode_passages(passages)
    st = SentenceTransformer(str(zh_e5_path), device="cpu")
    q_ref = st.encode(queries, prompt_name="query", normalize_embeddings=True)
    p_ref = st.encode(passages, prompt_name="passage", normalize_embeddings=True)
    assert np.allclose(q, q_ref, atol=1e-4) and np.allclose(p, p_ref, atol=1e-4)
    # the right passage wins for each question
    assert (q @ p.T).argmax(1).tolist() == [0, 1]
    # second call is served from the cache without loading anything new
    enc2 = LocalEncoder(str(zh_e5_path), precision="fp32", cache=tmp_path / "c.sqlite", progress=False)
    assert np.allclose(enc2.encode_queries(queries), q)
    assert enc2.last_stats["encoded"] == 0 and enc2._model is None


def test_bf16_close_to_fp32_and_namespaced_apart(zh_e5_path, tmp_path):
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    a = LocalEncoder(str(zh_e5_path), precision="fp32", cache=cache, progress=False)
    b = LocalEncoder(str(zh_e5_path), precision="bf16", cache=cache, progress=False)
    assert a.namespace != b.namespace
    t = ["用人单位自用工之日起即与劳动者建立劳动关系。"]
    cos = float((a.encode_passages(t) * b.encode_passages(t)).sum())
    assert cos > 0.999


def test_cls_pooling_for_bert(tiny_bert, tmp_path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    enc = LocalEncoder(str(tiny_bert), precision="fp32", cache=False, progress=False)
    assert enc.spec.pooling == "mean"  # a plain folder with no pooling info defaults to mean (sentence-transformers)
    from kit.registry import resolve
    cls_enc = LocalEncoder(resolve(str(tiny_bert), pooling="cls"), precision="fp32", cache=False, progress=False)
    v = cls_enc.encode(["劳动合同"])
    tok, model = AutoTokenizer.from_pretrained(tiny_bert), AutoModel.from_pretrained(tiny_bert)
    with torch.no_grad():
        h = model(**tok(["劳动合同"], return_tensors="pt")).last_hidden_state[:, 0]
    ref = torch.nn.functional.normalize(h, dim=-1).numpy()
    assert np.allclose(v, ref, atol=1e-5)


def test_cache_follows_xdg_cache_home(tmp_path, monkeypatch):
    """Without KIT_CACHE_DIR the caches live under $XDG_CACHE_HOME/kit (the XDG base-directory rule), and a real
    encode writes there."""
    from kit.embed import default_cache_path
    from kit.io import cache_dir

    monkeypatch.delenv("KIT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "kit"
    assert default_cache_path() == tmp_path / "xdg" / "kit" / "embeddings.sqlite"
    vec, _ = embed_with_cache("ns", ["a"], lambda b: np.ones((len(b), 2)), EmbeddingCache(), batch_size=4)
    assert (tmp_path / "xdg" / "kit" / "embeddings.sqlite").exists() and vec.shape == (1, 2)
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "kit"
    monkeypatch.setenv("KIT_CACHE_DIR", str(tmp_path / "own"))   # the kit's own variable wins
    assert cache_dir() == tmp_path / "own"


def test_missing_model_is_one_line(tmp_path, monkeypatch):
    from kit.io import KitError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in (str(tmp_path / "gone"), "nobody/no-such-model"):
        enc = LocalEncoder(name, cache=False, progress=False)
        with pytest.raises(KitError) as e:
            enc.encode(["x"])
        assert "\n" not in str(e.value) and name in str(e.value)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(KitError, match="cannot load model"):
        LocalEncoder(str(tmp_path / "broken"), cache=False, progress=False).encode(["x"])


def test_fp16_stored_weights_load_in_fp32_on_cpu(tiny_bert, tmp_path, monkeypatch):
    """Issue 20: a folder saved in fp16 (kit train/merge keep the training dtype; config.json then says float16, which
    transformers loads as stored) is embedded in fp32 on a CPU through the local provider that bench, mine and the
    adapter use, unless fp16 is asked for explicitly; fp32 and fp16 loads of the same folder give the same vectors
    to fp16 accuracy."""
    import shutil

    import torch
    from transformers import AutoModel

    from kit.modelfolder import cast_weights
    from kit.providers import make_provider

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)   # the CPU path, also on a machine with a GPU
    folder = tmp_path / "ft16"
    shutil.copytree(tiny_bert, folder)
    cast_weights(folder, "fp16")
    assert AutoModel.from_pretrained(str(folder)).dtype == torch.float16   # what loading "as stored" gives
    texts = ["劳动合同应当采用书面形式。", "试用期最长不得超过六个月"]
    vecs, dtypes = {}, {}
    for precision in ("auto", "fp32", "bf16", "fp16"):
        p = make_provider(f"local:{folder}", precision=precision, cache=EmbeddingCache(tmp_path / f"{precision}.db"),
                          progress=False)   # one cache each: auto and bf16 share a namespace on a bf16 CPU
        vecs[precision] = p.encode_corpus(texts)
        dtypes[precision] = p.encoder._model.dtype
        assert p.encoder.device == "cpu" and p.encoder.load_dtype == str(dtypes[precision]).split(".")[1]
    assert dtypes == {"auto": torch.float32, "fp32": torch.float32, "bf16": torch.float32, "fp16": torch.float16}
    ref = LocalEncoder(str(folder), precision="fp32", cache=False, progress=False)
    np.testing.assert_allclose(vecs["fp32"], ref.encode_passages(texts), atol=1e-6)
    assert float((vecs["fp16"] * vecs["fp32"]).sum(1).min()) > 0.999
