"""A stand-in for GitHub Actions' OIDC issuer on loopback: an RSA key, its
JWKS at /.well-known/jwks, and tokens shaped like GitHub's (ids as
strings, a fresh jti each), minted in-process with python3-jwt."""
import itertools
import json
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

import fakehttp


class FakeOIDC(fakehttp.FakeServer):
    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "fake-oidc-1"
        self._ids = itertools.count(1)

    def start(self):
        return self.serve(_Handler, name="fake-oidc")

    @property
    def issuer(self):
        return self.url

    @property
    def jwks_url(self):
        return self.issuer + "/.well-known/jwks"

    def token(self, owner, owner_id, repo="app", **over):
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": "dd-agent", "iat": now,
                  "nbf": now, "exp": now + 300,
                  "jti": f"jti-{next(self._ids)}",
                  "sub": f"repo:{owner}/{repo}:ref:refs/heads/main",
                  "repository": f"{owner}/{repo}", "repository_id": "77",
                  "repository_owner": owner,
                  "repository_owner_id": str(owner_id),
                  "ref": "refs/heads/main", "workflow": "deploy",
                  "actor": "octocat"}
        claims.update(over)
        return jwt.encode(claims, self.key, algorithm="RS256",
                          headers={"kid": self.kid})

    def env(self):
        return {"DD_OIDC_ISSUER": self.issuer, "DD_OIDC_JWKS_URL": self.jwks_url}


class _Handler(fakehttp.Handler):
    def do_GET(self):
        if self.path != "/.well-known/jwks":
            self.send_error(404)
            return
        key = self.fake.key.public_key()
        jwk = json.loads(RSAAlgorithm.to_jwk(key))
        jwk.update({"kid": self.fake.kid, "alg": "RS256", "use": "sig"})
        self.send(200, {"keys": [jwk]})
