#!/usr/bin/python3
"""A fake GitHub on loopback, for end-to-end tests of browser sign-in.

One server plays both github.com (OAuth) and api.github.com (REST), so
DD_GITHUB_OAUTH_BASE and DD_GITHUB_API_BASE both point at `url`:

  GET  /login/oauth/authorize      client_id, redirect_uri, state, scope
                                   -> 302 redirect_uri?code=...&state=...
  POST /login/oauth/access_token   code exchange (single-use codes, client
                                   secret checked) or the device grant;
                                   JSON or form body; JSON reply when
                                   Accept asks for it, form-encoded if not
  POST /login/device/code          device flow start
  GET  /login/device               the page a user code is typed into
  GET  /user                       the token's user
  GET  /user/orgs                  its orgs (per_page, page, Link header)
  GET  /orgs/{org}                 the org
  GET  /orgs/{org}/public_members/{login}   204 or 404
  GET  /repos/{owner}/{repo}       the repo, with the user's permissions

Who signs in: the authorize request's `login` parameter (GitHub's own
"suggest this account" parameter) if given, else the user set with
sign_in_as(), else the only user if there is exactly one. deny_next()
makes the next authorizations answer as a user pressing Cancel does.

Control endpoints (the same knobs are Python methods for in-process use):

  POST /_ctl/user    {"login", "id"?, "name"?}           -> {"id"}
  POST /_ctl/org     {"login", "id"?}                    -> {"id"}
  POST /_ctl/member  {"org", "login", "public"?: true, "remove"?: false}
  POST /_ctl/repo    {"full_name", "id"?, "private"?, "collaborators"?:
                      {"login": "admin|maintain|push|triage|pull"}}
  POST /_ctl/app     {"client_id", "client_secret", "callback_url"?,
                      "device_flow"?: true}
  POST /_ctl/sign_in_as {"login"} (null: nobody)
  POST /_ctl/deny    {"count"?: 1}
  POST /_ctl/device/approve {"user_code", "login"}
  POST /_ctl/device/deny    {"user_code"}
  POST /_ctl/revoke  {"token"}
  POST /_ctl/fail    {"status", "count"?: 1, "path"?, "body"?,
                      "content_type"?, "delay"?: seconds}
                     the next `count` requests (under `path` when given)
                     answer `status` with `body` (GitHub's JSON error by
                     default) after `delay`; status null with a delay only
                     slows the real answer down
  GET  /_ctl/stats   counters per endpoint, codes and tokens issued, ...
  POST /_ctl/reset   back to the state after start

What is faithful: the paths, parameters and reply shapes above; errors of
the token endpoint as HTTP 200 with error / error_description / error_uri
(bad_verification_code for unknown, used, expired or foreign codes,
incorrect_client_credentials, redirect_uri_mismatch,
unsupported_grant_type, and for the device grant authorization_pending,
slow_down (polled faster than the interval, which then grows by 5 s),
access_denied, expired_token, incorrect_device_code); a redirect_uri that
does not fit the app's callback URL (same origin, same or deeper path) is
answered by redirecting to the callback URL with redirect_uri_mismatch;
API errors as {"message", "documentation_url"} with 401 "Bad credentials"
or "Requires authentication" and 404 "Not Found" (private repositories
included, as GitHub hides them); names are matched case-insensitively and
answered in their registered spelling; /user/orgs lists private
memberships only for tokens with the read:org scope.

What is NOT faithful, on purpose: state is required at /authorize (GitHub
only recommends it; our control plane always sends one); there are no
consent screens, no refresh tokens, no rate limits, no XML replies; org
members get no implicit repository access (only collaborators and the
owning user do); tokens never expire unless revoked.

In process:

    gh = FakeGitHub().start()
    uid = gh.add_user("octocat"); gh.add_org("acme", 4242)
    gh.add_member("acme", "octocat"); gh.sign_in_as("octocat")
    ... gh.url, gh.client_id, gh.client_secret, gh.fail(502, 1) ...
    gh.stop()

Standalone: `python3 tests/e2e/fake_github.py [--port P] [--user LOGIN[:ID]]
[--org NAME[:ID]] [--member ORG:LOGIN] [--callback-url URL]` prints its
URL on the first line and serves until interrupted.
"""
import argparse
import itertools
import json
import re
import secrets
import sys
import threading
import time
import urllib.parse

