"""Store URIs: each kind parsed, keys refused in one line that does not repeat them, keys read from the
environment only."""
from __future__ import annotations

from pathlib import Path

import pytest

from kit.index.uri import parse
from kit.io import KitError


@pytest.mark.parametrize("text,family,server", [
    ("milvus-lite:///srv/index.db", "milvus", False), ("faiss:///srv/faiss", "faiss", False),
    ("qdrant-local:///srv/q", "qdrant", False), ("milvus://10.0.0.5:19530", "milvus", True),
    ("qdrant://search.internal", "qdrant", True), ("milvus+https://m.example.com", "milvus", True)])
def test_each_kind_is_parsed(text, family, server):
    u = parse(text)
    assert (u.family, u.server) == (family, server)
    if server:
        assert u.endpoint().startswith("https://" if "https" in text else "http://")
    else:
        assert u.path == Path(text.split("://", 1)[1])


def test_default_ports_and_relative_paths():
    assert parse("qdrant://q").port == 6333 and parse("milvus://m").port == 19530
    assert parse("milvus-lite://index.db").path == Path("index.db")


@pytest.mark.parametrize("text", ["milvus://root:Sup3rSecretPw@10.0.0.5:19530",
                                  "qdrant://10.0.0.6:6333?api_key=Sup3rSecretPw",
                                  "qdrant://token:Sup3rSecretPw@q:6333"])
def test_a_key_in_the_uri_is_refused_without_repeating_it(text):
    with pytest.raises(KitError) as e:
        parse(text)
    msg = str(e.value)
    assert "Sup3rSecretPw" not in msg and "environment" in msg and len(msg.splitlines()) == 1


@pytest.mark.parametrize("text,why", [("pinecone://x", "unknown store"), ("milvus-lite://", "expected"),
                                      ("milvus://h:port", "port must be a number"), ("milvus://h/db", "HOST")])
def test_bad_uris_say_what_is_expected(text, why):
    with pytest.raises(KitError, match=why):
        parse(text)


def test_the_key_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("QDRANT_API_KEY", "k-123456789")
    monkeypatch.delenv("MILVUS_TOKEN", raising=False)
    assert parse("qdrant://q").key() == "k-123456789" and parse("milvus://m").key() is None
    assert parse("qdrant-local:///x").key() is None


def test_the_keys_are_scrubbed_from_messages(monkeypatch):
    from kit.secrets import redact_text

    monkeypatch.setenv("MILVUS_TOKEN", "root:Milvus-0123456789")
    assert "Milvus-0123456789" not in redact_text("connect failed with token root:Milvus-0123456789")
