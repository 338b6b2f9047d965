"""Store URIs: which kind of store, where, and the key from the environment (never from the URI).

``milvus-lite://PATH`` and ``faiss://PATH`` and ``qdrant-local://PATH`` name a path: everything after ``://``, so
``milvus-lite:///srv/index.db`` is absolute and ``milvus-lite://index.db`` relative. ``milvus://HOST[:PORT]`` and
``qdrant://HOST[:PORT]`` name a server (``+https`` for TLS). A user name, password or key-like query parameter in a
URI is refused in one line that does not repeat it: a URI ends up in manifests, logs and shell history.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from ..io import KitError
from ..secrets import is_credential_param, redact_url, remember_key_variable

EMBEDDED = ("milvus-lite", "faiss", "qdrant-local")
SERVERS = {"milvus": 19530, "milvus+https": 443, "qdrant": 6333, "qdrant+https": 443}
KEY_VARIABLES = {"milvus": "MILVUS_TOKEN", "qdrant": "QDRANT_API_KEY"}
for _name in KEY_VARIABLES.values():
    remember_key_variable(_name)       # their values are scrubbed from every message the kit prints or stores


@dataclass(frozen=True)
class StoreURI:
    scheme: str          # one of EMBEDDED or SERVERS
    path: Path | None    # embedded stores
    host: str | None     # servers
    port: int | None
    text: str            # the URI as given (it holds no key: parse refuses those)

    @property
    def family(self) -> str:
        """milvus | qdrant | faiss."""
        return self.scheme.split("+")[0].replace("-lite", "").replace("-local", "")

    @property
    def tls(self) -> bool:
        return self.scheme.endswith("+https")

    @property
    def server(self) -> bool:
        return self.scheme in SERVERS

    def key(self) -> str | None:
        """The server's key from its environment variable (MILVUS_TOKEN, QDRANT_API_KEY), or None."""
        if not self.server:
            return None
        return os.environ.get(KEY_VARIABLES[self.family]) or None

    def endpoint(self) -> str:
        """http(s)://host:port for the official clients."""
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def __str__(self) -> str:
        """How messages name the store: the URI, an embedded store's as SCHEME:PATH (the kit's redaction would turn
        SCHEME:///PATH into that anyway, and a name should read the same everywhere)."""
        return f"{self.scheme}:{self.path}" if self.path is not None else self.text


def parse(uri: str, where: str = "store") -> StoreURI:
    text = str(uri or "").strip()
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    known = ", ".join([f"{s}://PATH" for s in EMBEDDED] + [f"{s}://HOST:PORT" for s in SERVERS])
    if not sep or scheme not in (*EMBEDDED, *SERVERS):
        raise KitError(f"{where} {redact_url(text)!r}: unknown store; expected one of {known}")
    parts = urlsplit(text)
    if "@" in parts.netloc or any(is_credential_param(k) for k, _ in parse_qsl(parts.query)):
        variable = KEY_VARIABLES.get(scheme.split("+")[0], "the store's key variable")
        raise KitError(f"{where} {redact_url(text)}: a key or password in the URI; put it in the environment "
                       f"({variable}) instead, the URI is written to manifests and logs")
    if scheme in EMBEDDED:
        if not rest or parts.query:
            raise KitError(f"{where} {text!r}: expected {scheme}://PATH (e.g. {scheme}:///srv/index)")
        return StoreURI(scheme, Path(rest).expanduser(), None, None, text)
    if not parts.hostname or parts.path not in ("", "/"):
        raise KitError(f"{where} {text!r}: expected {scheme}://HOST[:PORT]")
    try:
        port = parts.port or SERVERS[scheme]
    except ValueError:
        raise KitError(f"{where} {text!r}: the port must be a number") from None
    return StoreURI(scheme, None, parts.hostname, port, text)