import fakehttp

DEFAULT_CLIENT_ID = "Iv1.fakeclient0001"
DEFAULT_CLIENT_SECRET = "fake-client-secret-0123456789abcdef"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CODE_TTL = 600
DEVICE_TTL = 900
DOCS = "https://docs.github.com/rest"
LOGIN_RE = re.compile(r"^[A-Za-z0-9-]{1,39}$")
REPO_RE = re.compile(r"^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$")
PERMS = ["pull", "triage", "push", "maintain", "admin"]
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ0123456789"

OAUTH_ERRORS = {
    "bad_verification_code": "The code passed is incorrect or expired.",
    "incorrect_client_credentials":
        "The client_id and/or client_secret passed are incorrect.",
    "redirect_uri_mismatch":
        "The redirect_uri MUST match the registered callback URL for this "
        "application.",
    "unsupported_grant_type": "The grant type is not supported.",
    "authorization_pending":
        "The authorization request is still pending.",
    "slow_down": "Too many requests have been made in the same timeframe.",
    "access_denied": "The authorization request was denied.",
    "expired_token": "The device_code has expired.",
    "incorrect_device_code": "The device_code provided is not valid.",
    "device_flow_disabled": "Device Flow must be explicitly enabled for "
                            "this App",
}


class CtlError(ValueError):
    pass


def _key(name):
    return name.lower()


