"""A scripted control plane for agent registration tests: GET
/register/nonce hands out fresh nonces, POST /register answers from a
script the test gives (status, headers, body) and then, once the script
is used up, 200 with an agent id. It records every request it saw."""
import json
import os
import threading
import time

import fakehttp


class FakeCP(fakehttp.FakeServer):
    def __init__(self, script=(), agent_id="dd-dev-agent-fakecp0000000001"):
        # Each entry: (status, {header: value}, body dict or None).
        self.script = list(script)
        self.agent_id = agent_id
        self.requests = []          # (method, path, parsed body or None)
        self.times = []             # time.monotonic() of each request
        self.lock = threading.Lock()

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
        return self.serve(_Handler, name="fake-cp")


class _Handler(fakehttp.Handler):
    def _send(self, status, body, headers=None):
        self.send(status, json.dumps(body).encode() if body is not None
                  else b"", extra=headers)

    def _json(self):
        raw = self.read_body() or b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return {"_raw": raw.decode("latin-1")}

    def do_GET(self):
        cp = self.fake
        with cp.lock:
            cp.requests.append(("GET", self.path, None))
            cp.times.append(time.monotonic())
        if self.path == "/register/nonce":
            self._send(200, {"nonce": os.urandom(32).hex(),
                             "expires_in": 120})
        elif self.path == f"/register/{cp.agent_id}":
            self._send(200, {"agent_id": cp.agent_id})
        else:
            self._send(404, {"error": "not found", "code": "not_found"})

    def do_POST(self):
        cp = self.fake
        body = self._json()
        with cp.lock:
            cp.requests.append(("POST", self.path, body))
            cp.times.append(time.monotonic())
            step = cp.script.pop(0) if (
                self.path == "/register" and cp.script) else None
        if self.path != "/register":
            self._send(404, {"error": "not found", "code": "not_found"})
        elif step is not None:
            status, headers, reply = step
            self._send(status, reply, headers)
        else:
            self._send(200, {"agent_id": cp.agent_id,
                             "hostname": cp.agent_id + ".example",
                             "ingress": {"kind": "direct"}})
