"""RFC 3161 trusted time: the built-in TSA's tokens checked by two independent verifiers
(`openssl ts -verify` and rfc3161-client), every refusal of ``verify_token`` by its code, and the
client against the built-in TSA served over real HTTP, with its fallback. Time is pinned."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest
import rfc3161_client
from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from nodes import SECRET, Node, bidroom, serving
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from bidroom import builtin_tsa, timestamps
from bidroom.app import create_app
from bidroom.db import migrate
from bidroom.settings import load_settings
from bidroom.store import create_engine
from ca import pki, tsa
from ca import primitives as p
from ca.errors import KeyFileError, TimestampError
from ca.trust import TrustStore

NOW = dt.datetime(2026, 4, 17, 9, 30, 15, tzinfo=dt.UTC)
BEFORE = NOW - dt.timedelta(days=30)
DATA = "六横岛环卫一体化服务项目 checkpoint 42".encode()
UNIT = 2.0  # seconds: the one scalable timeout of these tests
PASSWORD = b"the built-in TSA's key password"


@dataclass(frozen=True)
class Pki:
    root: pki.CertificateAuthority
    platform: pki.CertificateAuthority  # the platform CA (an intermediate) that certifies the TSA
    key: p.PrivateKey
    cert: x509.Certificate
    other_root: pki.CertificateAuthority  # a root nobody here trusts, with a TSA of its own
    other_key: p.PrivateKey
    other_cert: x509.Certificate

    def authority(self, clock: Callable[[], dt.datetime] = lambda: NOW) -> tsa.TimeStampAuthority:
        return tsa.TimeStampAuthority(self.cert, self.key, [self.platform.cert], tsa.POLICY, clock)

    def stranger(self) -> tsa.TimeStampAuthority:
        return tsa.TimeStampAuthority(self.other_cert, self.other_key, [], clock=lambda: NOW)


@pytest.fixture(scope="module")
def keys() -> Pki:
    root = pki.create_root("测试根CA", BEFORE)
    platform = pki.create_intermediate(root, "bidroom 平台CA", BEFORE)
    key, cert = tsa.issue_tsa_certificate(platform, BEFORE)
    other_root = pki.create_root("别处的根CA", BEFORE)
    other_key, other_cert = tsa.issue_tsa_certificate(other_root, BEFORE, name="别处的TSA")
    return Pki(root, platform, key, cert, other_root, other_key, other_cert)


def grant(authority: tsa.TimeStampAuthority, query: bytes) -> bytes:
    return tsa.token_of(authority.respond(query))


def verify(
    keys: Pki,
    token: bytes,
    message: tsa.Message = DATA,
    *,
    nonce: int | None = None,
    policy: str | None = None,
) -> tsa.TimestampInfo:
    chain = [keys.platform.cert]
    root = [keys.root.cert]
    return tsa.verify_token(token, message, root, intermediates=chain, nonce=nonce, policy=policy)


# two independent verifiers -----------------------------------------------------------------


def openssl_verify(
    folder: Path, token: bytes, data: bytes, root: x509.Certificate, chain: list[x509.Certificate]
) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("openssl")
    if binary is None:
        pytest.fail(
            "the openssl binary is missing: install Debian's openssl package (.ci/run does)"
        )
    files = {"data": data, "token.der": token, "root.pem": p.certificate_pem(root)}
    files["chain.pem"] = b"".join(p.certificate_pem(c) for c in chain)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    command = [binary, "ts", "-verify", "-data", "data", "-in", "token.der", "-token_in"]
    command += ["-CAfile", "root.pem", "-untrusted", "chain.pem"]
    return subprocess.run(
        command, cwd=folder, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("kind", ["ec", "rsa"])
@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
def test_openssl_verifies_the_token(keys: Pki, tmp_path: Path, kind: str, algorithm: str) -> None:
    key, cert = tsa.issue_tsa_certificate(keys.platform, BEFORE, kind=kind)  # type: ignore[arg-type]
    authority = tsa.TimeStampAuthority(cert, key, [keys.platform.cert], clock=lambda: NOW)
    token = grant(authority, tsa.request(tsa.Digest.of(DATA, algorithm), nonce=7))
    done = openssl_verify(tmp_path, token, DATA, keys.root.cert, [keys.platform.cert])
    assert done.returncode == 0 and "Verification: OK" in done.stdout, done.stdout + done.stderr


def test_openssl_refuses_other_data_and_other_roots(keys: Pki, tmp_path: Path) -> None:
    token = grant(keys.authority(), tsa.request(DATA))
    chain = [keys.platform.cert]
    assert openssl_verify(tmp_path, token, b"other data", keys.root.cert, chain).returncode != 0
    assert openssl_verify(tmp_path, token, DATA, keys.other_root.cert, chain).returncode != 0


def test_openssl_verifies_a_token_made_without_certificates(keys: Pki, tmp_path: Path) -> None:
    token = grant(keys.authority(), tsa.request(DATA, cert_req=False))
    assert not cms.ContentInfo.load(token)["content"]["certificates"]
    done = openssl_verify(tmp_path, token, DATA, keys.root.cert, [keys.platform.cert, keys.cert])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
def test_rfc3161_client_verifies_the_response(keys: Pki, algorithm: str) -> None:
    response = keys.authority().respond(tsa.request(tsa.Digest.of(DATA, algorithm), 99))
    decoded = rfc3161_client.decode_timestamp_response(response)
    verifier = rfc3161_client.VerifierBuilder(
        roots=[keys.root.cert], intermediates=[keys.platform.cert], nonce=99
    ).build()
    assert verifier.verify_message(decoded, DATA)
    assert decoded.tst_info.gen_time.replace(tzinfo=dt.UTC) == NOW
    assert decoded.tst_info.policy.dotted_string == tsa.POLICY
    with pytest.raises(rfc3161_client.VerificationError):
        verifier.verify_message(decoded, b"other data")


# what a granted token says -----------------------------------------------------------------


def test_the_token_says_when_who_and_echoes_the_nonce(keys: Pki) -> None:
    nonce = 0x1234_5678_9ABC_DEF0_1122
    info = verify(keys, grant(keys.authority(), tsa.request(DATA, nonce)), nonce=nonce)
    assert info.gen_time == NOW
    assert info.nonce == nonce
    assert info.tsa == keys.cert.subject.rfc4514_string()
    assert info.policy == tsa.POLICY
    assert info.accuracy == dt.timedelta(seconds=1)
    assert info.digest == tsa.Digest("sha256", hashlib.sha256(DATA).digest())


def test_gen_time_follows_the_injected_clock(keys: Pki) -> None:
    later = NOW + dt.timedelta(hours=3, microseconds=999_999)
    info = verify(keys, grant(keys.authority(lambda: later), tsa.request(DATA)))
    assert info.gen_time == later.replace(microsecond=0)  # whole seconds, accuracy 1 s


def test_serial_numbers_are_unique(keys: Pki) -> None:
    authority = keys.authority()
    serials = {verify(keys, grant(authority, tsa.request(DATA))).serial for _ in range(50)}
    assert len(serials) == 50


def test_a_digest_is_stamped_as_given(keys: Pki) -> None:
    digest = tsa.Digest.of(DATA, "sha512")
    assert verify(keys, grant(keys.authority(), tsa.request(digest)), digest).digest == digest


def test_signed_attributes_follow_rfc_5816_in_der_order(keys: Pki) -> None:
    token = cms.ContentInfo.load(grant(keys.authority(), tsa.request(DATA)))
    signer = token["content"]["signer_infos"][0]
    attrs = signer["signed_attrs"]
    names = [a["type"].native for a in attrs]
    assert set(names) == {
        "content_type",
        "signing_time",
        "message_digest",
        "signing_certificate_v2",
    }
    encodings = [a.dump() for a in attrs]
    assert encodings == sorted(encodings)  # SET OF in DER order
    ess = next(a for a in attrs if a["type"].native == "signing_certificate_v2")["values"][0]
    assert ess["certs"][0]["cert_hash"].native == p.fingerprint(keys.cert)


def test_the_tsa_certificate_profile(keys: Pki) -> None:
    eku = keys.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    usage = keys.cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_agreement
    assert keys.cert.issuer == keys.platform.cert.subject


def test_a_holder_certificate_cannot_run_a_tsa(keys: Pki) -> None:
    key, cert = pki.issue_with_key(keys.platform, pki.Identity("李海"), BEFORE)
    with pytest.raises(TimestampError) as caught:
        tsa.TimeStampAuthority(cert, key)
    assert caught.value.code == "tsa_certificate"


# refusals of verify_token, by code -----------------------------------------------------------


def test_a_token_over_other_data(keys: Pki) -> None:
    token = grant(keys.authority(), tsa.request(b"other data"))
    with pytest.raises(TimestampError) as caught:
        verify(keys, token)
    assert caught.value.code == "tsa_imprint_mismatch"


def test_a_token_from_a_tsa_under_another_root(keys: Pki) -> None:
    token = grant(keys.stranger(), tsa.request(DATA))
    with pytest.raises(TimestampError) as caught:
        verify(keys, token)
    assert caught.value.code == "tsa_untrusted"
    assert caught.value.detail["tsa"] == keys.other_cert.subject.rfc4514_string()


def test_trust_comes_from_the_trust_store_too(keys: Pki, tmp_path: Path) -> None:
    store = TrustStore(tmp_path / "trust")
    token = grant(keys.authority(), tsa.request(DATA))
    with pytest.raises(TimestampError) as caught:
        tsa.verify_token(token, DATA, store)
    assert caught.value.code == "tsa_untrusted"
    store.add_root(keys.root.cert, NOW)
    assert tsa.verify_token(token, DATA, store).gen_time == NOW  # the chain is in the token


def test_a_token_without_certificates_needs_the_tsa_certificate(keys: Pki) -> None:
    token = grant(keys.authority(), tsa.request(DATA, cert_req=False))
    with pytest.raises(TimestampError) as caught:
        verify(keys, token)
    assert caught.value.code == "tsa_untrusted"
    pool = [keys.platform.cert, keys.cert]
    assert tsa.verify_token(token, DATA, [keys.root.cert], intermediates=pool).gen_time == NOW


def test_the_tsa_refuses_to_sign_outside_its_certificate(keys: Pki) -> None:
    key, cert = tsa.issue_tsa_certificate(keys.platform, BEFORE, lifetime=dt.timedelta(days=1))
    late = BEFORE + dt.timedelta(days=2)
    authority = tsa.TimeStampAuthority(cert, key, [keys.platform.cert], clock=lambda: late)
    with pytest.raises(TimestampError) as refused:
        grant(authority, tsa.request(DATA))
    assert refused.value.detail["fail_info"] == ["system_failure"]


def _tampered_gen_time(token: bytes) -> bytes:
    stamp = NOW.strftime("%Y%m%d%H%M%S").encode()
    assert token.count(stamp) == 1
    return token.replace(stamp, (NOW + dt.timedelta(hours=1)).strftime("%Y%m%d%H%M%S").encode())


def _tampered_signature(token: bytes) -> bytes:
    return token[:-1] + bytes([token[-1] ^ 0x01])  # the signature is the token's last field


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        (_tampered_gen_time, "tsa_bad_signature"),
        (_tampered_signature, "tsa_bad_signature"),
        (lambda token: token[:-10], "tsa_malformed"),
        (lambda token: b"\x30\x03\x02\x01\x01", "tsa_malformed"),
    ],
)
def test_a_tampered_token(keys: Pki, tamper: Callable[[bytes], bytes], code: str) -> None:
    token = grant(keys.authority(), tsa.request(DATA))
    with pytest.raises(TimestampError) as caught:
        verify(keys, tamper(token))
    assert caught.value.code == code


def test_a_token_naming_another_signing_certificate(keys: Pki) -> None:
    """A token re-signed by the same key, but whose ESSCertIDv2 names another certificate."""
    authority = keys.authority()
    token = grant(authority, tsa.request(DATA))
    outer = cms.ContentInfo.load(token)
    signer = outer["content"]["signer_infos"][0]
    attrs = cms.CMSAttributes(
        [a for a in signer["signed_attrs"] if a["type"].native != "signing_certificate_v2"]
        + [{"type": "signing_certificate_v2", "values": [{"certs": [{"cert_hash": b"\0" * 32}]}]}]
    )
    signer["signed_attrs"] = attrs
    signer["signature"] = p.cms_sign(keys.key, attrs.dump())
    with pytest.raises(TimestampError) as caught:
        verify(keys, outer.dump(force=True))
    assert caught.value.code == "tsa_bad_signature"


def test_nonce_and_policy_are_checked_when_expected(keys: Pki) -> None:
    token = grant(keys.authority(), tsa.request(DATA, nonce=1))
    with pytest.raises(TimestampError) as caught:
        verify(keys, token, nonce=2)
    assert caught.value.code == "tsa_nonce_mismatch"
    with pytest.raises(TimestampError) as caught:
        verify(keys, token, policy="1.2.3")
    assert caught.value.code == "tsa_policy_mismatch"


# rejections --------------------------------------------------------------------------------


def _query_with(**fields: object) -> bytes:
    base: dict[str, object] = {
        "version": "v1",
        "message_imprint": {
            "hash_algorithm": {"algorithm": "sha256"},
            "hashed_message": b"\1" * 32,
        },
    }
    return bytes(tsp.TimeStampReq({**base, **fields}).dump())


@pytest.mark.parametrize(
    ("query", "failure"),
    [
        (b"not a request", "bad_data_format"),
        (b"", "bad_data_format"),
        (
            _query_with(
                message_imprint={
                    "hash_algorithm": {"algorithm": "sha1"},
                    "hashed_message": b"\1" * 20,
                }
            ),
            "bad_alg",
        ),
        (
            _query_with(
                message_imprint={
                    "hash_algorithm": {"algorithm": "sha256"},
                    "hashed_message": b"\1" * 20,
                }
            ),
            "bad_data_format",
        ),
        (_query_with(version="v2"), "bad_request"),
        (_query_with(req_policy="1.2.3.4"), "unaccepted_policy"),
    ],
)
def test_bad_requests_are_rejected_with_their_failure_info(
    keys: Pki, query: bytes, failure: str
) -> None:
    answer = keys.authority().respond(query)
    status = tsa.TimeStampResp.load(answer)["status"].native
    assert status["status"] == "rejection" and status["fail_info"] == {failure}
    with pytest.raises(TimestampError) as caught:
        tsa.token_of(answer)
    assert caught.value.code == "tsa_rejected"
    assert caught.value.detail["fail_info"] == [failure]


def _granted_with(token: bytes) -> bytes:
    """A granted TimeStampResp carrying ``token`` byte for byte (asn1crypto would re-encode)."""
    status = tsa.TimeStampResp({"status": {"status": "granted"}})["status"].dump()
    body = status + token
    return b"\x30\x82" + len(body).to_bytes(2, "big") + body


def test_the_token_is_kept_as_the_tsa_sent_it(keys: Pki) -> None:
    token = grant(keys.authority(), tsa.request(DATA))
    assert token[1] == 0x82  # re-sent with a longer (BER) length, which a re-encoding drops
    sent = token[:1] + b"\x83\x00" + token[2:]
    assert tsa.token_of(_granted_with(sent)) == sent


def test_a_damaged_token_in_a_granted_answer_is_malformed(keys: Pki) -> None:
    token = grant(keys.authority(), tsa.request(DATA))
    damaged = token[:30] + b"\xff" * 10 + token[40:]
    with pytest.raises(TimestampError) as caught:
        verify(keys, tsa.token_of(_granted_with(damaged)))
    assert caught.value.code == "tsa_malformed"


async def test_the_local_stamper(keys: Pki) -> None:
    stamp = await tsa.LocalStamper(keys.authority(), [keys.root.cert]).stamp(DATA)
    assert stamp.info.gen_time == NOW and verify(keys, stamp.token) == stamp.info


# the client over real HTTP -----------------------------------------------------------------


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/tsa"


def _tsa_app(keys: Pki) -> Starlette:
    """The built-in TSA's endpoint, and TSAs that fail in the ways a client must survive."""
    stranger, replayed = keys.stranger(), keys.authority().respond(tsa.request(b"other", 1))
    never = asyncio.Event()

    async def garbage(request: Request) -> Response:
        return Response(b"\x30\x03garbage", media_type=tsa.REPLY_TYPE)

    async def untrusted(request: Request) -> Response:
        return Response(stranger.respond(await request.body()), media_type=tsa.REPLY_TYPE)

    async def replay(request: Request) -> Response:  # a valid token, but for another request
        return Response(replayed, media_type=tsa.REPLY_TYPE)

    async def hang(request: Request) -> Response:
        await never.wait()
        return Response(b"")

    routes = [Route("/tsa", timestamps.endpoint, methods=["POST"])]
    routes += [
        Route(f"/{f.__name__}", f, methods=["POST"]) for f in (garbage, untrusted, replay, hang)
    ]
    app = Starlette(routes=routes)
    app.state.tsa = Answering(keys.authority())
    app.state.tsa_public = timestamps.PublicLimits()
    return app


