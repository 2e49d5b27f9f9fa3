"""A scripted EasyEnclave socket for agent tests: answers each NDJSON
request from a table the test controls and records what it was sent.
(The real local runtime is `devopsdefender runtime`; this fake exists to
make EasyEnclave answer exactly what a test needs, including failures.)"""
import json
import os
import socket
import threading


class FakeEE:
    def __init__(self, path):
        self.path = path
        self.requests = []
        self.deployments = []
        self.down = False
        self._sock = None

    def reply(self, req):
        m = req.get("method")
        if m == "health":
            return {"ok": True, "attestation_type": "tdx",
                    "workloads": len(self.deployments), "uptime_secs": 5}
        if m == "list":
            return {"ok": True, "deployments": self.deployments}
        if m == "deploy":
            dep = {"id": f"id-{len(self.deployments) + 1}", "pid": 4242,
                   "app_name": req.get("app_name"), "source": "cmd",
                   "status": "running", "started_at": "2026-11-30T00:00:00Z"}
            self.deployments.append(dep)
            return {"ok": True, "id": dep["id"], "status": "deploying"}
        if m == "logs":
            return {"ok": True, "lines": [f"log of {req.get('id')}"]}
        if m == "exec":
            return {"ok": True, "exit_code": 0, "stdout": " ".join(req["cmd"]),
                    "stderr": ""}
        return {"ok": False, "error": f"unknown method {m}"}

    def start(self):
        if os.path.exists(self.path):
            os.unlink(self.path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self.path)
        self._sock.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def _serve(self):
        while True:
            try:
                c, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    def _conn(self, c):
        with c:
            buf = b""
            while b"\n" not in buf:
                chunk = c.recv(65536)
                if not chunk:
                    return
                buf += chunk
            req = json.loads(buf.split(b"\n", 1)[0])
            self.requests.append(req)
            if self.down:
                return
            c.sendall(json.dumps(self.reply(req)).encode() + b"\n")

    def stop(self):
        self._sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)
