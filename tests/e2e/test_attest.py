"""Attestation end to end: the fake Intel Trust Authority (fake_ita.py), the
configfs-tsm stand-in (tsm_standin.py), and the CP booting against them.

The first half tests the fakes themselves, so that a CP failure further
down can be trusted to be the CP's. The second half starts the real
`devopsdefender cp` with DD_ITA_* pointing at the fake and a quote
provider (sim in dev mode, or tsm on the stand-in) and checks boot-time
minting, retries, key rotation, pinning, /health and /cp/attest. Those
tests are skipped only while `devopsdefender cp --help` does not mention
DD_ITA_BASE_URL (the CP side not built yet); they run as soon as it does.

The fake does not verify quote signatures (real ITA does); see its
docstring.
"""
import base64
import glob
import hashlib
import json
import os
import re
import select
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import jwt
import pytest

from conftest import BASE_ENV, DD_BIN, ROOT, SANITIZER_MARKS, request, wait_for
from fake_ita import ALGS, FakeITA, V4_OFFSETS, parse_quote
from tsm_standin import TsmStandin, base_quote, quote_for

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(ROOT, "tests", "data", "tdx")
MRTD = {  # from tests/data/tdx/README.md
    "dcap-qvl-tdx_quote.bin": "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7",
    "edgeless-tdx-v4.bin": "b65ea009e424e6f761fdd3d7c8962439453b37ecdf62da04f7bc5d327686bb8bafc8a5d24a9c31cee60e4aba87c2f71b",
    "tappd-tdx-v4.hex": "c68518a0ebb42136c12b2275164f8c72f25fa9a34392228687ed6e9caeb9c0f1dbd895e9cf475121c029dc47e70e91fd",
}
STANDIN_MRTD = MRTD["edgeless-tdx-v4.bin"]
OTHER_MRTD = MRTD["dcap-qvl-tdx_quote.bin"]
API_KEY = "e2e-ita-key"
ISSUER = "https://fake-ita.e2e.invalid"
BIND_PREFIX = b"devopsdefender/cp-attest/v1"


def read_quote(name):
    path = os.path.join(DATA, name)
    if name.endswith(".hex"):
        return bytes.fromhex(open(path).read().strip())
    return open(path, "rb").read()


# --- talking to the fake -------------------------------------------------------

def http(method, url, body=None, headers=None):
    """(status, headers dict with lower-case names, parsed JSON or None)."""
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, hdrs, raw = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        status, hdrs, raw = e.code, e.headers, e.read()
    hdrs = {k.lower(): v for k, v in hdrs.items()}
    try:
        obj = json.loads(raw) if raw else None
    except ValueError:
        obj = None
    return status, hdrs, obj


def attest(ita, quote=None, key=API_KEY, body=None):
    if body is None:
        body = {"quote": base64.b64encode(quote).decode()}
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if key is not None:
        headers["x-api-key"] = key
    return http("POST", ita.url + "/appraisal/v1/attest", body, headers)


def verify_with_jwks(token, jwks, issuer=ISSUER):
    """Claims of token checked by python3-jwt against a JWKS dict."""
    header = jwt.get_unverified_header(token)
    keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(jwks).keys}
    assert header["kid"] in keys, f"kid {header['kid']} not in the JWKS"
    return jwt.decode(token, keys[header["kid"]].key, algorithms=[header["alg"]],
                      issuer=issuer, options={"require": ["exp", "iat", "nbf", "iss"]})


def fetch_jwks(ita):
    status, _, jwks = http("GET", ita.certs_url)
    assert status == 200
    return jwks


@pytest.fixture
def ita():
    f = FakeITA(api_key=API_KEY, issuer=ISSUER).start()
    yield f
    f.stop()


@pytest.fixture
def tsm():
    s = TsmStandin().start()
    yield s
    errors = list(s.errors)
    s.stop()
    assert not errors, errors


# --- the fake ITA ----------------------------------------------------------------

def test_wrong_or_missing_api_key_is_401(ita):
    q = read_quote("edgeless-tdx-v4.bin")
    for key in ("wrong", None, API_KEY + "x", ""):
        status, hdrs, body = attest(ita, q, key=key)
        assert status == 401, key
        assert hdrs["content-type"] == "application/json"
        assert isinstance(body["error"], str) and body["error"]
    st = ita.stats()
    assert st["unauthorized"] == 4 and st["attest_ok"] == 0
    assert st["attest_failed"] == 4 and st["attest_calls"] == 4


