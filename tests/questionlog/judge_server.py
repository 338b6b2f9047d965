"""tests/helpers/chat_server.py's local chat-completions server, answering judge prompts.

The server itself is unchanged (its failure modes: 429 with Retry-After, 500, junk prose -- a refusal -- and empty
answers, scheduled per request); only its successful answers are rewritten into a judge's verdict, computed from
the prompt by ``verdict`` (default: every candidate sharing a 3-character stretch with the question), and every
prompt it received is kept, so a test can check what was sent."""
from __future__ import annotations

import io
import json
import re
import threading

from helpers.chat_server import ChatServer

_QUESTION = re.compile(r"用户的问题：(.*?)\n", re.S)
_ITEM = re.compile(r"^\[(\d+)\] 标题：(.*?)\n正文：(.*?)(?=\n\n\[\d+\] |\n\n哪些候选)", re.S | re.M)


def parse_prompt(user: str) -> tuple[str, list[tuple[int, str]]]:
    q = _QUESTION.search(user)
    return (q.group(1) if q else ""), [(int(n), title + text) for n, title, text in _ITEM.findall(user)]


def overlap_verdict(user: str) -> str:
    question, items = parse_prompt(user)
    grams = {question[i:i + 3] for i in range(len(question) - 2)}
    answers = [n for n, text in items if any(g in text for g in grams)]
    return json.dumps({"answers": answers[:1], "confidence": 0.9, "reason": "共享问题中的关键词"}, ensure_ascii=False)


class JudgeServer(ChatServer):
    def __init__(self, *args, verdict=overlap_verdict, **kw):
        self.verdict = verdict
        self.prompts: list[str] = []
        self._prompts_lock = threading.Lock()
        super().__init__(*args, **kw)

    def _handler(self):
        base, server = super()._handler(), self

        class Handler(base):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    messages = json.loads(body).get("messages") or []
                except ValueError:
                    messages = []
                self._user = "\n".join(m.get("content") or "" for m in messages if m.get("role") == "user")
                with server._prompts_lock:
                    server.prompts.append(self._user)
                real, self.rfile = self.rfile, io.BytesIO(body)
                try:
                    super().do_POST()
                finally:
                    self.rfile = real

            def _send(self, status, body, headers=None):
                if status == 200:
                    resp = json.loads(body)
                    msg = resp["choices"][0]["message"]
                    if msg["content"].startswith('{"questions"'):   # the server's "ok": answer as a judge
                        msg["content"] = server.verdict(self._user)
                        body = json.dumps(resp, ensure_ascii=False).encode("utf-8")
                return super()._send(status, body, headers)

        return Handler
