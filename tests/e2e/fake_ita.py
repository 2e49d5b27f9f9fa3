#!/usr/bin/python3
"""A fake Intel Trust Authority (ITA) on loopback, for end-to-end tests.

It speaks the part of ITA's v1 appraisal API that DevOps Defender uses:

  POST /appraisal/v1/attest   x-api-key, JSON {"quote": "<standard base64>"}
                              -> 200 {"token": "<JWT>"}
  GET  /certs                 the JWKS of the published signing keys

and adds control endpoints under /_ctl/ so tests can make it misbehave
(the same knobs are Python methods for in-process use):

  POST /_ctl/fail   {"status": 429|500|503, "count": N, "retry_after": S}
                    the next N attest calls fail with that status
                    (Retry-After sent on 429/503 when retry_after is given)
  POST /_ctl/rotate {"keep_old": true}  new key (new kid) for the current
                    alg; keep_old false also withdraws the old key
  POST /_ctl/alg    {"alg": "RS256"|"PS384"}  which key signs
  POST /_ctl/tcb    {"status": "OutOfDate"}  attester_tcb_status to issue
  POST /_ctl/claims {"tdx_report_data": "00..."}  claims forced into every
                    token (a lying or buggy ITA); {} clears them
  GET  /_ctl/stats  counters: attest calls ok / failed, /certs fetches, ...
  POST /_ctl/reset  back to the state after start (keys, alg, tcb, counters)

What is faithful: the paths, the x-api-key header (401 JSON error on a
wrong or missing key), 400 JSON errors for malformed JSON, missing or bad
Base64 and bytes that are not a TDX quote, the token's v1 flat claim
layout (iss, iat, nbf, exp, jti, ver, attester_type, attester_tcb_status,
attester_tcb_date, tdx_* measurements in lower-case hex, no aud), the
JOSE header (alg, kid, typ JWT, jku), RSA keys published as a JWKS, PS384
signing by default (what ITA uses) with RS256 available.

What is NOT faithful, on purpose: the fake does not verify the quote's
signature, its PCK certificate chain or any collateral. It only parses the
quote's layout (header, body, signature-data length) and copies the
measurements into the claims; attester_tcb_status is whatever the test set
(default UpToDate). Real ITA verifies all of that and refuses a quote that
does not verify. The project verifies quotes offline itself (see
src/attest/quote_verify.c and tests/e2e/test_quote_cli.py), and the quotes
the tests feed through this fake (simulated quotes, or real quotes whose
report data the tsm stand-in rewrote) would not pass real ITA anyway.
Nor does it model ITA's v2 API, policies, token signing certificates
(x5c) or per-key rate limits.

Needs only Debian's python3-jwt and python3-cryptography
(scripts/install-deps), run by /usr/bin/python3.

In process:

    ita = FakeITA(api_key="k").start()
    ... ita.url, ita.certs_url, ita.fail(429, 2, retry_after=1) ...
    ita.stop()

Standalone: `python3 tests/e2e/fake_ita.py [--api-key K] [--port P]`
prints its URL on the first line and serves until interrupted.
"""
import argparse
import base64
import binascii
import functools
import hashlib
import json
import queue
import struct
import sys
import threading
import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

import fakehttp

ALGS = {"RS256": 2048, "PS384": 3072}
DEFAULT_ALG = "PS384"
DEFAULT_ISSUER = "Intel Trust Authority"
DEFAULT_API_KEY = "fake-ita-api-key"
DEFAULT_TCB_DATE = "2024-03-13T00:00:00Z"

# --- TDX quote layout (little-endian), as in docs/attestation.md -----------

HEADER_LEN = 48
TEE_TDX = 0x81
AK_ECDSA_P256 = 2
TD10_LEN = 584
TD15_LEN = 648
# (claim name or None, size) in body order; TD 1.5 adds the last two.
TD_FIELDS = [
    ("tdx_tee_tcb_svn", 16),
    ("tdx_mrseam", 48),
    ("tdx_mrsignerseam", 48),
    ("tdx_seam_attributes", 8),
    ("tdx_td_attributes", 8),
    ("tdx_xfam", 8),
    ("tdx_mrtd", 48),
    ("tdx_mrconfigid", 48),
    ("tdx_mrowner", 48),
    ("tdx_mrownerconfig", 48),
    ("tdx_rtmr0", 48),
    ("tdx_rtmr1", 48),
    ("tdx_rtmr2", 48),
    ("tdx_rtmr3", 48),
    ("tdx_report_data", 64),
]
TD15_FIELDS = [("tdx_tee_tcb_svn2", 16), ("tdx_mrservicetd", 48)]
assert sum(n for _, n in TD_FIELDS) == TD10_LEN
assert sum(n for _, n in TD_FIELDS + TD15_FIELDS) == TD15_LEN