def test_garbage_is_400(ita):
    real = read_quote("edgeless-tdx-v4.bin")

    def patched(off, data):
        q = bytearray(real)
        q[off:off + len(data)] = data
        return bytes(q)

    b64 = lambda b: {"quote": base64.b64encode(b).decode()}
    bodies = [
        b"not json",
        b"{",
        b"[]",
        b"{}",
        {"quote": 42},
        {"quote": None},
        {"quote": ""},
        {"quote": "!!!not base64!!!"},
        {"quote": base64.b64encode(real).decode().rstrip("=") + "x"},
        {"quote": base64.urlsafe_b64encode(b"\xfb\xff" * 400).decode()},
        b64(b"hello"),
        b64(real[:47]),
        b64(real[:600]),              # inside the body
        b64(real[:-100]),             # inside the signature data
        b64(real + b"\x01"),          # non-zero byte after the quote
        b64(patched(0, b"\x03\x00")),  # version 3
        b64(patched(2, b"\x03\x00")),  # not ECDSA P-256
        b64(patched(4, b"\x00\x00\x00\x00")),  # SGX, not TDX
        b64(patched(632, b"\x00\x00\x00\x00")),  # no signature data
    ]
    for body in bodies:
        status, _, obj = attest(ita, body=body)
        assert status == 400, body if isinstance(body, bytes) else str(body)[:80]
        assert isinstance(obj["error"], str) and obj["error"]
    st = ita.stats()
    assert st["bad_request"] == len(bodies) and st["attest_ok"] == 0
    # The API key is checked before the evidence.
    status, _, _ = attest(ita, body=b"junk", key="wrong")
    assert status == 401


def test_claims_follow_each_real_quote(ita):
    jwks = fetch_jwks(ita)
    for name, mrtd in MRTD.items():
        q = read_quote(name)
        status, hdrs, body = attest(ita, q)
        assert status == 200, (name, body)
        assert hdrs["content-type"] == "application/json"
        token = body["token"]
        header = jwt.get_unverified_header(token)
        assert header == {"alg": "PS384", "kid": ita.kid, "typ": "JWT",
                          "jku": ita.certs_url}
        c = verify_with_jwks(token, jwks)
        assert c["tdx_mrtd"] == mrtd
        assert c["tdx_mrtd"] == q[184:232].hex()
        for i, off in enumerate((376, 424, 472, 520)):
            assert c[f"tdx_rtmr{i}"] == q[off:off + 48].hex()
        assert c["tdx_report_data"] == q[568:632].hex()
        for claim, off in V4_OFFSETS.items():
            size = {"tdx_tee_tcb_svn": 16, "tdx_seam_attributes": 8,
                    "tdx_td_attributes": 8, "tdx_xfam": 8,
                    "tdx_report_data": 64}.get(claim, 48)
            assert c[claim] == q[off:off + size].hex(), claim
            assert c[claim] == c[claim].lower()
        debug = bool(q[48 + 16 + 48 + 48 + 8] & 1)
        assert c["tdx_td_attributes_debug"] is debug
        assert c["tdx_is_debuggable"] is debug
        assert c["attester_type"] == "TDX"
        assert c["attester_tcb_status"] == "UpToDate"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", c["attester_tcb_date"])
        assert c["ver"] == "1.0.0"
        assert c["iss"] == ISSUER
        assert c["exp"] == c["iat"] + 300 and c["nbf"] == c["iat"]
        assert abs(c["iat"] - time.time()) < 60
        assert c["jti"]
        assert "aud" not in c and "attester_held_data" not in c
        assert "tdx" not in c  # v1 flat layout, not v2 nested
    assert ita.stats()["attest_ok"] == 3


def test_tokens_have_unique_jti(ita):
    q = read_quote("edgeless-tdx-v4.bin")
    jtis = {jwt.decode(attest(ita, q)[2]["token"], options={"verify_signature": False})["jti"]
            for _ in range(3)}
    assert len(jtis) == 3


def test_v5_quote_with_td10_body_parses():
    v4 = read_quote("edgeless-tdx-v4.bin")
    v5 = bytearray(v4[:48]) + b"\x02\x00" + (584).to_bytes(4, "little") + v4[48:]
    v5[0] = 5
    fields = parse_quote(bytes(v5))
    assert fields["tdx_mrtd"].hex() == STANDIN_MRTD
    v5[48] = 9  # unknown body type
    with pytest.raises(ValueError):
        parse_quote(bytes(v5))


