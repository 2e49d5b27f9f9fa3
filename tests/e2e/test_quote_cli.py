"""`devopsdefender quote`: operators' hand check of a TDX quote, on the
real quotes of tests/data/tdx (MRTDs from its README)."""
import base64
import json
import os
import subprocess

from conftest import DD_BIN, ROOT

DATA = os.path.join(ROOT, "tests", "data", "tdx")
NOW = "2025-06-25T00:00:00Z"
MRTD = {
    "dcap-qvl-tdx_quote.bin": "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7",
    "edgeless-tdx-v4.bin": "b65ea009e424e6f761fdd3d7c8962439453b37ecdf62da04f7bc5d327686bb8bafc8a5d24a9c31cee60e4aba87c2f71b",
    "tappd-tdx-v4.hex": "c68518a0ebb42136c12b2275164f8c72f25fa9a34392228687ed6e9caeb9c0f1dbd895e9cf475121c029dc47e70e91fd",
}


def quote(args, stdin=None, env=None):
    full = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    full.update(env or {})
    r = subprocess.run([DD_BIN, "quote"] + args, input=stdin, env=full,
                       capture_output=True, timeout=30)
    out = json.loads(r.stdout) if r.stdout.strip() else None
    return r.returncode, out, r.stderr.decode()


def test_real_quotes_verify_and_show_their_measurements():
    for name, mrtd in MRTD.items():
        rc, out, _ = quote([os.path.join(DATA, name), "--now", NOW])
        assert rc == 0, (name, out)
        assert out["quote"]["mrtd"] == mrtd
        assert out["verification"]["ok"] is True
        assert len(out["quote"]["rtmr"]) == 4


def test_collateral_gives_the_tcb_status():
    rc, out, _ = quote([os.path.join(DATA, "dcap-qvl-tdx_quote.bin"), "--now", NOW,
                        "--collateral", os.path.join(DATA, "dcap-qvl-tdx_quote_collateral.json")])
    assert rc == 0
    assert out["verification"]["tcb_status"] == "UpToDate"


def test_base64_on_stdin():
    raw = open(os.path.join(DATA, "edgeless-tdx-v4.bin"), "rb").read()
    rc, out, _ = quote(["-", "--now", NOW], stdin=base64.b64encode(raw))
    assert rc == 0
    assert out["quote"]["mrtd"] == MRTD["edgeless-tdx-v4.bin"]


def test_tampered_quote_is_refused_with_a_reason():
    raw = bytearray(open(os.path.join(DATA, "dcap-qvl-tdx_quote.bin"), "rb").read())
    raw[184] ^= 1  # first byte of MRTD
    rc, out, _ = quote(["-", "--now", NOW], stdin=bytes(raw))
    assert rc == 1
    assert out["verification"]["ok"] is False
    assert out["verification"]["reason"] != "ok"
    assert out["verification"]["detail"]


def test_garbage_and_truncation_are_refused():
    raw = open(os.path.join(DATA, "dcap-qvl-tdx_quote.bin"), "rb").read()
    for data in (b"", b"hello", raw[:500], raw[:-100]):
        rc, out, _ = quote(["-", "--now", NOW], stdin=data)
        assert rc == 1
        assert out["verification"]["ok"] is False


def test_expired_certificates_fail_at_a_late_date():
    rc, out, _ = quote([os.path.join(DATA, "dcap-qvl-tdx_quote.bin"), "--now",
                        "2099-01-01T00:00:00Z"])
    assert rc == 1


def test_simulated_quotes_only_in_dev_mode():
    sim = os.path.join(ROOT, "fuzz", "seeds", "quote", "simulated-v4.bin")
    rc, out, _ = quote([sim])
    assert rc == 1
    assert out["quote"]["simulated"] is True
    rc, out, _ = quote([sim], env={"DD_DEV": "1"})
    assert rc == 0
    assert out["verification"]["simulated"] is True


def test_usage_errors():
    assert quote(["--bogus"])[0] == 2
    assert quote(["--now", "yesterday"])[0] == 2
    assert quote(["/nonexistent/quote.bin"])[0] == 2
