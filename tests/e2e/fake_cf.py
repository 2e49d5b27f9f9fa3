#!/usr/bin/python3
"""A fake Cloudflare v4 API on loopback, for end-to-end tests.

It serves, under /client/v4 (point DD_CF_API_URL at fake.api_url):

  accounts/{acct}/cfd_tunnel                  GET (paged; is_deleted, name)
                                              POST (create)
  accounts/{acct}/cfd_tunnel/{id}             GET, DELETE
  accounts/{acct}/cfd_tunnel/{id}/connections DELETE
  accounts/{acct}/cfd_tunnel/{id}/token       GET
  accounts/{acct}/cfd_tunnel/{id}/configurations  GET, PUT
  zones/{zone}/dns_records                    GET (paged; type, name,
                                              content), POST
  zones/{zone}/dns_records/{id}               GET, PUT, DELETE
  accounts/{acct}/access/apps                 GET (paged)
  accounts/{acct}/access/apps/{id}            GET, DELETE

What is faithful: the v4 envelope ({"success","errors","messages",
"result","result_info"}) on every answer, errors as [{"code","message"}]
with Cloudflare's codes where we know them; page/per_page pagination with
result_info {page, per_page, count, total_count, total_pages}, clamped
per_page maxima; bearer-token and account/zone checks (403 code 10000,
"Authentication error"); is_deleted filtering and soft-deleted tunnels
(deleted_at set, still readable by id); a tunnel with connections cannot
be deleted (400 code 1022) until its connections are dropped; create
answers the tunnel with its connector token (base64 of {"a","t","s"}),
409 code 1013 for a duplicate live name; remotely managed configuration
with a version that increases, and Cloudflare's rule that the last
ingress rule is a catch-all without hostname (400 code 1056); DNS name
conflicts (400 code 81053), unknown records (404 code 81044), proxied
CNAMEs answered with ttl 1 ("automatic").

What is NOT faithful: no other record types' validation, no Access app
creation API (tests seed apps directly), no rate limits of its own
(inject 429s instead), no real tunnel protocol: "connections" appear
only when a test (or the fake cloudflared) says a connector connected.

Test controls, as Python methods and under /_ctl/ (JSON bodies):

  fail(path_re, status=500, count=1, retry_after=None, method=None,
       errors=None, delay=0, body=None)
      the next `count` requests whose "METHOD /path?query" (path below
      /client/v4) matches the regex get `status` (200 with errors =
      success:false; body = raw bytes instead of an envelope; delay =
      seconds to wait first, then answer normally when status is None)
  calls()                 every request so far: method, path, query,
                          body (parsed), t (monotonic seconds)
  seed_tunnel / seed_dns / seed_app / seed_many_dns
  connect(tunnel_id) / POST /_ctl/connect {"token"} -> {"tunnel_id"}
      a connector (the fake cloudflared) connects with its token
  tunnel_state(id) / GET /_ctl/tunnel/{id} -> {"exists","deleted",
      "connections"}: what a fake cloudflared polls to learn that its
      tunnel was deleted (the real one exits then)
  POST /_ctl/reset

Standalone: `python3 tests/e2e/fake_cf.py [--port P]` prints its API URL.
"""
import argparse
import base64
import datetime
import json
import re
import secrets
import sys
import threading
import time
import uuid

import fakehttp
from urllib.parse import parse_qs, urlsplit

PREFIX = "/client/v4"
DEFAULT_TOKEN = "fake-cf-token"
DEFAULT_ACCOUNT = "0123456789abcdef0123456789abcdef"
DEFAULT_ZONE = "fedcba9876543210fedcba9876543210"
DEFAULT_ZONE_NAME = "example.com"
PER_PAGE = {"cfd_tunnel": (20, 1000), "dns_records": (100, 5000000),
            "access/apps": (25, 1000)}


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="microseconds").replace("+00:00", "Z")