def test_jwks_verifies_tokens_of_both_algs(ita):
    q = read_quote("tappd-tdx-v4.hex")
    jwks = fetch_jwks(ita)
    assert len(jwks["keys"]) == 2
    for k in jwks["keys"]:
        assert set(k) == {"kty", "kid", "use", "alg", "n", "e"}
        assert k["kty"] == "RSA" and k["use"] == "sig" and k["e"] == "AQAB"
        for field in ("n", "e"):
            assert re.fullmatch(r"[A-Za-z0-9_-]+", k[field]), "not unpadded base64url"
        n = base64.urlsafe_b64decode(k["n"] + "=" * (-len(k["n"]) % 4))
        assert len(n) * 8 == ALGS[k["alg"]] and n[0] & 0x80
    assert {k["alg"] for k in jwks["keys"]} == {"RS256", "PS384"}
    for alg in ("RS256", "PS384"):
        status, _, _ = http("POST", ita.url + "/_ctl/alg", {"alg": alg})
        assert status == 200
        token = attest(ita, q)[2]["token"]
        header = jwt.get_unverified_header(token)
        assert header["alg"] == alg
        assert [k["alg"] for k in jwks["keys"] if k["kid"] == header["kid"]] == [alg]
        c = verify_with_jwks(token, jwks)
        assert c["tdx_mrtd"] == MRTD["tappd-tdx-v4.hex"]
        # A token under another issuer name or a tampered one is refused.
        with pytest.raises(jwt.InvalidIssuerError):
            verify_with_jwks(token, jwks, issuer="someone else")
        h, p, s = token.split(".")
        forged = jwt.encode({"tdx_mrtd": "00"}, "x", algorithm="HS256")
        with pytest.raises(jwt.InvalidSignatureError):
            verify_with_jwks(h + "." + forged.split(".")[1] + "." + s, jwks)
    assert ita.stats()["certs"] == 1
    status, _, _ = http("POST", ita.url + "/_ctl/alg", {"alg": "HS256"})
    assert status == 400


def test_fail_knob_injects_statuses_then_recovers(ita):
    q = read_quote("edgeless-tdx-v4.bin")
    status, _, _ = http("POST", ita.url + "/_ctl/fail",
                        {"status": 429, "count": 2, "retry_after": 1})
    assert status == 200
    for _ in range(2):
        status, hdrs, body = attest(ita, q)
        assert status == 429 and hdrs["retry-after"] == "1" and body["error"]
    assert attest(ita, q)[0] == 200
    ita.fail(500, 1, retry_after=3)  # never on a 500
    status, hdrs, _ = attest(ita, q)
    assert status == 500 and "retry-after" not in hdrs
    ita.fail(503, 1, retry_after=2)
    status, hdrs, _ = attest(ita, q)
    assert status == 503 and hdrs["retry-after"] == "2"
    ita.fail(503, 1)
    status, hdrs, _ = attest(ita, q)
    assert status == 503 and "retry-after" not in hdrs
    # Injected failures come before the key check, like a front door.
    ita.fail(429, 1)
    assert attest(ita, q, key="wrong")[0] == 429
    assert attest(ita, q, key="wrong")[0] == 401
    status, _, st = http("GET", ita.url + "/_ctl/stats")
    assert status == 200
    assert st["attest_ok"] == 1 and st["injected"] == 6
    assert st["attest_failed"] == 7 and st["attest_calls"] == 8
    status, _, _ = http("POST", ita.url + "/_ctl/reset", {})
    assert status == 200
    assert ita.stats()["attest_calls"] == 0


def test_rotate_knob_publishes_a_new_kid(ita):
    q = read_quote("edgeless-tdx-v4.bin")
    old_kid = ita.kid
    old_token = attest(ita, q)[2]["token"]
    status, _, body = http("POST", ita.url + "/_ctl/rotate", {})
    assert status == 200
    new_kid = body["kid"]
    assert new_kid != old_kid and ita.kid == new_kid
    jwks = fetch_jwks(ita)
    assert {old_kid, new_kid} <= {k["kid"] for k in jwks["keys"]}
    assert len(jwks["keys"]) == 3
    new_token = attest(ita, q)[2]["token"]
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    verify_with_jwks(old_token, jwks)
    verify_with_jwks(new_token, jwks)
    # Rotating again without keeping the old key withdraws it.
    newer = ita.rotate(keep_old=False)
    jwks = fetch_jwks(ita)
    kids = {k["kid"] for k in jwks["keys"]}
    assert newer in kids and new_kid not in kids and old_kid in kids
    assert len(jwks["keys"]) == 3
    with pytest.raises(AssertionError):
        verify_with_jwks(new_token, jwks)
    verify_with_jwks(attest(ita, q)[2]["token"], jwks)
    ita.reset()
    assert ita.kid == old_kid