class FakeGitHub(fakehttp.FakeServer):
    def __init__(self, client_id=DEFAULT_CLIENT_ID,
                 client_secret=DEFAULT_CLIENT_SECRET, callback_url=None,
                 device_interval=5, host="127.0.0.1", port=0):
        self._default_app = (client_id, client_secret, callback_url)
        self._default_interval = int(device_interval)
        self._host = host
        self._port = port
        self._lock = threading.RLock()
        self._ids = itertools.count(1000)
        self.reset()

    # -- state ---------------------------------------------------------------

    def reset(self):
        """Back to the state after start: one app, nothing else."""
        with self._lock:
            self._apps = {}
            self._users = {}
            self._orgs = {}
            self._repos = {}
            self._codes = {}
            self._tokens = {}
            self._devices = {}
            self._signed_in = None
            self._deny = 0
            self._fail = None
            self.device_interval = self._default_interval
            self._stats = dict.fromkeys(
                ["authorize", "token", "device_code", "user", "user_orgs",
                 "org", "public_member", "repo", "codes_issued",
                 "tokens_issued", "token_errors", "unauthorized",
                 "injected", "not_found"], 0)
            self._last = {}
            self.add_app(*self._default_app)

    @property
    def client_id(self):
        return self._default_app[0]

    @property
    def client_secret(self):
        return self._default_app[1]

    def _new_id(self, wanted):
        if wanted is None:
            return next(self._ids)
        wanted = int(wanted)
        if wanted <= 0:
            raise CtlError("ids are positive integers")
        return wanted

    def add_app(self, client_id, client_secret, callback_url=None,
                device_flow=True):
        """Another OAuth app (a staging app beside production, say)."""
        if not isinstance(client_id, str) or not client_id:
            raise CtlError("client_id must be a non-empty string")
        if not isinstance(client_secret, str) or not client_secret:
            raise CtlError("client_secret must be a non-empty string")
        if callback_url is not None and not _http_url(callback_url):
            raise CtlError("callback_url must be an http(s) URL")
        with self._lock:
            self._apps[client_id] = {"secret": client_secret,
                                     "callback": callback_url,
                                     "device_flow": bool(device_flow)}

    def add_user(self, login, id=None, name=None):
        """A user (login [A-Za-z0-9-]{1,39}); returns its id."""
        if not isinstance(login, str) or not LOGIN_RE.match(login):
            raise CtlError(f"bad login {login!r}")
        with self._lock:
            uid = self._new_id(id)
            self._users[_key(login)] = {"login": login, "id": uid,
                                        "name": name or login}
            return uid

    def add_org(self, login, id=None):
        if not isinstance(login, str) or not LOGIN_RE.match(login):
            raise CtlError(f"bad org name {login!r}")
        with self._lock:
            oid = self._new_id(id)
            old = self._orgs.get(_key(login), {})
            self._orgs[_key(login)] = {"login": login, "id": oid,
                                       "members": old.get("members", {})}
            return oid

    def add_member(self, org, login, public=True):
        with self._lock:
            o = self._need(self._orgs, org, "org")
            self._need(self._users, login, "user")
            o["members"][_key(login)] = bool(public)

    def remove_member(self, org, login):
        with self._lock:
            self._need(self._orgs, org, "org")["members"].pop(_key(login),
                                                               None)

    def add_repo(self, full_name, id=None, private=False,
                 collaborators=None):
        """A repository; an unknown owner becomes a new org. Returns id."""
        if not isinstance(full_name, str) or not REPO_RE.match(full_name):
            raise CtlError(f"bad repository name {full_name!r}")
        collab = {}
        for login, perm in (collaborators or {}).items():
            if perm not in PERMS:
                raise CtlError(f"bad permission {perm!r}")
            collab[_key(login)] = perm
        owner = full_name.split("/")[0]
        with self._lock:
            if _key(owner) not in self._users and _key(owner) not in self._orgs:
                self.add_org(owner)
            rid = self._new_id(id)
            self._repos[_key(full_name)] = {
                "full_name": full_name, "id": rid, "private": bool(private),
                "collaborators": collab}
            return rid

    def sign_in_as(self, login):
        """The user the browser is signed in as (None: nobody)."""
        with self._lock:
            if login is not None:
                self._need(self._users, login, "user")
            self._signed_in = login

    def deny_next(self, count=1):
        """The next `count` authorizations are cancelled by the user."""
        with self._lock:
            self._deny = int(count)

    def approve_device(self, user_code, login):
        with self._lock:
            self._need(self._users, login, "user")
            self._device_by_user_code(user_code)["login"] = login

    def deny_device(self, user_code):
        with self._lock:
            self._device_by_user_code(user_code)["denied"] = True

    def revoke(self, token):
        with self._lock:
            self._tokens.pop(token, None)

    def fail(self, status, count=1, path=None, body=None, content_type=None,
             delay=0.0):
        """The next `count` requests (under `path`) answer `status`."""
        if status is not None and not 100 <= int(status) <= 599:
            raise CtlError("status must be an HTTP status")
        if status is None and not delay:
            raise CtlError("give a status, a delay, or both")
        with self._lock:
            self._fail = None if count <= 0 else {
                "status": None if status is None else int(status),
                "left": int(count), "path": path, "body": body,
                "content_type": content_type, "delay": float(delay)}

    def stats(self):
        with self._lock:
            s = dict(self._stats)
            s["live_tokens"] = len(self._tokens)
            return s

    def last_request(self, route):
        """{"method", "path", "query", "headers", "body"} of the last call
        to a route (a stats name such as "token" or "user"), or None."""
        with self._lock:
            return self._last.get(route)

    # -- life cycle ----------------------------------------------------------

    def start(self):
        return self.serve(_Handler, self._host, self._port,
                          name="fake-github")

    # -- helpers (lock held) -------------------------------------------------

    def _need(self, table, name, what):
        if not isinstance(name, str) or _key(name) not in table:
            raise CtlError(f"no such {what} {name!r}")
        return table[_key(name)]

    def _device_by_user_code(self, user_code):
        for d in self._devices.values():
            if d["user_code"] == user_code:
                return d
        raise CtlError(f"no such user code {user_code!r}")

    def _count(self, what):
        self._stats[what] += 1

    def _user_json(self, u):
        base = f"{self.url}/users/{u['login']}"
        return {"login": u["login"], "id": u["id"],
                "node_id": f"U_fake{u['id']}", "type": "User",
                "site_admin": False, "name": u["name"], "url": base,
                "html_url": base, "avatar_url": f"{self.url}/avatars/{u['id']}"}

    def _org_json(self, o):
        return {"login": o["login"], "id": o["id"],
                "node_id": f"O_fake{o['id']}",
                "url": f"{self.url}/orgs/{o['login']}",
                "description": None}

    def _owner_of(self, full_name):
        owner = full_name.split("/")[0]
        u = self._users.get(_key(owner))
        if u is not None:
            return {"login": u["login"], "id": u["id"], "type": "User"}
        o = self._orgs[_key(owner)]
        return {"login": o["login"], "id": o["id"], "type": "Organization"}

    def _perm(self, repo, user):
        if user is None:
            return None
        owner = repo["full_name"].split("/")[0]
        if _key(owner) == _key(user["login"]):
            return "admin"
        return repo["collaborators"].get(_key(user["login"]))

    # -- the API -------------------------------------------------------------

    def _injected(self, path):
        """(status, body, content_type, delay) for an injected failure."""
        with self._lock:
            f = self._fail
            if f is None or (f["path"] and not path.startswith(f["path"])):
                return None
            f["left"] -= 1
            if f["left"] <= 0:
                self._fail = None
            self._count("injected")
            return f["status"], f["body"], f["content_type"], f["delay"]

    def _token_user(self, headers):
        """(user, scope, error): error is a (status, message) or None."""
        auth = headers.get("authorization")
        if auth is None:
            return None, "", None
        parts = auth.split(None, 1)
        if len(parts) != 2 or parts[0].lower() not in ("bearer", "token"):
            return None, "", (401, "Bad credentials")
        t = self._tokens.get(parts[1].strip())
        if t is None or _key(t["login"]) not in self._users:
            return None, "", (401, "Bad credentials")
        return self._users[_key(t["login"])], t["scope"], None

    def authorize(self, q):
        """(status, headers, body) for GET /login/oauth/authorize."""
        with self._lock:
            self._count("authorize")
            app = self._apps.get(q.get("client_id", ""))
            if app is None:
                return 404, {}, "<html>Not Found</html>"
            redirect = q.get("redirect_uri") or app["callback"]
            state = q.get("state")
            if not redirect or not _http_url(redirect):
                return 400, {}, "<html>redirect_uri is required</html>"
            if app["callback"] and not _under(redirect, app["callback"]):
                return 302, {"Location": _with_query(app["callback"], {
                    "error": "redirect_uri_mismatch",
                    "error_description": OAUTH_ERRORS[
                        "redirect_uri_mismatch"],
                    "error_uri": DOCS, "state": state or ""})}, ""
            if not state:
                return 400, {}, "<html>state is required here</html>"
            if self._deny > 0:
                self._deny -= 1
                return 302, {"Location": _with_query(redirect, {
                    "error": "access_denied",
                    "error_description": "The user has denied your "
                                         "application access.",
                    "error_uri": DOCS, "state": state})}, ""
            login = q.get("login") or self._signed_in
            if login is None and len(self._users) == 1:
                login = next(iter(self._users.values()))["login"]
            if login is None or _key(login) not in self._users:
                return 401, {}, "<html>Sign in to GitHub</html>"
            code = secrets.token_hex(10)
            self._codes[code] = {
                "client_id": q["client_id"], "redirect_uri":
                q.get("redirect_uri"), "login": self._users[_key(login)][
                    "login"], "scope": q.get("scope", ""),
                "expires": time.monotonic() + CODE_TTL}
            self._count("codes_issued")
            return 302, {"Location": _with_query(
                redirect, {"code": code, "state": state})}, ""

    def _oauth_error(self, error):
        self._count("token_errors")
        return {"error": error, "error_description": OAUTH_ERRORS[error],
                "error_uri": DOCS}

    def _issue(self, login, scope, client_id):
        token = "gho_" + secrets.token_urlsafe(27).replace("-", "a").replace(
            "_", "b")[:36]
        self._tokens[token] = {"login": login, "scope": scope,
                               "client_id": client_id}
        self._count("tokens_issued")
        return {"access_token": token, "token_type": "bearer",
                "scope": scope}

    def access_token(self, p):
        """The reply object of POST /login/oauth/access_token."""
        with self._lock:
            self._count("token")
            app = self._apps.get(p.get("client_id", ""))
            if p.get("grant_type") == DEVICE_GRANT:
                return self._device_poll(app, p)
            if p.get("grant_type") not in (None, "", "authorization_code"):
                return self._oauth_error("unsupported_grant_type")
            if app is None or p.get("client_secret") != app["secret"]:
                return self._oauth_error("incorrect_client_credentials")
            c = self._codes.get(p.get("code", ""))
            if (c is None or c["client_id"] != p["client_id"] or
                    c["expires"] < time.monotonic()):
                return self._oauth_error("bad_verification_code")
            if (p.get("redirect_uri") and c["redirect_uri"] and
                    p["redirect_uri"] != c["redirect_uri"]):
                return self._oauth_error("redirect_uri_mismatch")
            del self._codes[p["code"]]   # single use
            return self._issue(c["login"], c["scope"], p["client_id"])

    def device_code(self, p):
        """(status, reply object) of POST /login/device/code."""
        with self._lock:
            self._count("device_code")
            app = self._apps.get(p.get("client_id", ""))
            if app is None:
                return 404, {"error": "Not Found"}
            if not app["device_flow"]:
                return 200, self._oauth_error("device_flow_disabled")
            dc = secrets.token_hex(20)
            uc = "-".join("".join(secrets.choice(USER_CODE_ALPHABET)
                                  for _ in range(4)) for _ in range(2))
            self._devices[dc] = {
                "client_id": p["client_id"], "user_code": uc,
                "scope": p.get("scope", ""), "login": None, "denied": False,
                "expires": time.monotonic() + DEVICE_TTL,
                "interval": self.device_interval, "last_poll": None}
            return 200, {"device_code": dc, "user_code": uc,
                         "verification_uri": f"{self.url}/login/device",
                         "expires_in": DEVICE_TTL,
                         "interval": self.device_interval}

    def _device_poll(self, app, p):
        if app is None or (p.get("client_secret") is not None and
                           p["client_secret"] != app["secret"]):
            return self._oauth_error("incorrect_client_credentials")
        d = self._devices.get(p.get("device_code", ""))
        if d is None or d["client_id"] != p["client_id"]:
            return self._oauth_error("incorrect_device_code")
        now = time.monotonic()
        if d["expires"] < now:
            return self._oauth_error("expired_token")
        if d["denied"]:
            return self._oauth_error("access_denied")
        too_soon = (d["last_poll"] is not None and
                    now - d["last_poll"] < d["interval"])
        d["last_poll"] = now
        if too_soon:
            d["interval"] += 5
            out = self._oauth_error("slow_down")
            out["interval"] = d["interval"]
            return out
        if d["login"] is None:
            return self._oauth_error("authorization_pending")
        del self._devices[p["device_code"]]
        return self._issue(d["login"], d["scope"], p["client_id"])

    def api(self, path, query, headers):
        """(status, extra headers, body object or None) for the REST API."""
        with self._lock:
            user, scope, err = self._token_user(headers)
            parts = [urllib.parse.unquote(s) for s in path.split("/")[1:]]
            route, status, out, extra = None, 404, None, {}
            if parts == ["user"]:
                route = "user"
                if user is not None:
                    status, out = 200, self._user_json(user)
            elif parts == ["user", "orgs"]:
                route = "user_orgs"
                if user is not None:
                    status, out, extra = self._user_orgs(user, scope, query)
            elif len(parts) == 2 and parts[0] == "orgs":
                route = "org"
                o = self._orgs.get(_key(parts[1]))
                if o is not None:
                    status, out = 200, self._org_json(o)
            elif (len(parts) == 4 and parts[0] == "orgs" and
                  parts[2] == "public_members"):
                route = "public_member"
                o = self._orgs.get(_key(parts[1]))
                if o is not None and o["members"].get(_key(parts[3])):
                    status = 204
            elif len(parts) == 3 and parts[0] == "repos":
                route = "repo"
                status, out = self._repo(parts[1] + "/" + parts[2], user)
            if route is None:
                return 404, {}, {"message": "Not Found",
                                 "documentation_url": DOCS}
            self._count(route)
            self._last[route] = {"method": "GET", "path": path,
                                 "query": query, "headers": dict(headers),
                                 "body": ""}
            if err is not None or (user is None and route in (
                    "user", "user_orgs")):
                self._count("unauthorized")
                msg = err[1] if err else "Requires authentication"
                return 401, {}, {"message": msg, "documentation_url": DOCS}
            if status == 404:
                self._count("not_found")
                return 404, {}, {"message": "Not Found",
                                 "documentation_url": DOCS}
            return status, extra, out

    def _user_orgs(self, user, scope, query):
        try:
            per_page = min(max(int(query.get("per_page", 30)), 1), 100)
            page = max(int(query.get("page", 1)), 1)
        except ValueError:
            return 400, {"message": "Invalid request."}, {}
        private_too = "read:org" in scope.replace(",", " ").split()
        mine = [o for o in self._orgs.values()
                if _key(user["login"]) in o["members"] and
                (private_too or o["members"][_key(user["login"])])]
        mine.sort(key=lambda o: o["id"])
        last = max((len(mine) + per_page - 1) // per_page, 1)
        extra = {}
        if page < last:
            base = f"{self.url}/user/orgs?per_page={per_page}&page="
            extra["Link"] = (f'<{base}{page + 1}>; rel="next", '
                             f'<{base}{last}>; rel="last"')
        chunk = mine[(page - 1) * per_page:page * per_page]
        return 200, [self._org_json(o) for o in chunk], extra

    def _repo(self, full_name, user):
        r = self._repos.get(_key(full_name))
        if r is None:
            return 404, None
        perm = self._perm(r, user)
        if r["private"] and perm is None:
            return 404, None
        out = {"id": r["id"], "node_id": f"R_fake{r['id']}",
               "name": r["full_name"].split("/")[1],
               "full_name": r["full_name"], "private": r["private"],
               "owner": self._owner_of(r["full_name"]),
               "html_url": f"{self.url}/{r['full_name']}"}
        if user is not None:
            level = PERMS.index(perm) if perm else 0
            out["permissions"] = {p: PERMS.index(p) <= level for p in PERMS}
        return 200, out

    def handle_ctl(self, name, req):
        if name == "user":
            return {"id": self.add_user(req.get("login"), req.get("id"),
                                        req.get("name"))}
        if name == "org":
            return {"id": self.add_org(req.get("login"), req.get("id"))}
        if name == "member":
            if req.get("remove"):
                self.remove_member(req.get("org"), req.get("login"))
            else:
                self.add_member(req.get("org"), req.get("login"),
                                req.get("public", True))
        elif name == "repo":
            return {"id": self.add_repo(req.get("full_name"), req.get("id"),
                                        req.get("private", False),
                                        req.get("collaborators"))}
        elif name == "app":
            self.add_app(req.get("client_id"), req.get("client_secret"),
                         req.get("callback_url"), req.get("device_flow", True))
        elif name == "sign_in_as":
            self.sign_in_as(req.get("login"))
        elif name == "deny":
            self.deny_next(req.get("count", 1))
        elif name == "device/approve":
            self.approve_device(req.get("user_code"), req.get("login"))
        elif name == "device/deny":
            self.deny_device(req.get("user_code"))
        elif name == "revoke":
            self.revoke(req.get("token"))
        elif name == "fail":
            self.fail(req.get("status"), req.get("count", 1), req.get("path"),
                      req.get("body"), req.get("content_type"),
                      req.get("delay", 0))
        elif name == "stats":
            return self.stats()
        elif name == "reset":
            self.reset()
        else:
            raise KeyError(name)
        return {"ok": True}


def _http_url(u):
    p = urllib.parse.urlsplit(u)
    return p.scheme in ("http", "https") and bool(p.netloc)


def _under(url, callback):
    """GitHub's rule: same scheme, host and port; path at or below."""
    a, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(callback)
    if (a.scheme, a.netloc.lower()) != (b.scheme, b.netloc.lower()):
        return False
    base = b.path.rstrip("/")
    return a.path == b.path or a.path.startswith(base + "/")


def _with_query(url, params):
    sep = "&" if urllib.parse.urlsplit(url).query else "?"
    return url + sep + urllib.parse.urlencode(params)


class _Handler(fakehttp.Handler):
    server_version = "fake-github/1"

    def _split(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        return u.path, q

    def _params(self, body, query):
        """Form, JSON or query parameters, as GitHub takes all three."""
        p = dict(query)
        ctype = (self.headers.get("Content-Type") or "").split(";")[0]
        if body:
            if ctype.strip().lower() == "application/json":
                obj = json.loads(body)
                if not isinstance(obj, dict):
                    raise ValueError("JSON body must be an object")
                p.update({k: v for k, v in obj.items() if v is not None})
            else:
                p.update(urllib.parse.parse_qsl(body.decode(),
                                                keep_blank_values=True))
        return {k: str(v) for k, v in p.items()}

    def _oauth_reply(self, obj):
        if "json" in (self.headers.get("Accept") or "").lower():
            self.send(200, obj)
        else:
            self.send(200, urllib.parse.urlencode(obj),
                       "application/x-www-form-urlencoded")

    def _maybe_inject(self, path):
        if path.startswith("/_ctl/"):
            return False
        f = self.fake._injected(path)
        if f is None:
            return False
        status, body, ctype, delay = f
        if delay:
            time.sleep(delay)
        if status is None:
            return False
        if body is None:
            body = {"message": f"injected failure {status}",
                    "documentation_url": DOCS}
        if ctype is None:
            ctype = ("text/html" if isinstance(body, str) and
                     body.lstrip().startswith("<") else "application/json")
        self.send(status, body, ctype)
        return True

    def _record(self, route, path, query, body):
        with self.fake._lock:
            self.fake._last[route] = {
                "method": self.command, "path": path, "query": query,
                "headers": self.lower_headers(),
                "body": body.decode(errors="replace") if body else ""}

    def do_GET(self):
        path, q = self._split()
        if path == "/_ctl/stats":
            self.send(200, self.fake.stats())
            return
        if self._maybe_inject(path):
            return
        if path == "/login/oauth/authorize":
            self._record("authorize", path, q, b"")
            status, extra, body = self.fake.authorize(q)
            self.send(status, body, "text/html; charset=utf-8", extra)
        elif path == "/login/device":
            self.send(200, "<html>Enter the code shown on your device"
                       "</html>", "text/html; charset=utf-8")
        else:
            headers = self.lower_headers()
            status, extra, body = self.fake.api(path, q, headers)
            self.send(status, b"" if body is None else body, extra=extra)

    def do_POST(self):
        path, q = self._split()
        body = self.read_body()
        if body is None:
            self.close_connection = True
            self.send(413, {"message": "body too large or malformed"})
            return
        if path.startswith("/_ctl/"):
            try:
                req = json.loads(body) if body.strip() else {}
                if not isinstance(req, dict):
                    raise ValueError("body must be a JSON object")
                out = self.fake.handle_ctl(path[len("/_ctl/"):], req)
            except KeyError:
                self.send(404, {"error": "no such control"})
                return
            except (ValueError, TypeError) as e:
                self.send(400, {"error": str(e)})
                return
            self.send(200, out)
            return
        if self._maybe_inject(path):
            return
        try:
            params = self._params(body, q)
        except (ValueError, UnicodeDecodeError):
            self.send(400, {"error": "Problems parsing JSON"})
            return
        if path == "/login/oauth/access_token":
            self._record("token", path, q, body)
            self._oauth_reply(self.fake.access_token(params))
        elif path == "/login/device/code":
            self._record("device_code", path, q, body)
            status, obj = self.fake.device_code(params)
            if status == 200:
                self._oauth_reply(obj)
            else:
                self.send(status, obj)
        else:
            self.send(404, {"message": "Not Found",
                             "documentation_url": DOCS})


def main(argv=None):
    ap = argparse.ArgumentParser(description="fake GitHub on loopback")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    ap.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    ap.add_argument("--callback-url")
    ap.add_argument("--device-interval", type=int, default=5)
    ap.add_argument("--user", action="append", default=[],
                    help="LOGIN[:ID], repeatable; the first signs in")
    ap.add_argument("--org", action="append", default=[],
                    help="NAME[:ID], repeatable")
    ap.add_argument("--member", action="append", default=[],
                    help="ORG:LOGIN (public member), repeatable")
    a = ap.parse_args(argv)
    gh = FakeGitHub(a.client_id, a.client_secret, a.callback_url,
                    a.device_interval, port=a.port).start()

    def split(v):
        name, _, num = v.partition(":")
        return name, int(num) if num else None

    for u in a.user:
        gh.add_user(*split(u))
    for o in a.org:
        gh.add_org(*split(o))
    for m in a.member:
        org, _, login = m.partition(":")
        gh.add_member(org, login)
    if a.user:
        gh.sign_in_as(split(a.user[0])[0])
    print(gh.url, flush=True)
    print(f"# DD_GITHUB_OAUTH_BASE={gh.url} DD_GITHUB_API_BASE={gh.url} "
          f"client_id={a.client_id}", file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        gh.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