# Where fields sit in a v4 quote (handy for tests that patch quotes).
V4_OFFSETS = {}
_off = HEADER_LEN
for _name, _n in TD_FIELDS:
    V4_OFFSETS[_name] = _off
    _off += _n
assert V4_OFFSETS["tdx_mrtd"] == 184 and V4_OFFSETS["tdx_report_data"] == 568


class QuoteError(ValueError):
    pass


def parse_quote(q):
    """The body fields of a v4/v5 TDX quote as {claim name: bytes}.

    Checks the layout only (no signature). Raises QuoteError."""
    if len(q) < HEADER_LEN:
        raise QuoteError("quote shorter than its 48-byte header")
    version, ak_type, tee_type = struct.unpack_from("<HHI", q, 0)
    if version not in (4, 5):
        raise QuoteError(f"unsupported quote version {version}")
    if ak_type != AK_ECDSA_P256:
        raise QuoteError(f"unsupported attestation key type {ak_type}")
    if tee_type != TEE_TDX:
        raise QuoteError(f"TEE type 0x{tee_type:x} is not TDX")
    off = HEADER_LEN
    fields = TD_FIELDS
    if version == 5:
        if len(q) < off + 6:
            raise QuoteError("truncated body descriptor")
        body_type, body_size = struct.unpack_from("<HI", q, off)
        off += 6
        if body_type == 2 and body_size == TD10_LEN:
            fields = TD_FIELDS
        elif body_type == 3 and body_size == TD15_LEN:
            fields = TD_FIELDS + TD15_FIELDS
        else:
            raise QuoteError(f"unsupported body type {body_type} size {body_size}")
    body_len = sum(n for _, n in fields)
    if len(q) < off + body_len + 4:
        raise QuoteError("quote truncated inside the TD report body")
    out = {}
    for name, n in fields:
        out[name] = q[off:off + n]
        off += n
    (sig_len,) = struct.unpack_from("<I", q, off)
    off += 4
    if sig_len == 0 or len(q) < off + sig_len:
        raise QuoteError("signature data length disagrees with the quote")
    if any(q[off + sig_len:]):
        raise QuoteError("non-zero bytes after the signature data")
    return out


# --- keys -------------------------------------------------------------------

