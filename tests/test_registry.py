"""The registry decides how each model family is fed; a wrong answer here silently ruins every stage."""
import json

from kit.registry import BGE_ZH_INSTRUCTION, M3_MODULE, BASE_MODULE, resolve, write_kit_model


def test_hub_names_map_to_families():
    s = resolve("BAAI/bge-large-zh-v1.5")
    assert (s.family, s.pooling, s.query_instruction, s.passage_instruction) == ("bge-zh", "cls", BGE_ZH_INSTRUCTION, "")
    m3 = resolve("BAAI/bge-m3")
    assert (m3.family, m3.pooling, m3.query_instruction, m3.finetune_module) == ("bge-m3", "cls", "", M3_MODULE)
    e5 = resolve("intfloat/multilingual-e5-large")
    assert (e5.family, e5.pooling, e5.query_instruction, e5.passage_instruction) == ("e5", "mean", "query: ", "passage: ")
    assert resolve("BAAI/bge-base-en-v1.5").family == "bge-en"
    assert resolve("some/unknown-model").family == "st"


def test_local_starter_model_is_read_from_its_folder(zh_e5_path):
    s = resolve(str(zh_e5_path))
    assert s.family == "e5" and s.pooling == "mean"
    assert s.query_text("问") == "query: 问" and s.passage_text("文") == "passage: 文"
    assert s.max_length == 512
    assert s.finetune_module == BASE_MODULE


def test_folder_config_beats_name(tmp_path):
    d = tmp_path / "bge-zh-but-mean"
    (d / "1_Pooling").mkdir(parents=True)
    (d / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    assert resolve(str(d)).pooling == "mean"
    (d / "sparse_linear.pt").write_bytes(b"")
    assert resolve(str(d)).family == "bge-m3"


def test_kit_model_file_wins(tmp_path, zh_e5_path):
    spec = resolve(str(zh_e5_path))
    out = tmp_path / "finetuned"
    out.mkdir()
    write_kit_model(out, spec)
    again = resolve(str(out))
    assert again.name_or_path == str(out)
    assert (again.family, again.pooling, again.query_instruction) == ("e5", "mean", "query: ")


def test_training_flags_keep_inference_inputs():
    flags = resolve("BAAI/bge-m3").training_flags()
    i = flags.index("--query_instruction_for_retrieval")
    assert flags[i + 1] == ""  # bge-m3 must get an explicit empty instruction
    e5 = resolve("intfloat/multilingual-e5-small").training_flags()
    assert e5[e5.index("--passage_instruction_for_retrieval") + 1] == "passage: "
    assert e5[e5.index("--sentence_pooling_method") + 1] == "mean"


def test_missing_or_unknown_models_are_one_clear_line(tmp_path, zh_e5_path, monkeypatch):
    import pytest

    from kit.io import KitError
    from kit.registry import ensure_available

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ensure_available(str(zh_e5_path))                                    # a model folder: fine
    cases = {str(tmp_path / "nope"): "no such folder",                   # a path that is not there
             "./models/ft": "no such folder",
             "a/b/c": "no such folder",                                  # not a hub id either
             "nobody/no-such-model": "not in the Hugging Face cache while offline",
             "bad id!": "neither a folder nor a valid Hugging Face model id",
             str(tmp_path): "has no config.json"}                        # a folder, not a model
    (tmp_path / "file.txt").write_text("x")
    cases[str(tmp_path / "file.txt")] = "is a file"
    for name, why in cases.items():
        with pytest.raises(KitError, match=why) as e:
            ensure_available(name, "base model")
        assert "\n" not in str(e.value) and str(e.value).startswith(f"base model {name}")


def test_broken_kit_model_file_is_named(tmp_path):
    import pytest

    from kit.io import KitError

    (tmp_path / "kit_model.json").write_text(json.dumps({"pooling": "mean"}))
    with pytest.raises(KitError, match="kit_model.json: 'family' must be one of"):
        resolve(str(tmp_path))
    with pytest.raises(KitError, match="unknown model family 'bert'"):
        resolve("x", family="bert")


def test_kit_model_file_carries_flagembedding_arguments(tmp_path, zh_e5_path):
    write_kit_model(tmp_path, resolve(str(zh_e5_path)))
    kw = json.loads((tmp_path / "kit_model.json").read_text())["flagembedding"]
    assert kw == {"model_class": "encoder-only-base", "pooling_method": "mean", "normalize_embeddings": True,
                  "query_instruction_for_retrieval": "query: ", "query_instruction_format": "{}{}",
                  "query_max_length": 512, "passage_max_length": 512,
                  "passage_instruction_for_retrieval": "passage: ", "passage_instruction_format": "{}{}"}
    assert resolve("BAAI/bge-m3").flagembedding_kwargs()["model_class"] == "encoder-only-m3"
