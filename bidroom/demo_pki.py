"""The demo's certificates: a demo CA, one key and certificate per demo person, a trust store
that recognises the demo CA, and the registry entries that give each person a role.

The CA, its certificates and its CRLs are in force from a day before the first start: the demo's
completed opening (bidroom.demo_opening) ran in the hours before it.

Demo only: the keys are written unprotected under ./var/demo-pki and the demo serves them to the
login page (one click per role). A real platform never holds a holder's private key; `bidroom
serve` has no such route.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509

from bidroom.store import Store
from ca import login, pki
from ca import primitives as p
from ca.trust import TrustStore, holder_of

CRL_LIFETIME = timedelta(days=365)
SANITATION = ("环境卫生",)  # the demo experts' specialty
# The CA, certificates and CRLs are in force from this long before the start that makes them.
IN_FORCE_BEFORE = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class DemoPerson:
    id: str
    role: str
    name: str
    organisation: str
    uscc_body: str | None  # 17 characters; the check character is computed
    # An expert's entry in the expert database (专家库): home city and specialties.
    city: str | None = None
    specialties: tuple[str, ...] = ()


PEOPLE = (
    DemoPerson("chair", "chair", "王敏", "舟山市公共资源交易中心", None),
    DemoPerson("bidder-1", "bidder", "李海", "六横海洁环境服务有限公司", "91330903MA2B7H1X6"),
    DemoPerson("bidder-2", "bidder", "陈静", "东港城市服务集团有限公司", "91330901MA28Q3L50"),
    DemoPerson("bidder-3", "bidder", "周涛", "普陀绿源环卫工程有限公司", "91330903MA2A9C2K7"),
    DemoPerson("supervisor", "supervisor", "赵磊", "舟山市财政局", None),
    # The lot's opening key is split 2-of-3 among custodians of three organisations, as the
    # custody policy wants (docs/opening.md "Custodians"): one of the trading centre (the chair's
    # colleague: an insider), the notary and the development and reform commission (招标投标
    # 行政监督), so that no two shares that open the key are the trading centre's or the
    # platform's (INSIDERS).
    DemoPerson("custodian-1", "custodian", "孙丽", "舟山市公共资源交易中心", None),
    DemoPerson("custodian-2", "custodian", "吴刚", "舟山市公证处", None),
    DemoPerson("custodian-3", "custodian", "郑洁", "舟山市发展和改革委员会", None),
    # The evaluation experts (评标专家), of no party's organisation. The lot's venues take 3 + 1 + 1
    # by home city; each city has one spare, so a replacement can be drawn at any venue.
    DemoPerson("expert-1", "expert", "钱建国", "浙江海洋大学", None, "舟山", SANITATION),
    DemoPerson("expert-2", "expert", "沈美华", "舟山市环境科学学会", None, "舟山", SANITATION),
    DemoPerson("expert-3", "expert", "何志强", "舟山群岛新区规划设计院", None, "舟山", SANITATION),
    DemoPerson("expert-4", "expert", "冯雅琴", "舟山职业技术学院", None, "舟山", SANITATION),
    DemoPerson("expert-5", "expert", "朱永康", "普陀城乡建设设计院", None, "普陀", SANITATION),
    DemoPerson("expert-6", "expert", "许静", "东海环境检测有限公司", None, "普陀", SANITATION),
    DemoPerson("expert-7", "expert", "韩卫东", "岱山县环境监测站", None, "岱山", SANITATION),
    DemoPerson("expert-8", "expert", "杨晓红", "岱山县市政工程设计所", None, "岱山", SANITATION),
)

# The demo's insider organisations (its BIDROOM_INSIDER_ORGANISATIONS): the trading centre and
# the platform operator, who holds the database, the disks and the secrets.
INSIDERS = ("舟山市公共资源交易中心", "bidroom 平台运营方")


def _identity(person: DemoPerson) -> pki.Identity:
    uscc = person.uscc_body + pki.uscc_check_char(person.uscc_body) if person.uscc_body else None
    name = person.organisation if uscc else person.name
    return pki.Identity(name, person.organisation, uscc)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(p.serialization_pem())


def _write_secret(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def create(folder: Path, trust: Path, now: datetime) -> None:
    """Make the demo CA and people (once; people added later are issued on the next start),
    and (re)publish the CRLs into the trust store."""
    if not (folder / "root.crt.pem").exists():
        _create_authorities(folder, now)
    _create_people(folder, now)
    root = x509.load_pem_x509_certificate((folder / "root.crt.pem").read_bytes())
    sub = x509.load_pem_x509_certificate((folder / "sub.crt.pem").read_bytes())
    store = TrustStore(trust)
    store.add_root(root, now)
    store.add_intermediate(sub, now)
    for name, cert in (("root", root), ("sub", sub)):
        ca = pki.CertificateAuthority(
            cert, p.load_private_key((folder / f"{name}.key.pem").read_bytes())
        )
        _, crl = pki.publish_crl(ca, now - IN_FORCE_BEFORE, CRL_LIFETIME)
        store.add_crl(crl, now)


def _create_authorities(folder: Path, now: datetime) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    root = pki.create_root("bidroom 演示根CA", now - IN_FORCE_BEFORE)
    sub = pki.create_intermediate(root, "bidroom 演示二级CA", now - IN_FORCE_BEFORE)
    for name, ca in (("root", root), ("sub", sub)):
        (folder / f"{name}.crt.pem").write_bytes(_pem(ca.cert))
        _write_secret(folder / f"{name}.key.pem", p.dump_private_key(ca.key))


def _create_people(folder: Path, now: datetime) -> None:
    sub = pki.CertificateAuthority(
        x509.load_pem_x509_certificate((folder / "sub.crt.pem").read_bytes()),
        p.load_private_key((folder / "sub.key.pem").read_bytes()),
    )
    index = []
    for person in PEOPLE:
        if not (folder / f"{person.id}.crt.pem").exists():
            key, cert = pki.issue_with_key(sub, _identity(person), now - IN_FORCE_BEFORE)
            _write_secret(folder / f"{person.id}.key.pem", p.dump_private_key(key))
            (folder / f"{person.id}.crt.pem").write_bytes(_pem(cert))
        index.append(
            {
                "id": person.id,
                "role": person.role,
                "name": person.name,
                "organisation": person.organisation,
            }
        )
    (folder / "people.json").write_text(json.dumps(index, ensure_ascii=False, indent=2))


async def register(folder: Path, trust: Path, store: Store, now: datetime) -> None:
    """Give each demo person their role in the platform's registry."""
    trusted = TrustStore(trust)
    for person in PEOPLE:
        cert = x509.load_pem_x509_certificate((folder / f"{person.id}.crt.pem").read_bytes())
        holder = trusted.verify_certificate(cert, [], now).holder
        await store.grant(
            login.holder_keys(holder)[0],
            f"{person.name}（{person.organisation}）",
            [person.role],
            now,
        )