def test_tcb_knob_and_unknown_paths(ita):
    q = read_quote("edgeless-tdx-v4.bin")
    assert http("POST", ita.url + "/_ctl/tcb", {"status": "OutOfDate"})[0] == 200
    c = jwt.decode(attest(ita, q)[2]["token"], options={"verify_signature": False})
    assert c["attester_tcb_status"] == "OutOfDate"
    assert http("POST", ita.url + "/_ctl/claims", {"tdx_report_data": "00" * 64})[0] == 200
    c = jwt.decode(attest(ita, q)[2]["token"], options={"verify_signature": False})
    assert c["tdx_report_data"] == "00" * 64 and c["tdx_mrtd"] == STANDIN_MRTD
    ita.set_claims({})
    c = jwt.decode(attest(ita, q)[2]["token"], options={"verify_signature": False})
    assert c["tdx_report_data"] == q[568:632].hex()
    assert http("POST", ita.url + "/_ctl/nope", {})[0] == 404
    assert http("GET", ita.url + "/appraisal/v1/attest")[0] == 405
    assert http("GET", ita.url + "/nope")[0] == 404
    assert http("POST", ita.url + "/_ctl/fail", b"[1]")[0] == 400


def test_fake_runs_standalone():
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_ita.py"),
                          "--api-key", "k2"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    try:
        r, _, _ = select.select([p.stdout], [], [], 30)
        assert r, "no URL printed"
        url = p.stdout.readline().decode().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        status, _, jwks = http("GET", url + "/certs")
        assert status == 200 and len(jwks["keys"]) == 2
        q = base64.b64encode(read_quote("edgeless-tdx-v4.bin")).decode()
        status, _, body = http("POST", url + "/appraisal/v1/attest", {"quote": q},
                               {"x-api-key": "k2"})
        assert status == 200 and body["token"].count(".") == 2
    finally:
        p.terminate()
        p.wait(10)
        p.stdout.close()


# --- the configfs-tsm stand-in ------------------------------------------------

def tsm_quote(root, report_data, timeout=10.0):
    """What src/attest/tsm.c does, in Python: (quote, g0, g1)."""
    d = os.path.join(root, "dd-" + os.urandom(8).hex())
    os.mkdir(d)
    deadline = time.monotonic() + timeout
    try:
        while not os.path.exists(os.path.join(d, "inblob")):
            assert time.monotonic() < deadline, "inblob never appeared"
            time.sleep(0.005)
        g0 = int(open(os.path.join(d, "generation")).read())
        with open(os.path.join(d, "inblob"), "wb") as f:
            f.write(report_data)
        with open(os.path.join(d, "outblob"), "rb") as f:
            quote = f.read()
        g1 = int(open(os.path.join(d, "generation")).read())
        return quote, g0, g1
    finally:
        for a in ("inblob", "outblob", "generation"):
            try:
                os.unlink(os.path.join(d, a))
            except FileNotFoundError:
                pass
        os.rmdir(d)


def test_tsm_standin_answers_like_configfs(tsm):
    for i in range(3):
        rd = hashlib.sha512(b"standin" + bytes([i])).digest()
        quote, g0, g1 = tsm_quote(tsm.root, rd)
        assert g1 == g0 + 1
        assert quote == quote_for(rd)
        assert quote[568:632] == rd
        assert quote[184:232].hex() == STANDIN_MRTD
        assert len(quote) == len(base_quote())
        assert parse_quote(quote)["tdx_report_data"] == rd
    assert tsm.served == 3 and tsm.last_report_data == rd
    assert os.listdir(tsm.root) == []


def test_tsm_standin_knobs(tsm):
    rd = bytes(range(64))
    tsm.mrtd = OTHER_MRTD
    quote, _, _ = tsm_quote(tsm.root, rd)
    assert quote[184:232].hex() == OTHER_MRTD and quote[568:632] == rd
    tsm.mrtd = None
    tsm.empty_outblob = True
    quote, g0, g1 = tsm_quote(tsm.root, rd)
    assert quote == b"" and g1 == g0 + 1
    tsm.empty_outblob = False
    tsm.gen_step = 2
    _, g0, g1 = tsm_quote(tsm.root, rd)
    assert g1 == g0 + 2
    tsm.gen_step = 1
    # The stand-in's quote goes through the fake ITA with its report data.
    with FakeITA(api_key=API_KEY, issuer=ISSUER) as f:
        quote, _, _ = tsm_quote(tsm.root, rd)
        c = verify_with_jwks(attest(f, quote)[2]["token"], fetch_jwks(f))
        assert c["tdx_report_data"] == rd.hex() and c["tdx_mrtd"] == STANDIN_MRTD


# --- the CP against the fakes --------------------------------------------------

