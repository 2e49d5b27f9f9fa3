"""A second, independent Noise_IK_25519_ChaChaPoly_BLAKE2s, written for
the tests from the Noise specification (revision 34) with Python's
`cryptography` and `hashlib.blake2s`, so the C implementation is checked
against something that is not itself. test_noise_gw.py proves it on the
public vectors before it drives /noise/ws."""
import hashlib
import hmac

from cryptography.hazmat.primitives.asymmetric.x25519 import (X25519PrivateKey,
                                                              X25519PublicKey)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization

NAME = b"Noise_IK_25519_ChaChaPoly_BLAKE2s"
HASHLEN = 32


def _h(data):
    return hashlib.blake2s(data).digest()


def _hkdf(ck, ikm, n):
    temp = hmac.new(ck, ikm, hashlib.blake2s).digest()
    out, prev = [], b""
    for i in range(1, n + 1):
        prev = hmac.new(temp, prev + bytes([i]), hashlib.blake2s).digest()
        out.append(prev)
    return out


def public_of(priv):
    return X25519PrivateKey.from_private_bytes(priv).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _dh(priv, pub):
    return X25519PrivateKey.from_private_bytes(priv).exchange(
        X25519PublicKey.from_public_bytes(pub))


class Cipher:
    def __init__(self, k=None):
        self.k, self.n = k, 0

    def _nonce(self):
        return b"\0" * 4 + self.n.to_bytes(8, "little")

    def encrypt(self, ad, pt):
        if self.k is None:
            return pt
        ct = ChaCha20Poly1305(self.k).encrypt(self._nonce(), pt, ad)
        self.n += 1
        return ct

    def decrypt(self, ad, ct):
        if self.k is None:
            return ct
        pt = ChaCha20Poly1305(self.k).decrypt(self._nonce(), ct, ad)
        self.n += 1
        return pt


class Symmetric:
    def __init__(self, prologue):
        self.h = NAME + b"\0" * (HASHLEN - len(NAME)) if len(NAME) <= HASHLEN else _h(NAME)
        self.ck = self.h
        self.c = Cipher()
        self.mix_hash(prologue)

    def mix_hash(self, data):
        self.h = _h(self.h + data)

    def mix_key(self, ikm):
        self.ck, k = _hkdf(self.ck, ikm, 2)
        self.c = Cipher(k)

    def encrypt_and_hash(self, pt):
        ct = self.c.encrypt(self.h, pt)
        self.mix_hash(ct)
        return ct

    def decrypt_and_hash(self, ct):
        pt = self.c.decrypt(self.h, ct)
        self.mix_hash(ct)
        return pt

    def split(self):
        k1, k2 = _hkdf(self.ck, b"", 2)
        return Cipher(k1), Cipher(k2)


class Initiator:
    """IK initiator: write message 1, read message 2, then transport."""

    def __init__(self, s_priv, rs, prologue=b"", e_priv=None):
        self.s, self.s_pub = s_priv, public_of(s_priv)
        self.rs = rs
        self.e = e_priv or X25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
            serialization.NoEncryption())
        self.sym = Symmetric(prologue)
        self.sym.mix_hash(rs)            # pre-message <- s

    def write1(self, payload=b""):
        e_pub = public_of(self.e)
        self.sym.mix_hash(e_pub)
        self.sym.mix_key(_dh(self.e, self.rs))          # es
        out = e_pub + self.sym.encrypt_and_hash(self.s_pub)
        self.sym.mix_key(_dh(self.s, self.rs))          # ss
        return out + self.sym.encrypt_and_hash(payload)

    def read2(self, msg):
        re = msg[:32]
        self.sym.mix_hash(re)
        self.sym.mix_key(_dh(self.e, re))               # ee
        self.sym.mix_key(_dh(self.s, re))               # se
        payload = self.sym.decrypt_and_hash(msg[32:])
        self.send, self.recv = self.sym.split()
        self.handshake_hash = self.sym.h
        return payload


class Responder:
    """IK responder (for the vectors): read message 1, write message 2."""

    def __init__(self, s_priv, prologue=b"", e_priv=None):
        self.s, self.s_pub = s_priv, public_of(s_priv)
        self.e = e_priv
        self.sym = Symmetric(prologue)
        self.sym.mix_hash(self.s_pub)

    def read1(self, msg):
        re = msg[:32]
        self.sym.mix_hash(re)
        self.sym.mix_key(_dh(self.s, re))               # es
        self.rs = self.sym.decrypt_and_hash(msg[32:80])
        self.sym.mix_key(_dh(self.s, self.rs))          # ss
        self.re = re
        return self.sym.decrypt_and_hash(msg[80:])

    def write2(self, payload=b""):
        e_pub = public_of(self.e)
        self.sym.mix_hash(e_pub)
        self.sym.mix_key(_dh(self.e, self.re))          # ee
        self.sym.mix_key(_dh(self.e, self.rs))          # se
        out = e_pub + self.sym.encrypt_and_hash(payload)
        self.recv, self.send = self.sym.split()
        self.handshake_hash = self.sym.h
        return out
