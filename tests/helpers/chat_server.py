"""A real local HTTP server speaking OpenAI's POST /v1/chat/completions, with scriptable failures.

It answers with plausible Chinese questions built from the chunk text found in the prompt, reports
``usage``, and can inject 429 (with Retry-After), 500, responses slower than the client's timeout,
junk (prose, empty content), and a hold that parks requests unanswered (to kill a client while it
has requests in flight). Every request is logged with its prompt hash and outcome, thread-safely,
so a test can prove which prompts already got a successful answer.

Used by tests/queries/test_llm.py and benchmarks/querygen_speed.py.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OUTCOMES = ("ok", "401", "429", "500", "slow", "junk", "empty")

_CHUNK = re.compile(r"正文：\n(.*?)\n【片段结束】", re.S)
_N = re.compile(r"提出\s*(\d+)\s*个")
_WORDS = re.compile(r"[\u4e00-\u9fff]{2,}")
_TEMPLATES = ("“{w}”具体指的是什么？", "为什么会出现{w}这种情况？", "通俗地说，{w}是怎么回事？",
              "关于{w}有哪些需要注意的地方？", "{w}一般怎么处理？", "能不能简单解释一下{w}？")


def prompt_hash(messages: list[dict]) -> str:
    user = "\n".join(m.get("content") or "" for m in messages if m.get("role") == "user")
    return hashlib.sha256(user.encode("utf-8")).hexdigest()[:16]


def questions_from_prompt(messages: list[dict]) -> list[str]:
    """Questions about terms of the chunk in the prompt: each names a 4-6 character stretch of the
    chunk inside a question template, so it is about the chunk without copying it."""
    user = "\n".join(m.get("content") or "" for m in messages if m.get("role") == "user")
    m = _CHUNK.search(user)
    text = m.group(1) if m else user
    n_match = _N.search(user)
    n = int(n_match.group(1)) if n_match else 3
    runs = _WORDS.findall(text) or ["这个问题"]
    rng = random.Random(text)
    out = []
    for i in range(n):
        run = runs[rng.randrange(len(runs))]
        size = min(len(run), rng.randint(4, 6))
        start = rng.randrange(len(run) - size + 1)
        out.append(_TEMPLATES[i % len(_TEMPLATES)].format(w=run[start:start + size]))
    return out


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default (5) refuses bursts of concurrent clients


class ChatServer:
    """Start with ``with ChatServer(latency=0.01, schedule=["429", "ok"]) as srv: srv.base_url``.

    Outcome of each request: the next entry of ``schedule`` while it lasts (arrival order), else one
    drawn from ``probabilities`` ({outcome: p}, seeded), else "ok". After ``hold_after`` successful
    answers, further requests wait unanswered until :meth:`release` (or shutdown).
    """

    def __init__(self, latency: float = 0.0, schedule: list[str] | None = None,
                 probabilities: dict[str, float] | None = None, retry_after: float = 0.05,
                 slow_seconds: float = 2.0, seed: int = 0, hold_after: int | None = None):
        for o in list(schedule or []) + list(probabilities or {}):
            if o not in OUTCOMES:
                raise ValueError(f"unknown outcome {o!r}")
        self.latency = latency
        self.schedule = list(schedule or [])
        self.probabilities = dict(probabilities or {})
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.hold_after = hold_after
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.outcomes: Counter = Counter()
        self.log: list[tuple[str, str]] = []          # (prompt hash, outcome), in arrival order
        self.successful: Counter = Counter()          # prompt hash -> successful answers delivered
        self.authorization: set[str] = set()          # Authorization headers seen
        self.query_params: list[str] = []             # query strings of the requests (credentials in URLs)
        self.held = 0
        self._admitted = 0                            # successful answers let through (hold_after)
        self.received = 0                             # requests that reached the handler
        self._httpd = _Server(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "ChatServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def release(self) -> None:
        self.hold_after = None
        self._released.set()

    # -- bookkeeping -------------------------------------------------------------------------
    def _next_outcome(self) -> str:
        with self._lock:
            if self.schedule:
                return self.schedule.pop(0)
            r, acc = self._rng.random(), 0.0
            for outcome, p in self.probabilities.items():
                acc += p
                if r < acc:
                    return outcome
            return "ok"

    def _record(self, phash: str, outcome: str) -> None:
        with self._lock:
            self.outcomes[outcome] += 1
            self.log.append((phash, outcome))
            if outcome == "ok":
                self.successful[phash] += 1

    def requests_for(self, phash: str) -> int:
        with self._lock:
            return sum(1 for h, _ in self.log if h == phash)

    def _admit_success(self) -> bool:
        """Reserve one of the ``hold_after`` successful answers, or count this request as held. Checked and
        counted in one step: concurrent requests that all saw a free slot would otherwise each take it."""
        with self._lock:
            if self.hold_after is None or self._admitted < self.hold_after:
                self._admitted += 1
                return True
            self.held += 1
            return False

    @property
    def success_count(self) -> int:
        with self._lock:
            return self.outcomes["ok"]

    # -- HTTP --------------------------------------------------------------------------------
    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: bytes, headers: dict | None = None) -> bool:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)
                    self.wfile.flush()
                    return True
                except (BrokenPipeError, ConnectionResetError):
                    return False  # the client gave up (timeout) before we answered

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    req = json.loads(self.rfile.read(length))
                except json.JSONDecodeError:
                    self._send(400, b'{"error": {"message": "bad json"}}')
                    return
                path, _, query = self.path.partition("?")
                with server._lock:
                    server.query_params.append(query)
                if not path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, b'{"error": {"message": "not found"}}')
                    return
                with server._lock:
                    server.received += 1
                    server.authorization.add(self.headers.get("Authorization", ""))
                messages = req.get("messages") or []
                phash = prompt_hash(messages)
                outcome = server._next_outcome()
                if outcome == "ok" and not server._admit_success():
                    server._released.wait()
                    server._record(phash, "held")
                    self.close_connection = True
                    return
                if server.latency:
                    time.sleep(server.latency)
                if outcome == "429":
                    server._record(phash, outcome)
                    self._send(429, b'{"error": {"message": "rate limited", "type": "rate_limit"}}',
                               {"Retry-After": f"{server.retry_after:g}"})
                    return
                if outcome == "401":
                    server._record(phash, outcome)
                    # Like OpenAI, echo a masked key in the message: the client must not print it.
                    self._send(401, b'{"error": {"message": "Incorrect API key provided: sk-test***4321.",'
                                    b' "type": "invalid_request_error"}}')
                    return
                if outcome == "500":
                    server._record(phash, outcome)
                    self._send(500, b'{"error": {"message": "internal error"}}')
                    return
                if outcome == "slow":
                    time.sleep(server.slow_seconds)
                if outcome == "junk":
                    content = "抱歉，我无法理解您的请求。"
                elif outcome == "empty":
                    content = ""
                else:
                    content = json.dumps({"questions": questions_from_prompt(messages)}, ensure_ascii=False)
                prompt_chars = sum(len(m.get("content") or "") for m in messages)
                usage = {"prompt_tokens": prompt_chars, "completion_tokens": len(content),
                         "total_tokens": prompt_chars + len(content)}
                body = json.dumps({
                    "id": f"chatcmpl-{phash}", "object": "chat.completion", "created": int(time.time()),
                    "model": req.get("model", "test"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                 "finish_reason": "stop"}],
                    "usage": usage,
                }, ensure_ascii=False).encode("utf-8")
                delivered = self._send(200, body)
                # "slow" answers arrive after the client's timeout: not a success from its side.
                server._record(phash, outcome if delivered else f"{outcome}_undelivered")

        return Handler
