#!/usr/bin/python3
"""A fake DevOps Defender agent (its CI-facing HTTP API) and a fake GitHub
Actions OIDC token endpoint, for end-to-end tests of `devopsdefender
client`.

FakeActionsTokens plays ACTIONS_ID_TOKEN_REQUEST_URL:

  GET /token?api-version=2.0&audience=AUD   Authorization: Bearer <request
      token> -> {"count": 1, "value": "<jwt-shaped token>"}; a new token
      every call; 401 for a wrong request token, 400 without audience

FakeAgent plays an agent's API listener (spec http-surface 4.2, 4.11,
4.12; shapes as the real agent in src/agent/ answers them):

  GET  /health        {"ok": true, "service": "agent", ...,
                       "deployments": [names], "deployment_count": n,
                       "workloads": [{"id","pid","app_name","source",
                       "status","started_at","error_message"?}]}
                      (workloads left out with health_shape="names", the
                      reference agent's shape)
  POST /deploy        bearer checked; the runtime's reply with 200:
                      {"ok": true, "id": "<uuid>", "status": "deploying"}
  GET  /logs/{app}    bearer checked; {"ok": true, "lines": [...]} or 404
                      {"code": "not_found", "message": "no workload named X"}
  GET  /api/agents    (the control plane's, for discovery tests) bearer
                      checked; the `agents` list

Bearer rules, like the real agent's: a missing bearer is 401 no_token;
in "fresh" mode (default) a token must come from the given issuer and is
single-use (a second use is 401 "replayed", as the agent's jti replay set
answers); in "fixed" mode one configured token is accepted any number of
times. Knobs (attributes, set between calls):

  deploy_mode   "ok" | "ok_false" (runtime refuses: ok:false + error) |
                "status" (answer deploy_status with an error body) |
                "hang" (never answer) | "not_json"
  health_shape  "workloads" | "names"
  running_after /health polls a new workload stays "deploying" before
                it turns final_status ("running", "failed", "completed")
  health_hang   /health never answers
  logs          {app: [lines]}
  agents        the /api/agents array

Everything seen is logged in `calls` as (method, path, bearer or None,
body) and deploy bodies in `deploys`.
"""
import json
import secrets
import threading
import time
import urllib.parse
import uuid

import fakehttp


class _Handler(fakehttp.Handler):
    def do_GET(self):
        self.fake._dispatch(self, "GET")

    def do_POST(self):
        self.fake._dispatch(self, "POST")


class _Base(fakehttp.FakeServer):
    def __init__(self):
        self.lock = threading.Lock()
        self.hung = []

    def start(self, ssl_context=None):
        """Serves on a free loopback port; HTTPS with an ssl_context."""
        return self.serve(_Handler, ssl_context=ssl_context,
                          name=type(self).__name__)

    def stop(self):
        for ev in self.hung:
            ev.set()
        super().stop()

    def _hang(self):
        ev = threading.Event()
        with self.lock:
            self.hung.append(ev)
        ev.wait(60)

    @staticmethod
    def _send(h, status, obj=None, raw=None, ctype="application/json"):
        h.send(status, raw if raw is not None else json.dumps(obj).encode(),
               ctype)

    @staticmethod
    def _error(h, status, code, message):
        _Base._send(h, status, {"code": code, "message": message})

    @staticmethod
    def _bearer(h):
        auth = h.headers.get("Authorization")
        if auth is None:
            return None
        for p in ("Bearer ", "bearer "):
            if auth.startswith(p):
                return auth[len(p):].strip() or None
        return None


class FakeActionsTokens(_Base):
    """GitHub's ACTIONS_ID_TOKEN_REQUEST_URL endpoint."""

    def __init__(self, request_token=None):
        super().__init__()
        self.request_token = request_token or "ghs_" + secrets.token_hex(16)
        self.issued = []
        self.audiences = []
        self.fail_status = None

    @property
    def request_url(self):
        return self.url + "/token?api-version=2.0"

    def _dispatch(self, h, method):
        u = urllib.parse.urlsplit(h.path)
        q = urllib.parse.parse_qs(u.query)
        if method != "GET" or u.path != "/token":
            return self._error(h, 404, "not_found", "no such endpoint")
        if self._bearer(h) != self.request_token:
            return self._send(h, 401, {"message": "Bad credentials"})
        if self.fail_status:
            return self._send(h, self.fail_status, {"message": "broken"})
        aud = q.get("audience", [None])[0]
        if not aud or q.get("api-version") != ["2.0"]:
            return self._send(h, 400, {"message": "audience required"})
        tok = "eyJhbGciOiJSUzI1NiJ9.{}.{}".format(
            secrets.token_urlsafe(24), secrets.token_urlsafe(16))
        with self.lock:
            self.issued.append(tok)
            self.audiences.append(aud)
        self._send(h, 200, {"count": 1, "value": tok})