class CFError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class FakeCF(fakehttp.FakeServer):
    def __init__(self, token=DEFAULT_TOKEN, account=DEFAULT_ACCOUNT,
                 zone=DEFAULT_ZONE, zone_name=DEFAULT_ZONE_NAME,
                 host="127.0.0.1", port=0):
        self.token, self.account, self.zone = token, account, zone
        self.zone_name = zone_name
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self.reset()

    # -- life cycle --

    def start(self):
        return self.serve(_Handler, self._host, self._port, name="fake-cf")

    @property
    def api_url(self):
        return self.url + PREFIX

    def env(self):
        """The DD_CF_* settings that point a client at this fake."""
        return {"DD_CF_API_URL": self.api_url, "DD_CF_API_TOKEN": self.token,
                "DD_CF_ACCOUNT_ID": self.account, "DD_CF_ZONE_ID": self.zone,
                "DD_CF_DOMAIN": self.zone_name}

    # -- state --

    def reset(self):
        with self._lock:
            self.tunnels = {}
            self.dns = {}
            self.apps = {}
            self._faults = []
            self._calls = []

    def calls(self, method=None, path_re=None):
        with self._lock:
            out = list(self._calls)
        if method:
            out = [c for c in out if c["method"] == method]
        if path_re:
            out = [c for c in out if re.search(path_re, c["path"])]
        return out

    def fail(self, path_re, status=500, count=1, retry_after=None,
             method=None, errors=None, delay=0, body=None):
        with self._lock:
            self._faults.append({"re": re.compile(path_re), "status": status,
                                 "count": int(count), "retry_after": retry_after,
                                 "method": method, "errors": errors,
                                 "delay": float(delay), "body": body})

    def _tunnel_obj(self, name, secret=None, created_at=None, deleted_at=None,
                    tid=None):
        tid = tid or str(uuid.uuid4())
        secret = secret or base64.b64encode(secrets.token_bytes(32)).decode()
        token = base64.b64encode(json.dumps(
            {"a": self.account, "t": tid, "s": secret}).encode()).decode()
        return {"id": tid, "account_tag": self.account, "name": name,
                "created_at": created_at or now_iso(), "deleted_at": deleted_at,
                "connections": [], "conns_active_at": None,
                "conns_inactive_at": None, "status": "inactive",
                "tun_type": "cfd_tunnel", "remote_config": True,
                "config_src": "cloudflare", "metadata": {},
                "_token": token, "_config": None, "_version": 0}

    def seed_tunnel(self, name, created_at=None, deleted=False, tid=None):
        t = self._tunnel_obj(name, created_at=created_at, tid=tid,
                             deleted_at=now_iso() if deleted else None)
        with self._lock:
            self.tunnels[t["id"]] = t
        return t["id"]

    def _dns_obj(self, name, content, proxied=True, rtype="CNAME"):
        return {"id": uuid.uuid4().hex, "zone_id": self.zone,
                "zone_name": self.zone_name, "name": name, "type": rtype,
                "content": content, "proxiable": True, "proxied": proxied,
                "ttl": 1, "comment": None, "tags": [], "meta": {},
                "created_on": now_iso(), "modified_on": now_iso()}

    def seed_dns(self, name, content, proxied=True, rtype="CNAME"):
        r = self._dns_obj(name, content, proxied, rtype)
        with self._lock:
            self.dns[r["id"]] = r
        return r["id"]

    def seed_many_dns(self, n, fmt="bulk-{i}.example.com",
                      content="00000000-0000-4000-8000-000000000000.cfargotunnel.com"):
        with self._lock:
            for i in range(n):
                r = self._dns_obj(fmt.format(i=i), content)
                self.dns[r["id"]] = r

    def seed_app(self, name, domain=None, policies=None, **extra):
        app = {"id": str(uuid.uuid4()), "name": name, "type": "self_hosted",
               "domain": domain, "policies": policies or [],
               "created_at": now_iso(), "updated_at": now_iso()}
        app.update(extra)
        with self._lock:
            self.apps[app["id"]] = app
        return app["id"]

    def tunnel_state(self, tid):
        with self._lock:
            t = self.tunnels.get(tid)
            if t is None:
                return {"exists": False, "deleted": True, "connections": 0}
            return {"exists": True, "deleted": t["deleted_at"] is not None,
                    "connections": len(t["connections"]), "name": t["name"]}

    def connect(self, tid=None, token=None):
        """A connector connects (by tunnel id or with its token)."""
        with self._lock:
            if token is not None:
                tid = next((k for k, t in self.tunnels.items()
                            if t["_token"] == token), None)
            t = self.tunnels.get(tid)
            if t is None or t["deleted_at"] is not None:
                raise KeyError("no such live tunnel")
            t["connections"].append({"id": str(uuid.uuid4()),
                                     "colo_name": "fake", "opened_at": now_iso(),
                                     "origin_ip": "127.0.0.1"})
            t["status"] = "healthy"
            t["conns_active_at"] = now_iso()
            return tid

    def ingress(self, tid):
        with self._lock:
            cfg = self.tunnels[tid]["_config"]
            return None if cfg is None else json.loads(json.dumps(cfg["ingress"]))

    def live_tunnels(self):
        with self._lock:
            return {t["name"]: k for k, t in self.tunnels.items()
                    if t["deleted_at"] is None}

    def cnames(self):
        with self._lock:
            return {r["name"]: r["content"] for r in self.dns.values()
                    if r["type"] == "CNAME"}

    # -- request handling --

    def _fault_for(self, method, target):
        with self._lock:
            for f in self._faults:
                if f["count"] <= 0:
                    continue
                if f["method"] and f["method"] != method:
                    continue
                if f["re"].search(target):
                    f["count"] -= 1
                    return dict(f)
        return None

    def handle(self, method, path, query, headers, raw):
        """(status, extra headers, body bytes) for one API request."""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = "<not json>"
        target = path + ("?" + query if query else "")
        with self._lock:
            self._calls.append({"method": method, "path": path,
                                "query": {k: v[-1] for k, v in
                                          parse_qs(query).items()},
                                "body": body, "t": time.monotonic()})
        fault = self._fault_for(method, target)
        if fault is not None:
            if fault["delay"]:
                time.sleep(fault["delay"])
            if fault["body"] is not None:
                return fault["status"] or 200, {}, fault["body"].encode()
            if fault["status"] is not None:
                extra = {}
                if fault["retry_after"] is not None:
                    extra["Retry-After"] = str(fault["retry_after"])
                errs = fault["errors"] or [{"code": 10000 + fault["status"],
                                            "message": "injected failure"}]
                return fault["status"], extra, _envelope(None, errs)
        auth = headers.get("authorization", "")
        if auth != "Bearer " + self.token:
            return 403, {}, _envelope(None, [{"code": 10000, "message":
                                              "Authentication error"}])
        if body == "<not json>":
            return 400, {}, _envelope(None, [{"code": 6007, "message":
                                              "Malformed JSON in request body"}])
        try:
            result, info = self._route(method, path, parse_qs(query), body)
        except CFError as e:
            return e.status, {}, _envelope(None, [{"code": e.code,
                                                   "message": e.message}])
        return 200, {}, _envelope(result, [], info)

    def _route(self, method, path, q, body):
        parts = path.strip("/").split("/")
        if len(parts) >= 2 and parts[0] == "accounts":
            if parts[1] != self.account:
                raise CFError(403, 10000, "Authentication error")
            rest = parts[2:]
            if rest[:1] == ["cfd_tunnel"]:
                return self._tunnels(method, rest[1:], q, body)
            if rest[:2] == ["access", "apps"]:
                return self._apps(method, rest[2:], q)
        if len(parts) >= 3 and parts[0] == "zones" and parts[2] == "dns_records":
            if parts[1] != self.zone:
                raise CFError(403, 10000, "Authentication error")
            return self._dns_route(method, parts[3:], q, body)
        raise CFError(400, 7003, f"Could not route to {path}, perhaps your "
                                 "object identifier is invalid?")

    # -- tunnels --

    def _public(self, t):
        return {k: v for k, v in t.items() if not k.startswith("_")}

    def _tunnels(self, method, rest, q, body):
        with self._lock:
            if not rest:
                if method == "GET":
                    items = list(self.tunnels.values())
                    d = _q(q, "is_deleted")
                    if d == "false":
                        items = [t for t in items if t["deleted_at"] is None]
                    elif d == "true":
                        items = [t for t in items if t["deleted_at"] is not None]
                    name = _q(q, "name")
                    if name is not None:
                        items = [t for t in items if t["name"] == name]
                    return _page([self._public(t) for t in items], q,
                                 *PER_PAGE["cfd_tunnel"])
                if method == "POST":
                    return self._create_tunnel(body), None
                raise CFError(405, 10405, "Method not allowed")
            t = self.tunnels.get(rest[0])
            if t is None:
                raise CFError(404, 1003, "Tunnel not found")
            sub = rest[1] if len(rest) > 1 else None
            if sub is None and method == "GET":
                return self._public(t), None
            if sub is None and method == "DELETE":
                if t["connections"]:
                    raise CFError(400, 1022, "Cannot delete tunnel because it "
                                  "has active connections")
                if t["deleted_at"] is None:
                    t["deleted_at"] = now_iso()
                return self._public(t), None
            if sub == "connections" and method == "DELETE":
                t["connections"] = []
                t["status"] = "inactive"
                return None, None
            if sub == "token" and method == "GET":
                return t["_token"], None
            if sub == "configurations" and method == "GET":
                return {"tunnel_id": t["id"], "version": t["_version"],
                        "config": t["_config"], "source": "cloudflare"}, None
            if sub == "configurations" and method == "PUT":
                return self._put_config(t, body), None
        raise CFError(405, 10405, "Method not allowed")

    def _create_tunnel(self, body):
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) \
                or not body["name"]:
            raise CFError(400, 1001, "Invalid or missing tunnel name")
        if any(t["name"] == body["name"] and t["deleted_at"] is None
               for t in self.tunnels.values()):
            raise CFError(409, 1013, "You already have a tunnel with this name")
        secret = body.get("tunnel_secret")
        if body.get("config_src") != "cloudflare":
            try:
                ok = len(base64.b64decode(secret, validate=True)) >= 32
            except Exception:
                ok = False
            if not ok:
                raise CFError(400, 1002, "tunnel_secret must be at least "
                                         "32 bytes, base64")
        t = self._tunnel_obj(body["name"], secret=secret)
        t["config_src"] = body.get("config_src", "local")
        t["remote_config"] = t["config_src"] == "cloudflare"
        self.tunnels[t["id"]] = t
        out = self._public(t)
        out["token"] = t["_token"]
        out["credentials_file"] = {"AccountTag": self.account,
                                   "TunnelID": t["id"], "TunnelName": t["name"],
                                   "TunnelSecret": secret}
        return out

    def _put_config(self, t, body):
        cfg = body.get("config") if isinstance(body, dict) else None
        ingress = cfg.get("ingress") if isinstance(cfg, dict) else None
        if not isinstance(ingress, list) or not ingress:
            raise CFError(400, 1055, "config.ingress must be a non-empty list")
        for i, r in enumerate(ingress):
            if not isinstance(r, dict) or not isinstance(r.get("service"), str):
                raise CFError(400, 1056, f"ingress rule {i} has no service")
            last = i == len(ingress) - 1
            if last and r.get("hostname") not in (None, "", "*"):
                raise CFError(400, 1056, "The last ingress rule must match "
                                         "all URLs (no hostname)")
            if not last and not isinstance(r.get("hostname"), str):
                raise CFError(400, 1056, f"ingress rule {i} needs a hostname")
        t["_config"] = cfg
        t["_version"] += 1
        return {"tunnel_id": t["id"], "version": t["_version"], "config": cfg,
                "source": "cloudflare", "created_at": now_iso()}

    # -- DNS --

    def _dns_route(self, method, rest, q, body):
        with self._lock:
            if not rest:
                if method == "GET":
                    items = list(self.dns.values())
                    for key in ("type", "name", "content"):
                        v = _q(q, key)
                        if v is not None:
                            items = [r for r in items if r[key] == v]
                    return _page(items, q, *PER_PAGE["dns_records"])
                if method == "POST":
                    r = self._dns_check(body, None)
                    self.dns[r["id"]] = r
                    return r, None
                raise CFError(405, 10405, "Method not allowed")
            r = self.dns.get(rest[0])
            if r is None:
                raise CFError(404, 81044, "Record does not exist.")
            if method == "GET":
                return r, None
            if method == "PUT":
                new = self._dns_check(body, r["id"])
                new["id"], new["created_on"] = r["id"], r["created_on"]
                self.dns[r["id"]] = new
                return new, None
            if method == "DELETE":
                del self.dns[r["id"]]
                return {"id": r["id"]}, None
        raise CFError(405, 10405, "Method not allowed")

    def _dns_check(self, body, own_id):
        if not isinstance(body, dict):
            raise CFError(400, 9207, "Request body is invalid")
        name, rtype, content = body.get("name"), body.get("type"), body.get("content")
        if rtype != "CNAME":
            raise CFError(400, 1004, "DNS Validation Error: only CNAME here")
        if not isinstance(name, str) or not (name == self.zone_name or
                                             name.endswith("." + self.zone_name)):
            raise CFError(400, 9005, "Content for CNAME record is invalid: "
                                     "name outside the zone")
        if not isinstance(content, str) or not content:
            raise CFError(400, 9007, "Content for CNAME record is invalid")
        for r in self.dns.values():
            if r["name"] == name and r["id"] != own_id:
                raise CFError(400, 81053, "An A, AAAA, or CNAME record with "
                                          "that host already exists.")
        rec = self._dns_obj(name, content, bool(body.get("proxied", False)))
        if "ttl" in body:
            rec["ttl"] = body["ttl"]
        return rec

    # -- Access --

    def _apps(self, method, rest, q):
        with self._lock:
            if not rest and method == "GET":
                return _page(list(self.apps.values()), q,
                             *PER_PAGE["access/apps"])
            if rest:
                app = self.apps.get(rest[0])
                if app is None:
                    raise CFError(404, 12130, "access.api.error.not_found")
                if method == "GET":
                    return app, None
                if method == "DELETE":
                    del self.apps[rest[0]]
                    return {"id": rest[0]}, None
        raise CFError(405, 10405, "Method not allowed")


