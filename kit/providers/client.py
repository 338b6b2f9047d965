"""The OpenAI SDK client for any OpenAI-compatible endpoint, built one way for gen-queries and the embedding
providers, and the stop flag their request loops check.

- Credentials in the endpoint URL go where the SDK sends them: query parameters (``?api-key=K``, as Azure-style
  gateways expect) to ``default_query``, because the SDK appends request paths to ``base_url`` verbatim; user
  info (``http://user:K@host/v1``) stays in the URL, where httpx turns it into HTTP Basic auth.
- The SDK's own retries are off (``max_retries=0``): the callers retry with tenacity, so every attempt is
  counted and can be refused once a stop was asked for.
- The key itself is read from the environment variable named by the caller, and that variable's value is
  registered as a secret (:mod:`kit.secrets`), so no message or log line can carry it.
"""
from __future__ import annotations

import os
import threading

from ..io import KitError
from ..secrets import redact_url, remember_key_variable, remember_secret, split_credentials


class Stopped(Exception):
    """A stop was asked for (Ctrl-C, SIGTERM, a fatal error elsewhere): no new request is sent."""


class StopFlag:
    """Checked before every attempt and every retry of a paid request. ``wait`` doubles as tenacity's
    ``sleep``, so a back-off in progress ends the moment the flag is set instead of sleeping on."""

    def __init__(self):
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Stopped("stopped before sending a request")

    def wait(self, seconds: float) -> None:
        if self._event.wait(max(0.0, float(seconds))):
            raise Stopped("stopped while waiting to retry")


def api_key(variable: str, base_url: str | None, required: bool) -> str:
    """The key from the environment variable ``variable``; local servers usually accept anything."""
    remember_key_variable(variable)
    key = os.environ.get(variable)
    if key:
        remember_secret(key)
        return key
    if required:
        raise KitError(f"set the environment variable {variable} to your API key for "
                       f"{redact_url(base_url) or 'the default endpoint'} (keys are never read from files)")
    return "not-needed"


def openai_client(base_url: str | None, key: str, timeout: float):
    """An ``openai.OpenAI`` for ``base_url`` (None: the SDK's default endpoint)."""
    import openai

    query: dict[str, str] = {}
    if base_url:
        base_url, query = split_credentials(base_url)
    return openai.OpenAI(api_key=key, base_url=base_url, timeout=timeout, max_retries=0,
                         default_query=query or None)