class Answering:
    """What bidroom.timestamps.endpoint asks to answer: here the test's own TSA, in process."""

    def __init__(self, authority: tsa.TimeStampAuthority):
        self.authority = authority

    async def respond(self, query: bytes) -> bytes:
        return self.authority.respond(query)


@pytest.fixture
async def server(keys: Pki) -> AsyncIterator[str]:
    async with serving(_tsa_app(keys)) as url:
        yield url


def client(keys: Pki, *urls: str) -> tsa.TsaClient:
    return tsa.TsaClient(list(urls), [keys.root.cert], UNIT / 4, intermediates=[keys.platform.cert])


async def test_the_client_gets_a_verified_token_over_http(
    keys: Pki, server: str, tmp_path: Path
) -> None:
    stamp = await client(keys, f"{server}/tsa").stamp(DATA)
    assert stamp.info.gen_time == NOW
    done = openssl_verify(tmp_path, stamp.token, DATA, keys.root.cert, [keys.platform.cert])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("primary", "code"),
    [
        ("closed", "tsa_unreachable"),
        ("/garbage", "tsa_malformed"),
        ("/untrusted", "tsa_untrusted"),
        ("/replay", "tsa_imprint_mismatch"),  # the replayed token is over other data
        ("/hang", "tsa_timeout"),
        ("/nowhere", "tsa_unreachable"),  # HTTP 404
    ],
)
async def test_the_client_falls_back_to_the_second_tsa(
    keys: Pki, server: str, primary: str, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    first = _closed_port_url() if primary == "closed" else f"{server}{primary}"
    stamp = await client(keys, first, f"{server}/tsa").stamp(DATA)
    assert stamp.info.gen_time == NOW
    failed = [r for r in caplog.records if r.getMessage() == "time-stamping failed"]
    assert [(r.url, r.code) for r in failed] == [(first, code)]  # type: ignore[attr-defined]


async def test_a_replayed_token_for_the_same_data_fails_on_the_nonce(
    keys: Pki, server: str
) -> None:
    old = keys.authority().respond(tsa.request(DATA, 1))
    replaying = httpx.MockTransport(
        lambda request: httpx.Response(200, content=old, headers={"content-type": tsa.REPLY_TYPE})
    )
    lone = tsa.TsaClient(["http://replay.invalid/tsa"], [keys.root.cert], UNIT, transport=replaying)
    with pytest.raises(TimestampError) as caught:
        await lone.stamp(DATA)
    assert caught.value.detail["failures"][0]["code"] == "tsa_nonce_mismatch"


async def test_both_tsas_failing_is_one_clear_error(keys: Pki, server: str) -> None:
    closed, garbage = _closed_port_url(), f"{server}/garbage"
    with pytest.raises(TimestampError) as caught:
        await client(keys, closed, garbage).stamp(DATA)
    error = caught.value
    assert error.code == "tsa_unavailable"
    assert closed in error.message and garbage in error.message
    assert [f["code"] for f in error.detail["failures"]] == ["tsa_unreachable", "tsa_malformed"]


async def test_the_endpoint_limits_and_types_its_input(server: str) -> None:
    query = tsa.request(DATA)
    async with httpx.AsyncClient(timeout=UNIT) as http:
        too_big = await http.post(
            f"{server}/tsa",
            content=b"\0" * (64 * 1024 + 1),
            headers={"content-type": tsa.QUERY_TYPE},
        )
        untyped = await http.post(
            f"{server}/tsa", content=query, headers={"content-type": "application/octet-stream"}
        )
        junk = await http.post(
            f"{server}/tsa", content=b"junk", headers={"content-type": tsa.QUERY_TYPE}
        )
    assert (too_big.status_code, too_big.json()["code"]) == (413, "tsa_too_large")
    assert (untyped.status_code, untyped.json()["code"]) == (415, "tsa_media_type")
    assert junk.status_code == 200 and junk.headers["content-type"] == tsa.REPLY_TYPE
    assert tsa.TimeStampResp.load(junk.content)["status"]["status"].native == "rejection"


# the app: the built-in TSA of the embedded default -----------------------------------------


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Path]]:
    var = tmp_path_factory.mktemp("var")
    env = {
        "BIDROOM_DATABASE_URL": f"sqlite+aiosqlite:///{var / 'b.db'}",
        "BIDROOM_SECRET_KEY": SECRET,
        "BIDROOM_VAR_DIR": str(var),
    }
    assert bidroom("migrate", env=env).returncode == 0
    served = Node(env, name="tsa-node").start()
    yield served, var
    served.stop()


