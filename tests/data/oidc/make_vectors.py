#!/usr/bin/python3
"""Writes vectors.json: GitHub-Actions-shaped OIDC tokens made by an
independent library (python3-jwt on python3-cryptography, Debian
packages) for src/auth/oidc.c, with a JWKS to serve them from.

Run with /usr/bin/python3 and commit the output; tests/unit/test_oidc.c
only reads the JSON, so no Python runs during `meson test`. Keys are
fresh on every run, times are fixed: every token is judged at NOW, and
what each one must get is written next to it ("expect", plus the JWT
reason for bad_token), so the C test reads both from one place.

The tokens that python3-jwt refuses to make on purpose (alg "none", HS256
keyed with the RSA public key PEM, a tampered payload or signature) are
assembled by hand below from the same building blocks.
"""
import base64
import hashlib
import hmac
import json
import os
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

NOW = 1750000000
ISS = "https://token.actions.githubusercontent.com"
AUD = "dd-agent"
LEEWAY = 60
MAX_AGE = 900

OWNER, OWNER_ID = "octo-org", "65"
REPO, REPO_ID = "octo-org/octo-repo", "74"

KID = "cc413527-173f-5a05-976e-9c52b1d7b431"       # in the JWKS
KID_ANY = "b8e5a1f2-0000-4e6a-9a0c-rsa-without-alg"  # RSA, no "alg"
KID_EC = "ec-p256-1"                                # P-256, no "alg"
KID_NEXT = "2f1e0d9c-8b7a-4a65-8f43-21e0d9c8b7a6"    # rotated in later
KID_UNKNOWN = "ffffffff-dead-4bee-8f00-000000000000"  # never published


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwk_of(pub, kid, alg=None):
    if isinstance(pub, rsa.RSAPublicKey):
        d = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(pub))
    else:
        d = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(pub))
    d.pop("key_ops", None)
    d["kid"] = kid
    d["use"] = "sig"
    if alg:
        d["alg"] = alg
    return d


