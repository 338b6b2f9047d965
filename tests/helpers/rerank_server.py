"""A real local HTTP server speaking both rerank protocols the kit uses, with scriptable failures.

- ``POST /v1/rerank`` (OpenAI-compatible, Jina/Cohere-style as vLLM, TEI and Xinference serve it):
  ``{model, query, documents, top_n}`` -> ``{results: [{index, relevance_score}], usage: {total_tokens}}``
- ``POST /api/v1/services/rerank/text-rerank/text-rerank`` (DashScope's native API):
  ``{model, input: {query, documents}, parameters: {top_n, return_documents}}`` ->
  ``{output: {results: [...]}, usage: {total_tokens}, request_id}``; more than ``max_documents`` documents is a
  400 as on DashScope.

Scores: a deterministic lexical scorer (the share of the query's character bigrams found in the document, in
[0, 1]) or, with ``model=PATH``, a real local cross-encoder (sigmoid of its logit, as vLLM/TEI return it).
Outcome of each request: the next entry of ``schedule`` ("ok", "401", "429", "500", "slow"), then "ok". Every
request is logged (path, model, query, document count, outcome, whether it carried a key).

    with RerankServer(schedule=["429", "ok"]) as srv: srv.base_url          # in a test
    python tests/helpers/rerank_server.py --port 8111 [--model runs/x/models/reranker]   # by hand or from a benchmark
"""
from __future__ import annotations

import argparse
import json
import math
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DASHSCOPE_PATH = "/api/v1/services/rerank/text-rerank/text-rerank"


def bigrams(t: str) -> set[str]:
    t = "".join(t.split())
    return {t[i:i + 2] for i in range(len(t) - 1)} or {t}


def lexical_score(query: str, doc: str) -> float:
    q = bigrams(query)
    return round(len(q & bigrams(doc)) / len(q), 6)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


class RerankServer:
    def __init__(self, schedule: list[str] | None = None, slow_seconds: float = 2.0, retry_after: float = 0.05,
                 model: str | None = None, max_documents: int = 500, require_key: str | None = None,
                 port: int = 0):
        self.schedule = list(schedule or [])
        self.slow_seconds, self.retry_after = slow_seconds, retry_after
        self.max_documents, self.require_key = max_documents, require_key
        self.log: list[dict] = []
        self._lock = threading.Lock()
        self._scorer = None
        if model:
            from kit.providers.rerankers import LocalReranker
            rr = LocalReranker(model, precision="fp32", cache=False, progress=False)
            self._scorer = lambda q, docs: [1 / (1 + math.exp(-s)) for s in rr.compute([(q, d) for d in docs])]
        self._httpd = _Server(("127.0.0.1", port), self._handler())
        self.port = self._httpd.server_address[1]
        self._thread = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def dashscope_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def __enter__(self):
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *a):
        self._httpd.shutdown()
        self._httpd.server_close()

    def next_outcome(self) -> str:
        with self._lock:
            return self.schedule.pop(0) if self.schedule else "ok"

    def scores(self, query: str, docs: list[str]) -> list[float]:
        return self._scorer(query, docs) if self._scorer else [lexical_score(query, d) for d in docs]

    def answer(self, path: str, body: dict, auth: str | None) -> tuple[int, dict, dict]:
        """(status, JSON answer, extra headers) for one request."""
        dash = path == DASHSCOPE_PATH
        query = body["input"]["query"] if dash else body.get("query")
        docs = body["input"]["documents"] if dash else body.get("documents")
        outcome = self.next_outcome()
        if self.require_key and auth != f"Bearer {self.require_key}":
            outcome = "401"
        with self._lock:
            self.log.append({"path": path, "model": body.get("model"), "query": query, "documents": len(docs or []),
                             "outcome": outcome, "auth": bool(auth), "top_n": (body.get("parameters") or body).get("top_n")})
        if outcome == "slow":
            time.sleep(self.slow_seconds)
        if outcome in ("401", "429", "500"):
            headers = {"Retry-After": str(self.retry_after)} if outcome == "429" else {}
            return int(outcome), {"code": outcome, "message": f"injected {outcome}"}, headers
        if not isinstance(query, str) or not isinstance(docs, list) or not docs:
            return 400, {"code": "InvalidParameter", "message": "query and documents are required"}, {}
        if len(docs) > self.max_documents:
            return 400, {"code": "InvalidParameter", "message": f"more than {self.max_documents} documents"}, {}
        scores = self.scores(query, docs)
        order = sorted(range(len(docs)), key=lambda i: -scores[i])
        top_n = int((body.get("parameters") or {}).get("top_n") or len(docs)) if dash else int(body.get("top_n") or len(docs))
        results = [{"index": i, "relevance_score": scores[i]} for i in order[:top_n]]
        tokens = len(query) * len(docs) + sum(len(d) for d in docs)   # one token per character, DashScope's formula
        if dash:
            return 200, {"output": {"results": results}, "usage": {"total_tokens": tokens},
                         "request_id": str(uuid.uuid4())}, {}
        return 200, {"id": str(uuid.uuid4()), "model": body.get("model"), "results": results,
                     "usage": {"total_tokens": tokens}}, {}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):   # quiet: the test reads server.log
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                path = self.path.split("?")[0]
                if path not in ("/v1/rerank", DASHSCOPE_PATH):
                    return self._send(404, {"message": f"no route {path}"}, {})
                try:
                    body = json.loads(self.rfile.read(n) or b"{}")
                except ValueError:
                    return self._send(400, {"message": "body is not JSON"}, {})
                self._send(*server.answer(path, body, self.headers.get("Authorization")))

            def _send(self, status: int, obj: dict, headers: dict):
                data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):   # the client timed out and left
                    pass

        return Handler


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8111)
    ap.add_argument("--model", help="a local cross-encoder folder (default: the lexical scorer)")
    a = ap.parse_args()
    with RerankServer(model=a.model, port=a.port) as srv:
        print(f"serving {srv.base_url}/rerank and {srv.dashscope_url}/services/rerank/text-rerank/text-rerank",
              flush=True)
        threading.Event().wait()
