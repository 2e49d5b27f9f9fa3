"""A scripted control plane for agent registration tests: GET
/register/nonce hands out fresh nonces, POST /register answers from a
script the test gives (status, headers, body) and then, once the script
is used up, 200 with an agent id. It records every request it saw."""
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeCP:
    def __init__(self, script=(), agent_id="dd-dev-agent-fakecp0000000001"):
        # Each entry: (status, {header: value}, body dict or None).
        self.script = list(script)
        self.agent_id = agent_id
        self.requests = []          # (method, path, parsed body or None)
        self.times = []             # time.monotonic() of each request
        self.lock = threading.Lock()
        self._httpd = None

    def count(self, method, path):
        with self.lock:
            return sum(1 for m, p, _ in self.requests if m == method and p == path)

    def registrations(self):
        with self.lock:
            return [b for m, p, b in self.requests
                    if m == "POST" and p == "/register"]

    def register_times(self):
        with self.lock:
            return [t for (m, p, _), t in zip(self.requests, self.times)
                    if m == "POST" and p == "/register"]

    def start(self):
        owner = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, status, body, headers=None):
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                try:
                    return json.loads(raw) if raw else None
                except ValueError:
                    return {"_raw": raw.decode("latin-1")}

            def do_GET(self):
                with owner.lock:
                    owner.requests.append(("GET", self.path, None))
                    owner.times.append(time.monotonic())
                if self.path == "/register/nonce":
                    self._send(200, {"nonce": os.urandom(32).hex(),
                                     "expires_in": 120})
                elif self.path == f"/register/{owner.agent_id}":
                    self._send(200, {"agent_id": owner.agent_id})
                else:
                    self._send(404, {"error": "not found", "code": "not_found"})

            def do_POST(self):
                body = self._body()
                with owner.lock:
                    owner.requests.append(("POST", self.path, body))
                    owner.times.append(time.monotonic())
                    step = owner.script.pop(0) if (
                        self.path == "/register" and owner.script) else None
                if self.path != "/register":
                    self._send(404, {"error": "not found", "code": "not_found"})
                elif step is not None:
                    status, headers, reply = step
                    self._send(status, reply, headers)
                else:
                    self._send(200, {"agent_id": owner.agent_id,
                                     "hostname": owner.agent_id + ".example",
                                     "ingress": {"kind": "direct"}})

            def log_message(self, *a):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    @property
    def port(self):
        return self._httpd.server_address[1]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()