def person(person_id: str) -> DemoPerson:
    return next(person for person in PEOPLE if person.id == person_id)


def certificate_der(folder: Path, person_id: str) -> bytes:
    cert = x509.load_pem_x509_certificate((folder / f"{person_id}.crt.pem").read_bytes())
    return cert.public_bytes(p.serialization_der())


def chain_der(folder: Path) -> list[bytes]:
    """The intermediate CA's certificate: the chain a demo person's signature carries."""
    return [certificate_der(folder, "sub")]


def subject_of(folder: Path, person_id: str) -> str:
    """The registry subject a demo person signs in as (their USCC, or their certificate)."""
    cert = x509.load_pem_x509_certificate((folder / f"{person_id}.crt.pem").read_bytes())
    return login.holder_keys(holder_of(cert))[0]


def people(folder: Path) -> list[dict[str, Any]]:
    return list(json.loads((folder / "people.json").read_text()))


def identity_files(folder: Path, person_id: str) -> dict[str, Any] | None:
    """A demo person's key and certificates, for the login page's one-click demo sign-in."""
    if person_id not in {p["id"] for p in people(folder)}:
        return None
    return {
        "key_pkcs8_pem": (folder / f"{person_id}.key.pem").read_text(),
        "certificate_pem": (folder / f"{person_id}.crt.pem").read_text(),
        "chain_pem": [(folder / "sub.crt.pem").read_text()],
    }