class FakeAgent(_Base):
    """The agent's CI-facing endpoints."""

    def __init__(self, issuer=None, fixed_token=None, vm_name="e2e-vm"):
        super().__init__()
        self.issuer = issuer
        self.fixed_token = fixed_token
        self.vm_name = vm_name
        self.used = set()
        self.calls = []
        self.deploys = []
        self.workloads = []          # dicts, in EE DeploymentInfo shape
        self.polls = {}              # id -> /health polls seen
        self.deploy_mode = "ok"
        self.deploy_status = 500
        self.deploy_error = "invalid deploy request: missing field `cmd`"
        self.health_shape = "workloads"
        self.health_hang = False
        self.running_after = 2
        self.final_status = "running"
        self.final_error = "spawn failed: No such file or directory"
        self.logs = {}
        self.agents = []

    # --- auth ------------------------------------------------------------
    def _auth(self, h):
        tok = self._bearer(h)
        if tok is None:
            self._error(h, 401, "no_token", "missing bearer token")
            return False
        if self.fixed_token is not None:
            if tok != self.fixed_token:
                self._error(h, 401, "bad_token", "token does not verify")
                return False
            return True
        with self.lock:
            if self.issuer is None or tok not in self.issuer.issued:
                self._error(h, 401, "bad_token", "token does not verify")
                return False
            if tok in self.used:
                self._error(h, 401, "replayed",
                            "this token was already used (jti replay)")
                return False
            self.used.add(tok)
        return True

    # --- state -------------------------------------------------------------
    def _advance(self):
        """Each /health poll moves deploying workloads along."""
        with self.lock:
            for w in self.workloads:
                if w["status"] != "deploying":
                    continue
                n = self.polls.get(w["id"], 0) + 1
                self.polls[w["id"]] = n
                if n > self.running_after:
                    w["status"] = self.final_status
                    if self.final_status == "running":
                        w["pid"] = 4242
                    elif self.final_status == "failed":
                        w["error_message"] = self.final_error

    def _health(self):
        self._advance()
        with self.lock:
            names = [w["app_name"] for w in self.workloads]
            body = {"ok": True, "service": "agent",
                    "agent_id": "dd-e2e-agent-0001", "vm_name": self.vm_name,
                    "hostname": "dd-e2e-agent-0001.example.com",
                    "attestation_type": "tdx", "deployments": names,
                    "deployment_count": len(names)}
            if self.health_shape == "workloads":
                body["workloads"] = [dict(w) for w in self.workloads]
        return body

    def _deploy(self, spec):
        wid = str(uuid.uuid4())
        with self.lock:
            self.deploys.append(spec)
            # The runtime replaces every other deployment of the app.
            self.workloads = [w for w in self.workloads
                              if w["app_name"] != spec.get("app_name")]
            self.workloads.append({
                "id": wid, "pid": None, "app_name": spec.get("app_name"),
                "source": " ".join(spec.get("cmd") or []),
                "status": "deploying",
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                            time.gmtime())})
        return {"ok": True, "id": wid, "status": "deploying"}

    # --- dispatch ----------------------------------------------------------
    def _dispatch(self, h, method):
        path = urllib.parse.urlsplit(h.path).path
        body = h.read_body() if method == "POST" else b""
        with self.lock:
            self.calls.append((method, path, self._bearer(h), body))
        if method == "GET" and path == "/health":
            if self.health_hang:
                return self._hang()
            return self._send(h, 200, self._health())
        if method == "POST" and path == "/deploy":
            return self._handle_deploy(h, body)
        if method == "GET" and path.startswith("/logs/"):
            return self._handle_logs(h, urllib.parse.unquote(path[6:]))
        if method == "GET" and path == "/api/agents":
            if not self._auth(h):
                return None
            return self._send(h, 200, self.agents)
        return self._error(h, 404, "not_found", "unmatched route")

    def _handle_deploy(self, h, body):
        if not self._auth(h):
            return None
        if h.headers.get("Content-Type") != "application/json":
            return self._error(h, 415, "bad_request", "JSON only")
        try:
            spec = json.loads(body)
        except ValueError:
            spec = None
        if not isinstance(spec, dict):
            return self._error(h, 400, "bad_request",
                               "the body must be a JSON object")
        mode = self.deploy_mode
        if mode == "hang":
            with self.lock:
                self.deploys.append(spec)
            return self._hang()
        if mode == "status":
            with self.lock:
                self.deploys.append(spec)
            return self._error(h, self.deploy_status, "upstream_failed",
                               "the workload runtime failed: boom")
        if mode == "not_json":
            return self._send(h, 200, raw=b"<html>proxy error</html>",
                              ctype="text/html")
        if mode == "ok_false":
            with self.lock:
                self.deploys.append(spec)
            return self._send(h, 200, {"ok": False,
                                       "error": self.deploy_error})
        return self._send(h, 200, self._deploy(spec))

    def _handle_logs(self, h, app):
        if not self._auth(h):
            return None
        with self.lock:
            known = app in self.logs or any(
                w["app_name"] == app for w in self.workloads)
            lines = list(self.logs.get(app, []))
        if not known:
            return self._error(h, 404, "not_found",
                               f"no workload named {app}")
        return self._send(h, 200, {"ok": True, "lines": lines})
