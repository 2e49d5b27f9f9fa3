"""A stand-in for GitHub Actions' OIDC issuer on loopback: an RSA key, its
JWKS at /.well-known/jwks, and tokens shaped like GitHub's (ids as
strings, a fresh jti each), minted in-process with python3-jwt."""
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


class FakeOIDC:
    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "fake-oidc-1"
        self._ids = itertools.count(1)
        self._httpd = None

    def start(self):
        owner = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != "/.well-known/jwks":
                    self.send_error(404)
                    return
                jwk = json.loads(RSAAlgorithm.to_jwk(owner.key.public_key()))
                jwk.update({"kid": owner.kid, "alg": "RS256", "use": "sig"})
                body = json.dumps({"keys": [jwk]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def issuer(self):
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

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