def claims(n, **over):
    """What GitHub puts in a token (docs.github.com, "OIDC token claims";
    github/actions-oidc-debugger output): ids as strings, nbf five
    minutes before iat, exp six hours after it. n makes the jti unique."""
    iat = NOW - 30
    c = {
        "jti": "4a576b35-ff09-41c5-af2c-%012d" % n,
        "sub": "repo:octo-org/octo-repo:ref:refs/heads/main",
        "aud": AUD,
        "ref": "refs/heads/main",
        "ref_protected": "true",
        "ref_type": "branch",
        "sha": "7f93a73b8273af5d35fcd70661704c1cadc57054",
        "repository": REPO,
        "repository_id": REPO_ID,
        "repository_owner": OWNER,
        "repository_owner_id": OWNER_ID,
        "repository_visibility": "private",
        "run_id": "9876543210",
        "run_number": "42",
        "run_attempt": "1",
        "runner_environment": "github-hosted",
        "actor": "octocat",
        "actor_id": "583231",
        "workflow": "Deploy",
        "workflow_ref": "octo-org/octo-repo/.github/workflows/deploy.yml"
                        "@refs/heads/main",
        "workflow_sha": "7f93a73b8273af5d35fcd70661704c1cadc57054",
        "job_workflow_ref": "octo-org/octo-repo/.github/workflows/"
                            "deploy.yml@refs/heads/main",
        "job_workflow_sha": "7f93a73b8273af5d35fcd70661704c1cadc57054",
        "event_name": "workflow_dispatch",
        "head_ref": "",
        "base_ref": "",
        "iss": ISS,
        "nbf": iat - 300,
        "iat": iat,
        "exp": iat + 21600,
    }
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "vectors.json")
    gh = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    anyalg = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    nxt = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger = rsa.generate_private_key(public_exponent=65537,
                                        key_size=2048)
    p256 = ec.generate_private_key(ec.SECP256R1())

    # GitHub's own JWKS carries RSA keys marked RS256. The extra keys have
    # no "alg", so only the verifier's RS256-only policy can refuse
    # RS384, PS256 and ES256 tokens signed with them.
    base_keys = [jwk_of(gh.public_key(), KID, "RS256"),
                 jwk_of(anyalg.public_key(), KID_ANY),
                 jwk_of(p256.public_key(), KID_EC)]
    jwks = {"keys": base_keys}
    jwks_rotated = {"keys": base_keys +
                    [jwk_of(nxt.public_key(), KID_NEXT, "RS256")]}
    pem = gh.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo)

    def enc(payload, key=gh, alg="RS256", kid=KID):
        return jwt.encode(payload, key, algorithm=alg,
                          headers={"kid": kid, "typ": "JWT"})

    def manual(header, payload, sign):
        h = b64(json.dumps(header, separators=(",", ":")).encode())
        p = b64(json.dumps(payload, separators=(",", ":")).encode())
        return h + "." + p + "." + b64(sign((h + "." + p).encode()))

    cases = []
    seq = [0]

    # "expect" is the verdict when the org octo-org (65) is accepted,
    # "expect_repo" when only the repository octo-org/octo-repo (74) is.
    def case(name, token, expect, reason=None, payload=None,
             expect_repo=None):
        c = {"name": name, "token": token, "expect": expect,
             "expect_repo": expect_repo or expect}
        if reason:
            c["reason"] = reason
        if payload is not None:
            c["claims"] = payload
        cases.append(c)

    def tok(name, expect, reason=None, key=gh, alg="RS256", kid=KID,
            expect_repo=None, **over):
        seq[0] += 1
        c = claims(seq[0], **over)
        case(name, enc(c, key, alg, kid), expect, reason, c, expect_repo)
        return c

    # Accepted, both ways round each boundary.
    tok("good", "ok")
    tok("good_int_ids", "ok", repository_id=74, repository_owner_id=65)
    tok("good_aud_array", "ok", aud=["https://github.com/octo-org", AUD])
    tok("exp_within_leeway", "ok", exp=NOW - 59)
    tok("nbf_within_leeway", "ok", nbf=NOW + 59)
    tok("iat_within_leeway", "ok", iat=NOW + 60, nbf=NOW - 300)
    tok("age_at_limit", "ok", iat=NOW - MAX_AGE - LEEWAY)
    tok("jti_max_len", "ok", jti="j" * 256)
    tok("other_repo_same_owner", "ok", repository="octo-org/other-repo",
        repository_id="75", expect_repo="wrong_owner",
        sub="repo:octo-org/other-repo:ref:refs/heads/main")
    # Only in jwks_rotated: unknown_kid until the JWKS is refetched.
    tok("rotated_kid", "ok", key=nxt, kid=KID_NEXT)
    # 254 bytes of sub fit in 255; the next two-byte character does not.
    tok("long_sub_utf8", "ok",
        sub="repo:octo-org/octo-repo:ref:refs/heads/x" + "\u00e9" * 200)

    # The registered claims.
    tok("expired", "bad_token", "expired", exp=NOW - 61)
    tok("nbf_future", "bad_token", "not_yet_valid", nbf=NOW + 61)
    tok("iat_future", "bad_token", "iat_future", iat=NOW + 61,
        nbf=NOW - 300)
    tok("too_old", "bad_token", "too_old", iat=NOW - MAX_AGE - LEEWAY - 1)
    tok("no_iat", "bad_token", "missing_claim", iat=None)
    tok("aud_github_default", "bad_token", "bad_audience",
        aud="https://github.com/octo-org")
    tok("aud_array_without_ours", "bad_token", "bad_audience",
        aud=["https://github.com/octo-org", "sts.amazonaws.com"])
    tok("aud_missing", "bad_token", "missing_claim", aud=None)
    tok("iss_trailing_slash", "bad_token", "bad_issuer", iss=ISS + "/")
    tok("iss_enterprise", "bad_token", "bad_issuer",
        iss=ISS + "/octo-enterprise")

    # The replay guard: no jti, no entry.
    tok("no_jti", "bad_token", "missing_claim", jti=None)
    tok("jti_empty", "bad_token", "missing_claim", jti="")
    tok("jti_number", "bad_token", "malformed", jti=12345)
    tok("jti_too_long", "bad_token", "malformed", jti="j" * 257)

    # The principal: name and id must both match.
    # A repo principal looks at repository + repository_id only, so the
    # owner's claims going wrong does not matter to it, and vice versa.
    WO = "wrong_owner"
    tok("owner_wrong_id", WO, repository_owner_id="66", expect_repo="ok")
    tok("owner_wrong_name", WO, repository_owner="octo-0rg",
        repository="octo-0rg/octo-repo")
    tok("owner_id_zero", WO, repository_owner_id="0", expect_repo="ok")
    tok("owner_id_missing", WO, repository_owner_id=None, expect_repo="ok")
    tok("owner_id_negative", WO, repository_owner_id=-65, expect_repo="ok")
    tok("owner_id_negative_str", WO, repository_owner_id="-65",
        expect_repo="ok")
    tok("owner_id_real", WO, repository_owner_id=65.0, expect_repo="ok")
    tok("owner_id_leading_zero", WO, repository_owner_id="065",
        expect_repo="ok")
    tok("owner_id_spaces", WO, repository_owner_id=" 65", expect_repo="ok")
    tok("owner_id_hex", WO, repository_owner_id="0x41", expect_repo="ok")
    tok("owner_id_overflow", WO,
        repository_owner_id="18446744073709551681", expect_repo="ok")
    tok("owner_id_bool", WO, repository_owner_id=True, expect_repo="ok")
    tok("owner_case", WO, repository_owner="Octo-Org", expect_repo="ok")
    tok("owner_name_too_long", WO, repository_owner="o" * 141,
        expect_repo="ok")
    tok("repo_wrong_id", "ok", repository_id="76", expect_repo=WO)
    tok("repo_id_zero", "ok", repository_id="0", expect_repo=WO)
    tok("repo_int_id", "ok", repository_id=74)
    tok("repo_case", "ok", repository="octo-org/Octo-Repo", expect_repo=WO)
    tok("big_ids", "ok", repository_id="18446744073709551615",
        actor_id="9223372036854775808", expect_repo=WO)

    # Keys and algorithms.
    tok("unknown_kid", "bad_token", "unknown_kid", key=stranger,
        kid=KID_UNKNOWN)
    tok("wrong_key_known_kid", "bad_token", "bad_signature", key=stranger)
    tok("rs384", "bad_token", "bad_alg", key=anyalg, alg="RS384",
        kid=KID_ANY)
    tok("ps256", "bad_token", "bad_alg", key=anyalg, alg="PS256",
        kid=KID_ANY)
    tok("es256", "bad_token", "bad_alg", key=p256, alg="ES256", kid=KID_EC)
    tok("rs512", "bad_token", "bad_alg", alg="RS512")
    seq[0] += 1
    case("alg_none", manual({"alg": "none", "typ": "JWT", "kid": KID},
                            claims(seq[0]), lambda _: b""),
         "bad_token", "bad_alg")
    seq[0] += 1
    case("hs256_with_public_pem",
         manual({"alg": "HS256", "typ": "JWT", "kid": KID}, claims(seq[0]),
                lambda inp: hmac.new(pem, inp, hashlib.sha256).digest()),
         "bad_token", "bad_alg")

    # Tampering with a good token's parts.
    seq[0] += 1
    good = enc(claims(seq[0]))
    h, p, s = good.split(".")
    forged = claims(seq[0], repository_owner="evil-org",
                    repository_owner_id="666")
    case("tampered_payload", h + "." + b64(json.dumps(
        forged, separators=(",", ":")).encode()) + "." + s,
         "bad_token", "bad_signature")
    sig = bytearray(unb64(s))
    sig[100] ^= 0x01
    case("tampered_signature", h + "." + p + "." + b64(bytes(sig)),
         "bad_token", "bad_signature")

    # Over DD_OIDC_MAX_TOKEN (8 KiB) but under the JWT layer's 16 KiB.
    tok("oversized", "bad_token", "too_large", padding="x" * 6500)

    doc = {
        "generator": "make_vectors.py (python3-jwt %s)" % jwt.__version__,
        "now": NOW,
        "issuer": ISS,
        "audience": AUD,
        "leeway": LEEWAY,
        "max_age": MAX_AGE,
        "owner": {"name": OWNER, "id": int(OWNER_ID)},
        "repo": {"name": REPO, "id": int(REPO_ID)},
        "jwks": jwks,
        "jwks_rotated": jwks_rotated,
        "cases": cases,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
