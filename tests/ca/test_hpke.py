"""HPKE against RFC 9180's own vectors and against an independent implementation (OpenSSL's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hpke as openssl_hpke

from ca import hpke
from ca import primitives as p
from ca.errors import HpkeError

VECTORS = Path(__file__).parent.parent / "vectors"

A31 = json.loads((VECTORS / "hpke-rfc9180-a31.json").read_text())


def h(name: str) -> bytes:
    return bytes.fromhex(A31[name])


def test_derive_key_pair_matches_the_rfc() -> None:
    for ikm, sk, pk in (("ikmE", "skEm", "pkEm"), ("ikmR", "skRm", "pkRm")):
        key = hpke.derive_key_pair(h(ikm))
        assert p.ec_scalar(key) == h(sk)
        assert p.ec_point(key.public_key()) == h(pk)


def test_seal_and_open_reproduce_the_rfc_vector() -> None:
    recipient = hpke.derive_key_pair(h("ikmR"))
    enc, ct = hpke.seal(
        recipient.public_key(),
        h("info"),
        h("aad"),
        h("pt"),
        aead_id=hpke.AEAD_AES_128_GCM,
        ikm_e=h("ikmE"),
    )
    assert (enc, ct) == (h("pkEm"), h("ct"))
    opened = hpke.open_(enc, recipient, h("info"), h("aad"), ct, aead_id=hpke.AEAD_AES_128_GCM)
    assert opened == h("pt")


def _openssl_suite() -> openssl_hpke.Suite:
    return openssl_hpke.Suite(
        openssl_hpke.KEM.P256, openssl_hpke.KDF.HKDF_SHA256, openssl_hpke.AEAD.AES_256_GCM
    )


def test_our_suite_interoperates_with_openssl_both_ways() -> None:
    recipient = p.generate_ec_key()
    enc, ct = hpke.seal(recipient.public_key(), b"bidroom info", b"", b"data key")
    assert _openssl_suite().decrypt(enc + ct, recipient, info=b"bidroom info") == b"data key"
    theirs = _openssl_suite().encrypt(b"data key 2", recipient.public_key(), info=b"x")
    assert hpke.open_(theirs[:65], recipient, b"x", b"", theirs[65:]) == b"data key 2"


def test_the_published_vector_for_our_suite_holds() -> None:
    vector = json.loads((VECTORS / "hpke-p256-sha256-aes256gcm.json").read_text())
    x = {
        k: bytes.fromhex(v) for k, v in vector.items() if k not in ("suite", "note", "encryptions")
    }
    recipient = hpke.derive_key_pair(x["ikmR"])
    assert p.ec_point(recipient.public_key()) == x["pkRm"]
    for encryption in vector["encryptions"]:
        aad, ct = bytes.fromhex(encryption["aad"]), bytes.fromhex(encryption["ct"])
        assert hpke.seal(recipient.public_key(), x["info"], aad, x["pt"], ikm_e=x["ikmE"]) == (
            x["enc"],
            ct,
        )
        assert hpke.open_(x["enc"], recipient, x["info"], aad, ct) == x["pt"]
    no_aad = bytes.fromhex(vector["encryptions"][0]["ct"])
    opened = _openssl_suite().decrypt(x["enc"] + no_aad, recipient, info=x["info"])
    assert opened == x["pt"], "an independent implementation opens the published vector"


@pytest.mark.parametrize("tamper", ["enc", "ct", "info", "aad", "recipient"])
def test_anything_altered_fails_to_open(tamper: str) -> None:
    recipient = p.generate_ec_key()
    enc, ct = hpke.seal(recipient.public_key(), b"info", b"aad", b"secret")
    args = {"enc": enc, "sk_r": recipient, "info": b"info", "aad": b"aad", "ciphertext": ct}
    if tamper == "enc":
        args["enc"] = p.ec_point(p.generate_ec_key().public_key())
    elif tamper == "ct":
        args["ciphertext"] = bytes([ct[0] ^ 1]) + ct[1:]
    elif tamper == "recipient":
        args["sk_r"] = p.generate_ec_key()
    else:
        args[tamper] = b"other"
    with pytest.raises(HpkeError):
        hpke.open_(**args)  # type: ignore[arg-type]


def test_a_malformed_enc_is_refused() -> None:
    with pytest.raises(HpkeError) as caught:
        hpke.open_(b"\x04" + b"\x00" * 64, p.generate_ec_key(), b"", b"", b"x" * 32)
    assert caught.value.code == "hpke_bad_enc"