def _cp_help():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    try:
        r = subprocess.run([DD_BIN, "cp", "--help"], capture_output=True,
                           timeout=30, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (r.stdout + r.stderr).decode(errors="replace")


CP_HAS_ITA = "DD_ITA_BASE_URL" in _cp_help()
needs_cp_ita = pytest.mark.skipif(
    not CP_HAS_ITA,
    reason="CP attestation not wired yet: `devopsdefender cp --help` does not "
           "mention DD_ITA_BASE_URL")


def cp_env(ita, provider="sim", tsm=None, **extra):
    env = {
        "DD_ITA_BASE_URL": ita.url,
        "DD_ITA_API_KEY": ita.api_key,
        "DD_ITA_JWKS_URL": ita.certs_url,
        "DD_ITA_ISSUER": ita.issuer,
        "DD_ITA_MODE": "intel",
        "DD_QUOTE_PROVIDER": provider,
    }
    if provider == "sim":
        env["DD_DEV"] = "1"
    if tsm is not None:
        env["DD_TSM_ROOT"] = tsm.root
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_cp(start, env):
    return start([DD_BIN, "cp"], env)


def boot_fails(env, timeout=30.0):
    """Runs the CP expecting it to exit non-zero without reporting ready;
    returns its output."""
    full = dict(os.environ)
    full.pop("DD_MODE", None)
    full.update(BASE_ENV)
    full.update(env)
    rfd, wfd = os.pipe()
    full["DD_READY_FD"] = str(wfd)
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([DD_BIN, "cp"], env=full, stdout=log,
                            stderr=subprocess.STDOUT, pass_fds=(wfd,))
    os.close(wfd)
    deadline = time.monotonic() + timeout
    ready = b""
    try:
        while True:
            left = deadline - time.monotonic()
            r, _, _ = select.select([rfd], [], [], max(left, 0))
            if not r:
                break
            chunk = os.read(rfd, 4096)
            if not chunk:
                break
            ready += chunk
    finally:
        os.close(rfd)
    try:
        if ready:
            proc.terminate()
        rc = proc.wait(max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
        ready = ready or b"(still running)"
    log.seek(0)
    out = log.read().decode(errors="replace")
    log.close()
    for mark in SANITIZER_MARKS:
        assert mark not in out, out[-4000:]
    assert not ready, f"CP reported ready ({ready!r}) but should have failed:\n{out[-3000:]}"
    assert rc != 0, f"CP exited 0:\n{out[-3000:]}"
    return out


def error_text(r):
    """The text of a CP JSON error: the project's {"code", "message"} shape
    (src/net/http_resp.c), or a plain {"error": ...}."""
    body = r.json()
    text = body.get("error") or body.get("message")
    assert isinstance(text, str) and text, body
    return text


def health(port, verbose=False):
    r = request(port, "GET", "/health?verbose=1" if verbose else "/health")
    assert r.status == 200, r.body
    return r.json()


def bind(nonce):
    return hashlib.sha512(BIND_PREFIX + nonce).digest()


def cp_attest(port, nonce_hex, timeout=15.0):
    """GET /cp/attest, waiting out 429s (within a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        r = request(port, "GET", f"/cp/attest?nonce={nonce_hex}")
        if r.status != 429 or time.monotonic() > deadline:
            return r
        time.sleep(min(float(r.header("retry-after") or 1), 5))


def pinning(att):
    """The pin verdict in /health's attestation object. The CP names it
    `pinning` ("unpinned", "pass", or what failed: "mrtd", "rtmr", "tcb")
    with `enforced` beside it; `pinned` is accepted too."""
    assert "pinning" in att or "pinned" in att, att
    return att.get("pinning", att.get("pinned"))


def check_boot_token(cp, ita, provider, simulated):
    h = health(cp.port)
    assert h["ita_mode"] == "intel"
    att = h["attestation"]
    # The provider's own name ("simulated") or its DD_QUOTE_PROVIDER value.
    assert att["provider"] in {"sim": ("sim", "simulated")}.get(provider, (provider,))
    assert att["simulated"] is simulated
    assert "cp_ita" not in h and "cp_ita_claims" not in h
    v = health(cp.port, verbose=True)
    token = v["cp_ita"]
    header = jwt.get_unverified_header(token)
    assert header["kid"] == ita.kid and header["alg"] == ita.alg
    claims = verify_with_jwks(token, ita.jwks(), issuer=ita.issuer)
    assert claims == ita.last_token()["claims"]
    assert v["cp_ita_claims"]["tdx_mrtd"] == claims["tdx_mrtd"]
    assert v["cp_ita_claims"]["tdx_report_data"] == claims["tdx_report_data"]
    assert att["mrtd"] == claims["tdx_mrtd"]
    assert att["tcb_status"] == "UpToDate"
    return h, claims


@needs_cp_ita
def test_cp_boots_with_sim_provider_in_dev(start, ita):
    cp = start_cp(start, cp_env(ita, "sim"))
    _, claims = check_boot_token(cp, ita, "sim", True)
    # docs/attestation.md: simulated quotes carry this MRTD.
    assert claims["tdx_mrtd"] == hashlib.sha384(b"devopsdefender/simulated-td/v1").hexdigest()
    st = ita.stats()
    assert st["attest_ok"] == 1 and st["attest_failed"] == 0 and st["certs"] >= 1
    hdrs = ita.last_request_headers()
    assert hdrs.get("x-api-key") == API_KEY
    assert "application/json" in hdrs.get("accept", "")
    # The token's MRTD is the quote's.
    r = cp_attest(cp.port, "00" * 16)
    assert r.status == 200, r.body
    quote = base64.b64decode(r.json()["quote"])
    assert quote[184:232].hex() == claims["tdx_mrtd"] == r.json()["mrtd"]


@needs_cp_ita
def test_cp_boots_with_tsm_provider_without_dev(start, ita, tsm):
    cp = start_cp(start, cp_env(ita, "tsm", tsm))
    _, claims = check_boot_token(cp, ita, "tsm", False)
    assert claims["tdx_mrtd"] == STANDIN_MRTD
    # The CP minted over the report data it gave the provider.
    assert tsm.served == 1
    assert claims["tdx_report_data"] == tsm.last_report_data.hex()
    assert os.listdir(tsm.root) == []


@needs_cp_ita
def test_sim_provider_refused_outside_dev(ita):
    env = cp_env(ita, "sim")
    del env["DD_DEV"]
    out = boot_fails(env)
    assert re.search(r"sim|dev", out, re.I), out[-2000:]
    assert ita.stats()["attest_calls"] == 0


@needs_cp_ita
def test_cp_retries_ita_429_honouring_retry_after(start, ita):
    ita.fail(429, 2, retry_after=1)
    t0 = time.monotonic()
    cp = start_cp(start, cp_env(ita, "sim"))
    elapsed = time.monotonic() - t0
    st = ita.stats()
    assert st["attest_calls"] == 3 and st["attest_ok"] == 1, st
    assert elapsed >= 1.9, f"booted in {elapsed:.2f}s: Retry-After: 1 not honoured"
    check_boot_token(cp, ita, "sim", True)


@needs_cp_ita
def test_cp_exits_when_ita_retries_run_out(ita):
    ita.fail(503, 100)  # retried: 429, 500, 502, 503, 504 (src/attest/ita.c)
    out = boot_fails(cp_env(ita, "sim"))
    assert ita.stats()["attest_calls"] == 4, ita.stats()
    assert re.search(r"ITA|trust authority", out, re.I), out[-2000:]
    assert "503" in out, out[-2000:]


@needs_cp_ita
def test_cp_exits_when_ita_answers_500(ita):
    ita.fail(500, 100)
    out = boot_fails(cp_env(ita, "sim"))
    assert ita.stats()["attest_calls"] == 4, ita.stats()
    assert re.search(r"ITA|trust authority", out, re.I), out[-2000:]
    assert "500" in out, out[-2000:]


@needs_cp_ita
def test_cp_exits_on_wrong_api_key(ita):
    env = cp_env(ita, "sim")
    env["DD_ITA_API_KEY"] = "not-the-key"
    out = boot_fails(env)
    st = ita.stats()
    assert st["unauthorized"] == 1 and st["attest_calls"] == 1, st
    assert re.search(r"API key|401|unauthori[sz]ed", out, re.I), out[-2000:]
    assert "not-the-key" not in out  # the key never reaches the log


@needs_cp_ita
def test_cp_refuses_a_token_over_other_report_data(ita, tsm):
    ita.set_claims({"tdx_report_data": "ab" * 64})
    out = boot_fails(cp_env(ita, "tsm", tsm))
    assert ita.stats()["attest_ok"] == 1
    assert re.search(r"report.?data", out, re.I), out[-2000:]


@needs_cp_ita
@pytest.mark.parametrize("extra,cause", [
    ({"DD_ITA_ISSUER": "https://someone-else.invalid"}, r"iss"),
    ({"DD_ITA_JWKS_URL": "http://127.0.0.1:1/certs"}, r"JWKS"),
])
def test_cp_exits_on_a_token_it_cannot_trust(ita, extra, cause):
    out = boot_fails(dict(cp_env(ita, "sim"), **extra))
    assert ita.stats()["attest_ok"] == 1
    assert re.search(cause, out), out[-2000:]


@needs_cp_ita
@pytest.mark.parametrize("extra,cause", [
    ({"DD_ITA_REFRESH_SECS": "0"}, "DD_ITA_REFRESH_SECS"),
    ({"DD_QUOTE_PROVIDER": "nope"}, "DD_QUOTE_PROVIDER"),
    ({"DD_EXPECTED_MRTD": "xyz"}, "MRTD"),
    ({"DD_MEASUREMENT_ENFORCE": "maybe"}, "DD_MEASUREMENT_ENFORCE"),
])
def test_cp_refuses_bad_attestation_config(ita, extra, cause):
    out = boot_fails(dict(cp_env(ita, "sim"), **extra))
    assert cause in out, out[-2000:]
    assert ita.stats()["attest_calls"] == 0


# After a rotation the first token naming the new kid makes the verifier
# refetch the JWKS, throttled to one fetch per DD_ITA_JWKS_REFRESH_SECS.
@needs_cp_ita
def test_cp_picks_up_key_rotation(start, ita):
    cp = start_cp(start, cp_env(ita, "sim", DD_ITA_REFRESH_SECS=1,
                                DD_ITA_JWKS_REFRESH_SECS=1))
    old_kid = jwt.get_unverified_header(health(cp.port, True)["cp_ita"])["kid"]
    certs_before = ita.stats()["certs"]
    new_kid = ita.rotate(keep_old=False)
    assert new_kid != old_kid

    def rotated():
        return jwt.get_unverified_header(health(cp.port, True)["cp_ita"])["kid"] == new_kid

    try:
        wait_for(rotated, 8, "the CP's token to carry the rotated kid")
    except BaseException:
        print("\n".join(l for l in cp.output().splitlines()
                        if "level=info" not in l)[-3000:], ita.stats())
        raise
    assert ita.stats()["certs"] > certs_before  # it refetched the JWKS
    v = health(cp.port, True)
    verify_with_jwks(v["cp_ita"], ita.jwks(), issuer=ita.issuer)
    assert v["attestation"]["tcb_status"] == "UpToDate"
    assert cp.proc.poll() is None


@needs_cp_ita
def test_cp_follows_a_switch_to_rs256(start, ita):
    cp = start_cp(start, cp_env(ita, "sim", DD_ITA_REFRESH_SECS=1))
    assert jwt.get_unverified_header(health(cp.port, True)["cp_ita"])["alg"] == "PS384"
    ita.set_alg("RS256")

    def switched():
        return jwt.get_unverified_header(health(cp.port, True)["cp_ita"])["alg"] == "RS256"

    wait_for(switched, 15, "an RS256 token")
    v = health(cp.port, True)
    assert jwt.get_unverified_header(v["cp_ita"])["kid"] == ita.kid
    verify_with_jwks(v["cp_ita"], ita.jwks(), issuer=ita.issuer)


@needs_cp_ita
def test_cp_keeps_its_token_when_a_refresh_fails(start, ita):
    cp = start_cp(start, cp_env(ita, "sim", DD_ITA_REFRESH_SECS=1))
    token = health(cp.port, True)["cp_ita"]
    ita.fail(500, 1000)  # each round retries, then keeps the old token
    wait_for(lambda: ita.stats()["injected"] >= 2, 20, "two failed refreshes")
    h = health(cp.port, True)
    assert h["cp_ita"] == token
    assert cp.proc.poll() is None
    ita.fail(500, 0)
    wait_for(lambda: health(cp.port, True)["cp_ita"] != token, 20,
             "a new token once ITA recovers")


@needs_cp_ita
def test_pinned_mrtd_that_matches_boots(start, ita, tsm):
    cp = start_cp(start, cp_env(ita, "tsm", tsm,
                                DD_EXPECTED_MRTD=f"{OTHER_MRTD}, {STANDIN_MRTD.upper()}"))
    h, _ = check_boot_token(cp, ita, "tsm", False)
    assert pinning(h["attestation"]) in ("pass", True), h["attestation"]
    assert h["attestation"]["enforced"] is True


@needs_cp_ita
def test_unpinned_is_reported(start, ita, tsm):
    cp = start_cp(start, cp_env(ita, "tsm", tsm))
    h = health(cp.port)
    assert pinning(h["attestation"]) in ("unpinned", False), h["attestation"]


@needs_cp_ita
def test_pinned_mrtd_mismatch_is_fatal_when_enforced(ita, tsm):
    out = boot_fails(cp_env(ita, "tsm", tsm, DD_EXPECTED_MRTD=OTHER_MRTD))
    assert re.search(r"MRTD", out, re.I), out[-2000:]
    assert ita.stats()["attest_ok"] == 1


@needs_cp_ita
def test_tcb_below_the_floor_is_fatal_when_enforced(ita, tsm):
    ita.set_tcb("OutOfDate")
    out = boot_fails(cp_env(ita, "tsm", tsm, DD_EXPECTED_MRTD=STANDIN_MRTD,
                            DD_EXPECTED_TCB="UpToDate"))
    assert re.search(r"TCB", out), out[-2000:]


@needs_cp_ita
def test_pinned_mrtd_mismatch_only_warns_when_not_enforced(start, ita, tsm):
    cp = start_cp(start, cp_env(ita, "tsm", tsm, DD_EXPECTED_MRTD=OTHER_MRTD,
                                DD_MEASUREMENT_ENFORCE="0"))
    att = health(cp.port)["attestation"]
    assert att["mrtd"] == STANDIN_MRTD
    assert pinning(att) not in (True, "pass", "unpinned", False, None), att
    assert att["enforced"] is False, att
    assert re.search(r"MRTD", cp.output(), re.I)


@needs_cp_ita
def test_cp_attest_binds_the_nonce(start, ita, tsm):
    cp = start_cp(start, cp_env(ita, "tsm", tsm))
    for nonce in (bytes.fromhex("00112233445566778899aabbccddeeff"), b"\x01",
                  bytes(range(32))):
        r = cp_attest(cp.port, nonce.hex())
        assert r.status == 200, r.body
        assert "application/json" in r.header("content-type")
        a = r.json()
        expect = bind(nonce)
        assert a["nonce"] == nonce.hex()
        assert a["report_data"] == expect.hex()
        quote = base64.b64decode(a["quote"], validate=True)
        assert quote[568:632] == expect
        assert quote == quote_for(expect)
        assert a["mrtd"] == quote[184:232].hex() == STANDIN_MRTD
        assert a["rtmrs"] == [quote[o:o + 48].hex() for o in (376, 424, 472, 520)]
        assert a["provider"] == "tsm" and a["simulated"] is False
        claims = verify_with_jwks(a["token"], ita.jwks(), issuer=ita.issuer)
        assert claims["tdx_mrtd"] == a["mrtd"]
    # Upper-case hex is still the same nonce.
    r = cp_attest(cp.port, "ABCDEF")
    assert r.status == 200 and r.json()["report_data"] == bind(b"\xab\xcd\xef").hex()


@needs_cp_ita
def test_cp_attest_refuses_bad_nonces(start, ita, tsm):
    cp = start_cp(start, cp_env(ita, "tsm", tsm))
    served = tsm.served
    for q in ("", "?", "?nonce=", "?nonce=abc", "?nonce=zz", "?nonce=0x00",
              "?nonce=" + "00" * 33, "?nonce=%00%00", "?other=00",
              "?nonce=00%2000"):
        r = request(cp.port, "GET", "/cp/attest" + q)
        assert r.status == 400, (q, r.status, r.body)
        error_text(r)
    assert tsm.served == served  # no quote was made for any of them


@needs_cp_ita
def test_cp_attest_is_busy_while_a_quote_is_generated(start, ita, tsm):
    cp = start_cp(start, cp_env(ita, "tsm", tsm))
    tsm.delay = 2.0
    first = {}

    def slow():
        first["r"] = request(cp.port, "GET", "/cp/attest?nonce=01")

    t = threading.Thread(target=slow)
    t.start()
    try:
        wait_for(lambda: glob.glob(os.path.join(tsm.root, "dd-*")), 5,
                 "the first quote to be in generation")
        r = request(cp.port, "GET", "/cp/attest?nonce=02")
        assert r.status == 429, (r.status, r.body)
        assert int(r.header("retry-after")) >= 1
        error_text(r)
    finally:
        t.join(15)
    assert first["r"].status == 200, first["r"].body
    assert first["r"].json()["report_data"] == bind(b"\x01").hex()


@needs_cp_ita
def test_cp_attest_is_rate_limited(start, ita, tsm):
    cp = start_cp(start, cp_env(ita, "tsm", tsm))
    statuses = []
    for i in range(100):
        r = request(cp.port, "GET", f"/cp/attest?nonce={i:02x}")
        statuses.append(r.status)
        if r.status == 429:
            assert int(r.header("retry-after")) >= 1
            error_text(r)
            break
        assert r.status == 200, r.body
    assert statuses[-1] == 429, f"no 429 after {len(statuses)} quick requests"
    assert statuses[0] == 200


@needs_cp_ita
def test_cp_attest_reports_provider_failure_as_502(start, ita, tsm):
    cp = start_cp(start, cp_env(ita, "tsm", tsm))
    tsm.empty_outblob = True
    r = cp_attest(cp.port, "0102")
    assert r.status == 502, (r.status, r.body)
    error_text(r)
    tsm.empty_outblob = False
    r = cp_attest(cp.port, "0102")
    assert r.status == 200, r.body
    assert health(cp.port)["attestation"]["provider"] == "tsm"
