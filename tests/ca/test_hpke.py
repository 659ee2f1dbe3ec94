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

# RFC 9180 Appendix A.3.1: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode.
A31 = {
    "info": "4f6465206f6e2061204772656369616e2055726e",
    "ikmE": "4270e54ffd08d79d5928020af4686d8f6b7d35dbe470265f1f5aa22816ce860e",
    "pkEm": "04a92719c6195d5085104f469a8b9814d5838ff72b60501e2c4466e5e67b325ac98536d7b61a1af4"
    "b78e5b7f951c0900be863c403ce65c9bfcb9382657222d18c4",
    "skEm": "4995788ef4b9d6132b249ce59a77281493eb39af373d236a1fe415cb0c2d7beb",
    "ikmR": "668b37171f1072f3cf12ea8a236a45df23fc13b82af3609ad1e354f6ef817550",
    "pkRm": "04fe8c19ce0905191ebc298a9245792531f26f0cece2460639e8bc39cb7f706a826a779b4cf969b8"
    "a0e539c7f62fb3d30ad6aa8f80e30f1d128aafd68a2ce72ea0",
    "skRm": "f3ce7fdae57e1a310d87f1ebbde6f328be0a99cdbcadf4d6589cf29de4b8ffd2",
    "pt": "4265617574792069732074727574682c20747275746820626561757479",
    "aad": "436f756e742d30",
    "ct": "5ad590bb8baa577f8619db35a36311226a896e7342a6d836d8b7bcd2f20b6c7f9076ac232e3ab252"
    "3f39513434",
}


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