def b64url_uint(v):
    raw = v.to_bytes((v.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Key:
    def __init__(self, alg, private):
        self.alg = alg
        self.private = private
        pub = private.public_key().public_numbers()
        self.n = b64url_uint(pub.n)
        self.e = b64url_uint(pub.e)
        # RFC 7638 thumbprint as the kid: unique per key, stable.
        canon = json.dumps({"e": self.e, "kty": "RSA", "n": self.n},
                           separators=(",", ":"), sort_keys=True).encode()
        self.kid = hashlib.sha256(canon).hexdigest()

    def jwk(self):
        return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": self.alg,
                "n": self.n, "e": self.e}


def new_key(alg):
    if alg not in ALGS:
        raise ValueError(f"unsupported alg {alg!r} (have {sorted(ALGS)})")
    return Key(alg, rsa.generate_private_key(public_exponent=65537,
                                             key_size=ALGS[alg]))


# One spare key per alg is generated in the background so that rotate()
# is quick (RSA-3072 generation takes a second or more); a rotation that
# finds no spare generates its own.
_spares = {alg: queue.Queue() for alg in ALGS}
_spare_lock = threading.Lock()


def _refill():
    for alg, q in _spares.items():
        if q.empty():
            q.put(new_key(alg))


def _refill_async():
    if _spare_lock.acquire(blocking=False):
        def run():
            try:
                _refill()
            finally:
                _spare_lock.release()
        # Not a daemon: OpenSSL must not be generating a key while the
        # interpreter finalises (that crashes), so exit waits for it.
        threading.Thread(target=run, name="fake-ita-keygen", daemon=False).start()


def _fresh_key(alg):
    try:
        key = _spares[alg].get_nowait()
    except queue.Empty:
        key = new_key(alg)
    _refill_async()
    return key


@functools.lru_cache(maxsize=None)
def _start_key(alg):
    # Start-up keys are shared by every fake in the process: RSA-3072
    # generation is slow and each fake still has its own JWKS. rotate()
    # always makes a fresh key.
    return new_key(alg)


# --- the fake ---------------------------------------------------------------

class FakeITA(fakehttp.FakeServer):
    def __init__(self, api_key=DEFAULT_API_KEY, issuer=DEFAULT_ISSUER,
                 alg=DEFAULT_ALG, tcb_status="UpToDate", ttl=300,
                 host="127.0.0.1", port=0):
        if alg not in ALGS:
            raise ValueError(f"unsupported alg {alg!r}")
        self.api_key = api_key
        self.issuer = issuer
        self.ttl = ttl
        self._default_alg = alg
        self._default_tcb = tcb_status
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._reset_locked()

    # -- state (call with the lock held) --

    def _reset_locked(self):
        self._keys = [_start_key("RS256"), _start_key("PS384")]
        self._signing = {k.alg: k for k in self._keys}
        self._alg = self._default_alg
        self._tcb = self._default_tcb
        self._overrides = {}
        self._fail = None   # [status, remaining, retry_after]
        self._stats = {"attest_ok": 0, "attest_failed": 0, "injected": 0,
                       "unauthorized": 0, "bad_request": 0, "certs": 0}
        self._last = None   # last token issued: {"kid", "alg", "claims"}
        self._last_headers = None

    # -- life cycle --

    def start(self):
        self.serve(_Handler, self._host, self._port, name="fake-ita")
        _refill_async()
        return self

    @property
    def certs_url(self):
        return self.url + "/certs"

    # -- knobs --

    def fail(self, status, count=1, retry_after=None):
        """The next `count` attest calls answer `status`."""
        status = int(status)
        if not 400 <= status <= 599:
            raise ValueError("status must be 4xx or 5xx")
        with self._lock:
            self._fail = [status, int(count), retry_after] if count > 0 else None

    def rotate(self, keep_old=True):
        """A new key for the current alg; returns its kid."""
        with self._lock:
            alg = self._alg
        key = _fresh_key(alg)  # may be slow: outside the lock
        with self._lock:
            old = self._signing[alg]
            if not keep_old:
                self._keys = [k for k in self._keys if k is not old]
            self._keys.append(key)
            self._signing[alg] = key
        return key.kid

    def set_alg(self, alg):
        if alg not in ALGS:
            raise ValueError(f"unsupported alg {alg!r}")
        with self._lock:
            self._alg = alg

    def set_tcb(self, status):
        with self._lock:
            self._tcb = str(status)

    def set_claims(self, overrides):
        """Claims forced into every token from now on ({} clears them)."""
        if not isinstance(overrides, dict):
            raise ValueError("claims must be an object")
        with self._lock:
            self._overrides = dict(overrides)

    def stats(self):
        with self._lock:
            s = dict(self._stats)
        s["attest_calls"] = s["attest_ok"] + s["attest_failed"]
        return s

    def reset(self):
        with self._lock:
            self._reset_locked()

    @property
    def alg(self):
        with self._lock:
            return self._alg

    @property
    def kid(self):
        """The kid that signs the next token."""
        with self._lock:
            return self._signing[self._alg].kid

    def kids(self):
        with self._lock:
            return [k.kid for k in self._keys]

    def jwks(self):
        with self._lock:
            return {"keys": [k.jwk() for k in self._keys]}

    def last_token(self):
        """{"kid", "alg", "claims"} of the last token issued, or None."""
        with self._lock:
            return self._last

    def last_request_headers(self):
        """The headers of the last attest request (lower-case names)."""
        with self._lock:
            return dict(self._last_headers or {})

    # -- the API --

    def mint(self, quote, now=None):
        """A token for quote bytes, as POST /appraisal/v1/attest would."""
        fields = parse_quote(quote)
        now = int(time.time() if now is None else now)
        with self._lock:
            key = self._signing[self._alg]
            tcb = self._tcb
            overrides = dict(self._overrides)
        claims = {name: value.hex() for name, value in fields.items()}
        debug = bool(fields["tdx_td_attributes"][0] & 1)
        claims.update({
            "tdx_td_attributes_debug": debug,
            "tdx_is_debuggable": debug,
            "attester_type": "TDX",
            "attester_tcb_status": tcb,
            "attester_tcb_date": DEFAULT_TCB_DATE,
            "dbgstat": "enabled" if debug else "disabled",
            "eat_profile": "https://portal.trustauthority.intel.com/eat_profile.html",
            "intuse": "generic",
            "verifier_instance_ids": [str(uuid.uuid4())],
            "ver": "1.0.0",
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl,
            "jti": str(uuid.uuid4()),
        })
        claims.update(overrides)
        headers = {"kid": key.kid, "jku": self.certs_url, "typ": "JWT"}
        token = jwt.encode(claims, key.private, algorithm=key.alg,
                           headers=headers)
        with self._lock:
            self._last = {"kid": key.kid, "alg": key.alg, "claims": claims}
        return token

    def _count(self, what):
        with self._lock:
            self._stats[what] += 1

    def handle_attest(self, headers, body):
        """(status, extra headers, JSON object) for one attest call."""
        with self._lock:
            self._last_headers = headers
            f = self._fail
            if f is not None:
                f[1] -= 1
                if f[1] <= 0:
                    self._fail = None
                self._stats["attest_failed"] += 1
                self._stats["injected"] += 1
        if f is not None:
            status, _, retry_after = f
            extra = {}
            if retry_after is not None and status in (429, 503):
                extra["Retry-After"] = str(retry_after)
            msg = {429: "Too Many Requests", 500: "Internal Server Error",
                   503: "Service Unavailable"}.get(status, "injected failure")
            return status, extra, {"error": msg}
        if headers.get("x-api-key") != self.api_key:
            self._count("unauthorized")
            self._count("attest_failed")
            return 401, {}, {"error": "Unauthorized: invalid API key"}

        def bad(why):
            self._count("bad_request")
            self._count("attest_failed")
            return 400, {}, {"error": why}

        try:
            req = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return bad("request body is not valid JSON")
        if not isinstance(req, dict) or not isinstance(req.get("quote"), str):
            return bad("request has no quote")
        try:
            quote = base64.b64decode(req["quote"].encode(), validate=True)
        except (binascii.Error, ValueError):
            return bad("quote is not valid base64")
        if not quote:
            return bad("quote is empty")
        try:
            token = self.mint(quote)
        except QuoteError as e:
            return bad(f"invalid quote: {e}")
        self._count("attest_ok")
        return 200, {}, {"token": token}

    def handle_ctl(self, name, req):
        if name == "fail":
            self.fail(req.get("status", 500), req.get("count", 1),
                      req.get("retry_after"))
        elif name == "rotate":
            return {"kid": self.rotate(bool(req.get("keep_old", True)))}
        elif name == "alg":
            self.set_alg(req.get("alg"))
        elif name == "tcb":
            self.set_tcb(req.get("status", "UpToDate"))
        elif name == "claims":
            self.set_claims(req)
        elif name == "stats":
            return self.stats()
        elif name == "reset":
            self.reset()
        else:
            raise KeyError(name)
        return {"ok": True, "alg": self.alg, "kid": self.kid}


class _Handler(fakehttp.Handler):
    server_version = "fake-ita/1"

    def _path(self):
        return self.path.split("?", 1)[0]

    def do_GET(self):
        path = self._path()
        if path == "/certs":
            self.fake._count("certs")
            self.send(200, self.fake.jwks())
        elif path == "/_ctl/stats":
            self.send(200, self.fake.stats())
        elif path == "/appraisal/v1/attest":
            self.send(405, {"error": "method not allowed"},
                      extra={"Allow": "POST"})
        else:
            self.send(404, {"error": "not found"})

    def do_POST(self):
        path = self._path()
        body = self.read_body()
        if body is None:
            self.close_connection = True
            self.send(413, {"error": "request body too large or malformed"})
            return
        if path == "/appraisal/v1/attest":
            status, extra, obj = self.fake.handle_attest(
                self.lower_headers(), body)
            self.send(status, obj, extra=extra)
        elif path.startswith("/_ctl/"):
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
        elif path == "/certs":
            self.send(405, {"error": "method not allowed"},
                      extra={"Allow": "GET"})
        else:
            self.send(404, {"error": "not found"})


def main(argv=None):
    ap = argparse.ArgumentParser(description="fake Intel Trust Authority on loopback")
    ap.add_argument("--api-key", default=DEFAULT_API_KEY)
    ap.add_argument("--issuer", default=DEFAULT_ISSUER)
    ap.add_argument("--alg", default=DEFAULT_ALG, choices=sorted(ALGS))
    ap.add_argument("--tcb", default="UpToDate")
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args(argv)
    ita = FakeITA(api_key=a.api_key, issuer=a.issuer, alg=a.alg,
                  tcb_status=a.tcb, port=a.port).start()
    print(ita.url, flush=True)
    print(f"# DD_ITA_BASE_URL={ita.url} DD_ITA_JWKS_URL={ita.certs_url} "
          f"DD_ITA_API_KEY={a.api_key} DD_ITA_ISSUER='{a.issuer}'",
          file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        ita.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
