"""Secrets never leave the process: one place that redacts URLs and messages before they are stored, printed,
logged, fingerprinted or used as a cache key.

A key may reach the kit three ways: an environment variable the kit reads (``OPENAI_API_KEY``, the variable
named by ``api_key_env``...), the user info of an endpoint URL (``http://user:KEY@gateway/v1``) or a query
parameter of it (``...?api-key=KEY``, ``&sig=...``). :func:`redact_url` turns the last two into ``***``;
:func:`redact_text` also removes every known key value (from those variables and from URLs seen so far),
``Bearer``/``Basic`` credentials and ``sk-`` tokens from any message. Because the redacted URL no longer holds
the key, changing only the key changes neither a cache key nor a stage fingerprint.

Standard library only (urllib.parse, re): this module sits below everything else and must import nothing.
"""
from __future__ import annotations

import os
import re
import threading
from urllib.parse import quote, unquote, urlsplit, urlunsplit

MASK = "***"

# Environment variables that hold API keys the kit reads itself; api_key_env adds the user's own names.
KEY_VARIABLES = {"OPENAI_API_KEY", "DASHSCOPE_API_KEY", "DEEPSEEK_API_KEY", "AZURE_OPENAI_API_KEY"}

# A query parameter whose name contains one of these carries a credential (api-key, api_key, key, token,
# access_token, sig, signature, password, secret, auth, X-Amz-Credential, subscription-key, ...). Matching by
# part errs on the side of hiding: a redacted harmless parameter costs nothing, a leaked key costs a lot.
_CREDENTIAL_PARTS = ("key", "token", "sig", "secret", "passw", "pwd", "auth", "credential", "session", "cookie")

_lock = threading.Lock()
_known: set[str] = set()          # key values seen in URLs this process (raw and percent-decoded)

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>()\[\]{}]+")
_BEARER = re.compile(r"\b(Bearer)(\s+)[A-Za-z0-9+/=_.~\-*]{4,}", re.I)
_AUTH_HEADER = re.compile(r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)(?:(Basic|Bearer|Digest)\s+)?[^\s\"',;}]+")
_SK = re.compile(r"\bsk-[A-Za-z0-9*_.\-]{4,}")
_ASSIGNED = re.compile(r"(?i)\b([A-Za-z_\-]*(?:api[-_]?key|access[-_]?token|secret|password|passwd|signature)"
                       r"[A-Za-z_\-]*)(\s*[=:]\s*[\"']?)([^\s\"'&,;]{3,})")


def is_credential_param(name: str) -> bool:
    n = name.lower()
    return any(part in n for part in _CREDENTIAL_PARTS)


def remember_secret(value: str | None) -> None:
    """Scrub ``value`` (and its percent-decoded form) from every later :func:`redact_text`."""
    if not value or len(value) < 4 or value == MASK:
        return
    with _lock:
        _known.update({value, unquote(value), quote(value, safe="")})


def remember_key_variable(name: str | None) -> None:
    """The kit reads an API key from the variable ``name``: its value is a secret from now on."""
    if name:
        with _lock:
            KEY_VARIABLES.add(name)


def _secret_values() -> list[str]:
    with _lock:
        values = set(_known)
        names = set(KEY_VARIABLES)
    for name in names:
        v = os.environ.get(name)
        if v and len(v) >= 6:
            values.add(v)
    return sorted(values, key=len, reverse=True)   # longest first: a key that contains another is hidden whole


def _redact_pairs(part: str) -> str:
    """``a=1&api-key=K`` -> ``a=1&api-key=***`` (order and the other parameters kept verbatim)."""
    out = []
    for item in part.split("&"):
        name, sep, value = item.partition("=")
        if sep and value and is_credential_param(unquote(name)):
            remember_secret(value)
            item = f"{name}={MASK}"
        out.append(item)
    return "&".join(out)


def redact_url(url: str | None) -> str | None:
    """``url`` with its user info and credential-carrying query (and fragment) parameters replaced by ``***``;
    ``None`` stays ``None``. The scheme, host, port, path and other parameters are kept, so the result still
    says which endpoint was used."""
    if not url:
        return url
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return redact_text(str(url))
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, _, password = userinfo.partition(":")
        remember_secret(password)
        remember_secret(user if not password else None)
        netloc = f"{MASK}@{host}"
    query = _redact_pairs(parts.query) if parts.query else parts.query
    fragment = _redact_pairs(parts.fragment) if "=" in parts.fragment else parts.fragment
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _redact_match(m: re.Match) -> str:
    url = m.group(0)
    tail = len(url) - len(url.rstrip(".,:;!?"))   # sentence punctuation after a URL is not part of it
    return (redact_url(url[: len(url) - tail]) or "") + url[len(url) - tail:]


def redact_text(text) -> str:
    """A message safe to print, log or store: URLs redacted, known key values, ``Bearer``/``Basic`` credentials,
    ``sk-`` tokens and ``api_key=...``-style assignments replaced by ``***``."""
    if text is None:
        return ""
    s = str(text)
    if "://" in s:
        s = _URL.sub(_redact_match, s)
    for value in _secret_values():
        if value in s:
            s = s.replace(value, MASK)
    s = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{(m.group(2) + ' ') if m.group(2) else ''}{MASK}", s)
    s = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", s)
    s = _SK.sub(MASK, s)
    return _ASSIGNED.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", s)


def redact_obj(obj):
    """Every string inside a JSON-like value redacted (dict keys too): settings, summaries, results."""
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, dict):
        return {redact_text(k) if isinstance(k, str) else k: redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_obj(v) for v in obj)
    return obj


def split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """(the URL without its query string, the query parameters) for a client that must send the parameters
    on every request: the OpenAI SDK appends paths to ``base_url`` verbatim, so ``/v1?api-key=K`` would become
    ``/v1/?api-key=Kembeddings``. The parameters go to the SDK's ``default_query`` instead."""
    parts = urlsplit(url)
    if not parts.query:
        return url, {}
    params = {}
    for item in parts.query.split("&"):
        name, _, value = item.partition("=")
        if name:
            params[unquote(name)] = unquote(value)
            if is_credential_param(unquote(name)):
                remember_secret(value)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", parts.fragment)), params