async def test_bidroom_serve_runs_the_builtin_tsa(node: tuple[Node, Path], tmp_path: Path) -> None:
    served, var = node
    folder = var / "tsa"
    assert (folder / "tsa.key.pem").stat().st_mode & 0o777 == 0o600
    with pytest.raises(KeyFileError):  # encrypted: it does not load without its password
        p.load_private_key((folder / "tsa.key.pem").read_bytes())
    root = x509.load_pem_x509_certificate((folder / "root.pem").read_bytes())
    lone = tsa.TsaClient([_closed_port_url(), f"{served.url}/tsa"], [root], UNIT)
    stamp = await lone.stamp(DATA)
    assert abs(stamp.info.gen_time - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    tsa_cert = x509.load_pem_x509_certificate((folder / "tsa.pem").read_bytes())
    done = openssl_verify(tmp_path, stamp.token, DATA, root, [tsa_cert])
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_builtin_tsa_is_made_once_and_kept(tmp_path: Path) -> None:
    first, root = builtin_tsa.builtin(tmp_path / "tsa", NOW, PASSWORD)
    again, same_root = builtin_tsa.builtin(tmp_path / "tsa", NOW + dt.timedelta(days=1), PASSWORD)
    assert first.cert == again.cert and root == same_root
    token = grant(first, tsa.request(DATA))
    assert tsa.verify_token(token, DATA, [root]).tsa == first.cert.subject.rfc4514_string()


def test_with_an_external_tsa_the_app_serves_none(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"

    async def run() -> None:
        engine = create_engine(url)
        await migrate(engine)
        await engine.dispose()

    asyncio.run(run())
    settings = load_settings(
        database_url=url,
        secret_key=SECRET,
        var_dir=tmp_path / "var",
        tsa_url="https://tsa.example/tsr",
        tsa_fallback_url="https://tsa2.example/tsr",
    )
    with TestClient(create_app(settings)) as http:
        answer = http.post(
            "/tsa", content=tsa.request(DATA), headers={"content-type": tsa.QUERY_TYPE}
        )
        timestamper = http.app.state.timestamper  # type: ignore[attr-defined]
    assert (answer.status_code, answer.json()["code"]) == (404, "tsa_external")
    assert isinstance(timestamper, tsa.TsaClient) and len(timestamper.urls) == 2
    assert not (tmp_path / "var" / "tsa").exists()
