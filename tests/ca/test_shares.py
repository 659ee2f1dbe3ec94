"""The lot's opening key split k-of-n: quorum recovery, every refusal with its own code, files."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import shamir_mnemonic
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from ca import primitives as p
from ca import shares
from ca.errors import ShareError
from ca.shares import Share

VECTORS = Path(__file__).parent.parent / "vectors" / "slip39-vectors.json"
CUSTODIANS = ["agency", "supervisor", "notary", "operator", "auditor"]
LOT = "2024-HD-0311/lot-2"


def names(n: int) -> list[str]:
    return [*CUSTODIANS, *(f"custodian-{i}" for i in range(len(CUSTODIANS), n))][:n]


def split(
    k: int, n: int, lot: str = LOT
) -> tuple[p.EcPrivateKey, list[Share], list[shares.Commitment]]:
    key = p.generate_ec_key()
    parts, commitments = shares.split(key, k, n, names(n), lot)
    return key, parts, commitments


def same_key(a: p.EcPrivateKey, b: p.EcPrivateKey) -> bool:
    return p.ec_scalar(a) == p.ec_scalar(b)


def refused(
    code: str,
    parts: Sequence[Share],
    commitments: list[shares.Commitment],
    key: p.EcPrivateKey,
) -> ShareError:
    with pytest.raises(ShareError) as info:
        shares.combine(parts, commitments, key.public_key())
    assert info.value.code == code, info.value
    return info.value


# quorum ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), [(2, 2), (2, 3), (3, 5), (4, 4), (5, 7), (16, 16)])
def test_every_k_of_n_subset_reconstructs_the_opening_key(k: int, n: int) -> None:
    key, parts, commitments = split(k, n)
    subsets = list(itertools.combinations(parts, k))[:12]
    for subset in subsets:
        assert same_key(shares.combine(subset, commitments, key.public_key()), key)


def test_more_than_k_shares_also_reconstruct() -> None:
    key, parts, commitments = split(3, 5)
    assert same_key(shares.combine(reversed(parts), commitments, key.public_key()), key)


def test_split_accepts_the_scalar_itself_and_names_each_custodian() -> None:
    key = p.generate_ec_key()
    parts, commitments = shares.split(p.ec_scalar(key), 2, 3, names(3), LOT)
    assert [(s.custodian, s.index, s.k, s.n) for s in parts] == [
        ("agency", 1, 2, 3),
        ("supervisor", 2, 2, 3),
        ("notary", 3, 2, 3),
    ]
    assert [c.custodian for c in commitments] == ["agency", "supervisor", "notary"]
    assert same_key(shares.combine(parts[1:], commitments, key.public_key()), key)


def test_a_share_is_a_standard_slip39_mnemonic_of_the_scalar() -> None:
    key, parts, _ = split(2, 3)
    assert len(parts[0].mnemonic.split()) == 33
    recovered = shamir_mnemonic.combine_mnemonics([parts[2].mnemonic, parts[0].mnemonic])
    assert recovered == p.ec_scalar(key)


def test_the_share_value_never_appears_in_its_repr() -> None:
    _, parts, _ = split(2, 3)
    assert parts[0].mnemonic not in repr(parts[0])
    assert parts[0].mnemonic.split()[5] not in repr(parts[0]).split()


@settings(max_examples=15, deadline=None)
@given(data=st.data(), n=st.integers(min_value=2, max_value=7))
def test_any_k_shares_reconstruct_and_any_k_minus_1_are_refused(
    data: st.DataObject, n: int
) -> None:
    k = data.draw(st.integers(min_value=2, max_value=n))
    key, parts, commitments = split(k, n)
    chosen = data.draw(st.permutations(parts))
    assert same_key(shares.combine(chosen[:k], commitments, key.public_key()), key)
    error = refused("share_too_few", chosen[: k - 1], commitments, key)
    assert error.detail["need"] == k
    assert error.detail["have"] == k - 1


def test_fewer_than_k_shares_say_which_custodians_are_missing() -> None:
    key, parts, commitments = split(3, 5)
    error = refused("share_too_few", parts[:2], commitments, key)
    assert error.detail["not_given"] == ["auditor", "notary", "operator"]
    refused("share_too_few", [], commitments, key)


def test_k_minus_1_shares_do_not_combine_even_in_the_library() -> None:
    _, parts, _ = split(3, 5)
    with pytest.raises(ShareError) as info:
        shares.recover_secret([s.mnemonic for s in parts[:2]])
    assert info.value.code == "share_malformed"


# refusals, each with its own code -------------------------------------------------------------


def test_a_wrong_share_fails_its_commitment() -> None:
    key, parts, commitments = split(2, 3)
    _, others, _ = split(2, 3)
    forged = replace(others[1], key_fingerprint=parts[1].key_fingerprint)
    error = refused("share_commitment_mismatch", [parts[0], forged], commitments, key)
    assert error.detail == {"custodian": "supervisor", "index": 2}


def test_a_share_handed_in_under_another_custodians_name_fails_its_commitment() -> None:
    key, parts, commitments = split(2, 3)
    refused(
        "share_commitment_mismatch",
        [replace(parts[0], custodian="notary"), parts[1]],
        commitments,
        key,
    )


def test_a_mistyped_word_is_caught_by_the_checksum() -> None:
    key, parts, commitments = split(2, 3)
    words = parts[1].mnemonic.split()
    words[-1] = "academic" if words[-1] != "academic" else "acid"
    typo = replace(parts[1], mnemonic=" ".join(words))
    refused("share_malformed", [parts[0], typo], commitments, key)


def test_a_duplicate_share_is_refused() -> None:
    key, parts, commitments = split(2, 3)
    error = refused("share_duplicate", [parts[0], parts[0], parts[1]], commitments, key)
    assert error.detail["index"] == 1


def test_a_share_of_another_lot_is_refused() -> None:
    key, parts, commitments = split(2, 3)
    elsewhere, _ = shares.split(key, 2, 3, names(3), "2024-HD-0311/lot-3")
    error = refused("share_other_lot", [parts[0], elsewhere[1]], commitments, key)
    assert error.detail["lot_id"] == "2024-HD-0311/lot-3"


def test_a_share_of_another_key_is_refused() -> None:
    key, parts, commitments = split(2, 3)
    _, other_key_parts, _ = split(2, 3)
    refused("share_other_key", [parts[0], other_key_parts[1]], commitments, key)


def test_a_share_without_a_recorded_commitment_is_refused() -> None:
    key, parts, commitments = split(2, 3)
    refused("share_uncommitted", [parts[0], parts[2]], commitments[:2], key)


def test_commitments_of_another_key_are_refused() -> None:
    key, parts, commitments = split(2, 3)
    _, _, other_commitments = split(2, 3)
    refused("share_commitments", parts, other_commitments, key)
    refused("share_commitments", parts, [], key)
    refused("share_commitments", parts, [commitments[0], commitments[0]], key)
    refused("share_commitments", parts, [commitments[0], other_commitments[1]], key)


def test_a_quorum_that_forged_shares_and_commitments_still_fails_the_public_key() -> None:
    key = p.generate_ec_key()
    impostor = p.generate_ec_key()
    fingerprint = shares.key_fingerprint(key.public_key())
    parts, _ = shares.split(impostor, 2, 3, names(3), LOT)
    forged = [replace(s, key_fingerprint=fingerprint) for s in parts]
    refused("share_key_mismatch", forged, [shares.commit(s) for s in forged], key)


@pytest.mark.parametrize(
    ("k", "n", "custodians", "lot"),
    [
        (1, 3, names(3), LOT),
        (4, 3, names(3), LOT),
        (2, 17, names(17), LOT),
        (2, 3, names(2), LOT),
        (2, 3, ["agency", "agency", "notary"], LOT),
        (2, 3, ["agency", "", "notary"], LOT),
        (2, 3, names(3), ""),
    ],
)
def test_split_refuses_a_quorum_that_is_not_one(
    k: int, n: int, custodians: list[str], lot: str
) -> None:
    with pytest.raises(ShareError) as info:
        shares.split(p.generate_ec_key(), k, n, custodians, lot)
    assert info.value.code == "share_split"


def test_every_refusal_has_its_own_code() -> None:
    codes = [
        "share_split",
        "share_commitments",
        "share_other_lot",
        "share_other_key",
        "share_duplicate",
        "share_uncommitted",
        "share_commitment_mismatch",
        "share_too_few",
        "share_malformed",
        "share_key_mismatch",
        "share_file",
        "share_file_recipient",
        "share_file_open",
    ]
    assert len(set(codes)) == len(codes)
    assert all(code in (shares.__doc__ or "") for code in codes)


# commitments -------------------------------------------------------------------------------


def test_the_commitment_is_sha256_over_the_documented_encoding() -> None:
    share = Share("lot-1", bytes(range(32)), "公证处", 3, 2, 5, "words of the share")

    def lp(data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + data

    encoded = (
        b"bidroom share commitment v1"
        + lp(b"lot-1")
        + lp(bytes(range(32)))
        + lp("公证处".encode())
        + bytes([3, 2, 5])
        + lp(b"words of the share")
    )
    assert shares.commitment_digest(share) == hashlib.sha256(encoded).digest()


def test_commitments_survive_the_audit_log_as_json() -> None:
    key, parts, commitments = split(2, 3)
    stored = json.loads(json.dumps([c.to_dict() for c in commitments]))
    restored = [shares.Commitment.from_dict(d) for d in stored]
    assert restored == commitments
    assert parts[0].mnemonic not in json.dumps(stored)
    assert same_key(shares.combine(parts[:2], restored, key.public_key()), key)
    with pytest.raises(ShareError) as info:
        shares.Commitment.from_dict({"lot_id": LOT})
    assert info.value.code == "share_commitments"


def test_the_key_fingerprint_is_sha256_of_the_point() -> None:
    key = p.generate_ec_key()
    expected = hashlib.sha256(p.ec_point(key.public_key())).digest()
    assert shares.key_fingerprint(key.public_key()) == expected


# share files -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_custodian() -> p.RsaPrivateKey:
    return p.generate_rsa_key()


@pytest.fixture(params=["ec", "rsa"])
def custodian_key(request: pytest.FixtureRequest, rsa_custodian: p.RsaPrivateKey) -> p.PrivateKey:
    return p.generate_ec_key() if request.param == "ec" else rsa_custodian


def test_a_share_file_opens_with_the_custodians_key_and_reconstructs(
    custodian_key: p.PrivateKey,
) -> None:
    key, parts, commitments = split(2, 3)
    files = [s.to_file(custodian_key.public_key()) for s in parts[:2]]
    opened = [Share.from_file(data, custodian_key) for data in files]
    assert opened == parts[:2]
    assert same_key(shares.combine(opened, commitments, key.public_key()), key)


def test_a_share_file_can_be_written_to_the_custodians_certificate() -> None:
    custodian = p.generate_ec_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "公证处 notary")])
    now = datetime(2024, 5, 1, tzinfo=UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(custodian.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=365))
    )
    cert = p.sign_certificate(builder, custodian)
    key, parts, commitments = split(2, 3)
    opened = [Share.from_file(s.to_file(cert), custodian) for s in parts[1:]]
    assert same_key(shares.combine(opened, commitments, key.public_key()), key)


def test_the_share_file_format(custodian_key: p.PrivateKey) -> None:
    _, parts, _ = split(3, 5)
    doc = json.loads(parts[2].to_file(custodian_key.public_key()))
    assert (doc["format"], doc["version"], doc["custodian"], doc["index"]) == (
        "bidroom-key-share",
        1,
        "notary",
        3,
    )
    assert doc["recipient"] == hashlib.sha256(p.public_der(custodian_key.public_key())).hexdigest()
    if isinstance(custodian_key, p.EcPrivateKey):
        assert doc["scheme"] == "hpke-p256-sha256-aes256gcm"
        assert set(doc) >= {"enc", "ciphertext"}
    else:
        assert doc["scheme"] == "rsa-oaep-sha256-aes256gcm"
        assert set(doc) >= {"wrapped_key", "nonce", "ciphertext"}
    assert parts[2].mnemonic.split()[0] not in json.dumps(doc).split('"')


def test_a_share_file_for_another_custodian_does_not_open(custodian_key: p.PrivateKey) -> None:
    _, parts, _ = split(2, 3)
    data = parts[0].to_file(p.generate_ec_key().public_key())
    with pytest.raises(ShareError) as info:
        Share.from_file(data, custodian_key)
    assert info.value.code == "share_file_recipient"


@pytest.mark.parametrize("field", ["index", "custodian", "lot_id", "ciphertext"])
def test_an_altered_share_file_does_not_open(custodian_key: p.PrivateKey, field: str) -> None:
    _, parts, _ = split(2, 3)
    doc = json.loads(parts[0].to_file(custodian_key.public_key()))
    doc[field] = {"index": 2, "custodian": "notary", "lot_id": "lot-9"}.get(
        field, doc["ciphertext"][:-4] + "AAA="
    )
    with pytest.raises(ShareError) as info:
        Share.from_file(json.dumps(doc).encode(), custodian_key)
    assert info.value.code == "share_file_open"


@pytest.mark.parametrize(
    "change",
    [
        lambda doc: {**doc, "version": 2},
        lambda doc: {**doc, "format": "something-else"},
        lambda doc: {**doc, "scheme": "rot13"},
        lambda doc: {k: v for k, v in doc.items() if k != "ciphertext"},
        lambda doc: [doc],
    ],
)
def test_a_file_that_is_not_a_v1_share_file_is_refused(change: Callable[[Any], Any]) -> None:
    custodian = p.generate_ec_key()
    _, parts, _ = split(2, 3)
    doc = json.loads(parts[0].to_file(custodian.public_key()))
    with pytest.raises(ShareError) as info:
        Share.from_file(json.dumps(change(doc)).encode(), custodian)
    assert info.value.code == "share_file"
    with pytest.raises(ShareError) as info:
        Share.from_file(b"\x00not json", custodian)
    assert info.value.code == "share_file"


# published vectors (SLIP-0039, through our wrapper) -------------------------------------------


def slip39_vectors() -> list[tuple[str, list[str], str]]:
    doc = json.loads(VECTORS.read_text())
    return [(d, m, s) for d, m, s in doc["vectors"]]


@pytest.mark.parametrize(
    ("description", "mnemonics", "secret"), slip39_vectors(), ids=lambda v: str(v)[:3]
)
def test_slip39_published_vectors(description: str, mnemonics: list[str], secret: str) -> None:
    if secret:
        assert shares.recover_secret(mnemonics, b"TREZOR").hex() == secret
    else:
        with pytest.raises(ShareError) as info:
            shares.recover_secret(mnemonics, b"TREZOR")
        assert info.value.code == "share_malformed", description