def _q(q, key):
    v = q.get(key)
    return v[-1] if v else None


def _page(items, q, default, maximum):
    try:
        page = max(1, int(_q(q, "page") or 1))
        per_page = int(_q(q, "per_page") or default)
    except ValueError:
        raise CFError(400, 1001, "page and per_page must be integers")
    per_page = min(max(per_page, 1), maximum)
    total = len(items)
    start = (page - 1) * per_page
    chunk = items[start:start + per_page]
    return chunk, {"page": page, "per_page": per_page, "count": len(chunk),
                   "total_count": total,
                   "total_pages": max(1, -(-total // per_page))}


def _envelope(result, errors, info=None):
    out = {"success": not errors, "errors": errors, "messages": [],
           "result": result}
    if info is not None:
        out["result_info"] = info
    return json.dumps(out).encode()


class _Handler(fakehttp.Handler):
    server_version = "fake-cloudflare/1"

    def _any(self):
        u = urlsplit(self.path)
        raw = self.read_body()
        if raw is None:
            self.close_connection = True
            self.send(413, _envelope(None, [{"code": 413, "message": "too large"}]))
            return
        if u.path.startswith("/_ctl/"):
            self._ctl(u.path[len("/_ctl/"):], raw)
            return
        if not u.path.startswith(PREFIX + "/"):
            self.send(404, _envelope(None, [{"code": 7000, "message":
                                              "No route for that URI"}]))
            return
        headers = self.lower_headers()
        status, extra, body = self.fake.handle(self.command, u.path[len(PREFIX):],
                                             u.query, headers, raw)
        self.send(status, body, extra=extra)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

    def _ctl(self, name, raw):
        try:
            req = json.loads(raw) if raw.strip() else {}
            if name == "calls":
                out = self.fake.calls()
            elif name == "reset":
                self.fake.reset()
                out = {"ok": True}
            elif name == "fail":
                self.fake.fail(req.pop("path_re"), **req)
                out = {"ok": True}
            elif name == "connect":
                out = {"tunnel_id": self.fake.connect(req.get("tunnel_id"),
                                                    req.get("token"))}
            elif name.startswith("tunnel/"):
                out = self.fake.tunnel_state(name[len("tunnel/"):])
            else:
                self.send(404, b'{"error":"no such control"}')
                return
        except (KeyError, ValueError, TypeError) as e:
            self.send(400, {"error": str(e)})
            return
        self.send(200, out)


def main(argv=None):
    ap = argparse.ArgumentParser(description="fake Cloudflare API on loopback")
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args(argv)
    cf = FakeCF(port=a.port).start()
    print(cf.api_url, flush=True)
    print("# " + " ".join(f"{k}={v}" for k, v in cf.env().items()),
          file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cf.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
