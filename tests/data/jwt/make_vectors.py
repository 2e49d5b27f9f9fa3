#!/usr/bin/python3
"""Writes vectors.json: a JWKS and tokens made by an independent library
(python3-jwt on python3-cryptography, Debian packages) with the verdict
src/auth/jwt.c must reach for each at a fixed "now".

Run once with /usr/bin/python3 and commit the output; the unit tests
(tests/unit/test_jwt.c, test_python_vectors) only read the JSON, so no
Python runs during `meson test`. Keys are fresh on every run.
"""
import base64
import hashlib
import hmac
import json
import os
import sys

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature)

NOW = 1750000000
ISS = "https://token.actions.githubusercontent.com"
AUD = "dd-agent"
POLICY = {"iss": ISS, "aud": AUD, "leeway": 60, "max_age": 900}


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk_of(pub, kid, alg=None):
    if isinstance(pub, rsa.RSAPublicKey):
        d = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(pub))
    else:
        d = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(pub))
    d["kid"] = kid
    d["use"] = "sig"
    if alg:
        d["alg"] = alg
    return d


def claims(**over):
    c = {"iss": ISS, "aud": AUD, "sub": "repo:octo-org/octo-repo:ref:"
         "refs/heads/main", "repository": "octo-org/octo-repo",
         "repository_id": "74", "repository_owner": "octo-org",
         "repository_owner_id": "65", "jti": "b6f1c4e2",
         "iat": NOW - 30, "nbf": NOW - 30, "exp": NOW + 300}
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def manual(header, payload, sign):
    h = b64(json.dumps(header, separators=(",", ":")).encode())
    p = b64(json.dumps(payload, separators=(",", ":")).encode())
    inp = (h + "." + p).encode()
    return h + "." + p + "." + b64(sign(inp))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "vectors.json")
    rsa2k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa3k = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    p256 = ec.generate_private_key(ec.SECP256R1())
    p384 = ec.generate_private_key(ec.SECP384R1())
    stranger = rsa.generate_private_key(public_exponent=65537,
                                        key_size=2048)
    edk = ed25519.Ed25519PrivateKey.generate()
    ed_x = edk.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)
    jwks = {"keys": [
        jwk_of(rsa2k.public_key(), "py-rsa"),
        jwk_of(rsa3k.public_key(), "py-ps384", "PS384"),
        jwk_of(p256.public_key(), "py-p256", "ES256"),
        jwk_of(p384.public_key(), "py-p384"),
        {"kty": "OKP", "crv": "Ed25519", "x": b64(ed_x), "kid": "py-ed",
         "use": "sig", "alg": "EdDSA"},
    ]}

    def enc(key, alg, kid, payload, **hdr):
        headers = {"kid": kid} if kid is not None else {}
        headers.update(hdr)
        return jwt.encode(payload, key, algorithm=alg, headers=headers)

    cases = []

    def case(name, token, expect, payload=None):
        c = {"name": name, "token": token, "expect": expect}
        if expect == "ok":
            c["claims"] = payload
        cases.append(c)

    for alg, key, kid in [("RS256", rsa2k, "py-rsa"),
                          ("RS384", rsa2k, "py-rsa"),
                          ("RS512", rsa2k, "py-rsa"),
                          ("PS256", rsa2k, "py-rsa"),
                          ("PS512", rsa2k, "py-rsa"),
                          ("PS384", rsa3k, "py-ps384"),
                          ("ES256", p256, "py-p256"),
                          ("ES384", p384, "py-p384")]:
        c = claims()
        case("ok-" + alg, enc(key, alg, kid, c), "ok", c)
    c = claims(exp=NOW + 300.5, iat=NOW - 29.75, nbf=None,
               aud=["other", AUD])
    case("ok-reals-and-aud-array", enc(rsa2k, "RS256", "py-rsa", c), "ok",
         c)
    case("expired", enc(rsa2k, "RS256", "py-rsa", claims(exp=NOW - 61)),
         "expired")
    case("expired-within-leeway-ok",
         enc(rsa2k, "RS256", "py-rsa", claims(exp=NOW - 59)), "ok",
         claims(exp=NOW - 59))
    case("not-yet-valid",
         enc(p256, "ES256", "py-p256", claims(nbf=NOW + 120)),
         "not_yet_valid")
    case("too-old", enc(rsa3k, "PS384", "py-ps384",
                        claims(iat=NOW - 1000, nbf=NOW - 1000)), "too_old")
    case("iat-future", enc(p384, "ES384", "py-p384",
                           claims(iat=NOW + 600)), "iat_future")
    case("no-iat", enc(rsa2k, "RS256", "py-rsa", claims(iat=None)),
         "missing_claim")
    case("no-exp", enc(rsa2k, "RS256", "py-rsa", claims(exp=None)),
         "missing_claim")
    case("wrong-aud", enc(rsa2k, "RS256", "py-rsa", claims(aud="dd")),
         "bad_audience")
    case("wrong-aud-array", enc(rsa2k, "RS256", "py-rsa",
                                claims(aud=["a", "b"])), "bad_audience")
    case("empty-aud-array", enc(rsa2k, "RS256", "py-rsa", claims(aud=[])),
         "bad_audience")
    case("aud-number", enc(rsa2k, "RS256", "py-rsa", claims(aud=5)),
         "bad_audience")
    case("wrong-iss", enc(rsa2k, "RS256", "py-rsa",
                          claims(iss="https://evil.example")), "bad_issuer")
    case("unknown-kid", enc(rsa2k, "RS256", "py-nope", claims()),
         "unknown_kid")
    case("no-kid", enc(rsa2k, "RS256", None, claims()), "no_kid")
    case("skipped-okp-kid", enc(rsa2k, "RS256", "py-ed", claims()),
         "unknown_kid")
    case("stranger-key", enc(stranger, "RS256", "py-rsa", claims()),
         "bad_signature")
    case("jwk-alg-mismatch", enc(rsa3k, "RS384", "py-ps384", claims()),
         "bad_alg")
    case("family-mismatch", enc(p256, "ES256", "py-rsa", claims()),
         "bad_alg")
    case("curve-mismatch", enc(p384, "ES384", "py-p256", claims()),
         "bad_alg")
    case("crit", enc(rsa2k, "RS256", "py-rsa", claims(), crit=["exp"],
                     exp=1), "malformed")
    # HS256 keyed with the RSA public key PEM (pyjwt itself refuses to).
    pem = rsa2k.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo)
    case("hs256-with-rsa-pem", manual(
        {"alg": "HS256", "kid": "py-rsa", "typ": "JWT"}, claims(),
        lambda m: hmac.new(pem, m, hashlib.sha256).digest()), "bad_alg")
    case("alg-none", manual({"alg": "none", "kid": "py-rsa"}, claims(),
                            lambda m: b""), "bad_alg")

    def es256_der(m):
        return p256.sign(m, ec.ECDSA(hashes.SHA256()))

    case("es256-der-signature", manual(
        {"alg": "ES256", "kid": "py-p256"}, claims(), es256_der),
        "bad_signature")

    def es256_short(m):
        r, s = decode_dss_signature(p256.sign(m, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")[:-1]

    case("es256-short-signature", manual(
        {"alg": "ES256", "kid": "py-p256"}, claims(), es256_short),
        "bad_signature")
    good = enc(rsa2k, "RS256", "py-rsa", claims())
    h, p, s = good.split(".")
    forged = b64(json.dumps(claims(sub="repo:evil/repo:ref:x"),
                            separators=(",", ":")).encode())
    case("tampered-payload", h + "." + forged + "." + s, "bad_signature")
    case("padded", good + "=", "malformed")
    case("std-alphabet", h + "." + p + "." + s.replace("-", "+")
         .replace("_", "/") + ("" if ("-" in s or "_" in s) else "+"),
         "malformed")
    case("two-parts", h + "." + p, "malformed")
    case("four-parts", good + "." + s, "malformed")

    doc = {"generator": "make_vectors.py (python3-jwt %s)" % jwt.__version__,
           "now": NOW, "policy": POLICY, "usable_keys": 4, "jwks": jwks,
           "cases": cases}
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print("wrote %d cases to %s" % (len(cases), out))


if __name__ == "__main__":
    main()
