"""bidroom's configuration: one typed object read from ``BIDROOM_*`` environment variables."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bidroom.errors import ConfigError

# The purposes' secrets, each a setting of its own (none derives another).
SECRETS = ("secret_key", "room_secret", "report_secret", "tsa_secret")


def _default_node() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    """Every setting, its default the embedded one (SQLite under ./var, in-process broker)."""

    model_config = SettingsConfigDict(env_prefix="BIDROOM_", frozen=True, extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./var/bidroom.db"
    redis_url: str | None = None
    # Each purpose its own secret, none derived from another (docs/operations.md "Keys and what
    # must be kept"): the session key signs session tokens and login challenges; the room secret
    # makes the opening rooms' keys; the report secret MACs the report's signing tokens; the TSA
    # secret locks the built-in TSA's key file. (The audit log's key: its own file, below.)
    secret_key: SecretStr | None = Field(default=None, min_length=32)
    room_secret: SecretStr | None = Field(default=None, min_length=32)
    report_secret: SecretStr | None = Field(default=None, min_length=32)
    tsa_secret: SecretStr | None = Field(default=None, min_length=32)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    public_url: str | None = None
    node_id: str = Field(default_factory=_default_node, min_length=1, max_length=64)
    var_dir: Path = Path("./var")
    web_dir: Path | None = None
    log_level: str = "INFO"
    token_ttl_seconds: int = Field(default=8 * 3600, gt=0)
    max_frame_bytes: int = Field(default=64 * 1024, ge=1024)
    queue_size: int = Field(default=1024, ge=8)
    heartbeat_seconds: float = Field(default=15.0, gt=0)
    hello_timeout_seconds: float = Field(default=10.0, gt=0)
    replay_limit: int = Field(default=500, ge=1)
    resync_seconds: float = Field(default=5.0, gt=0)
    node_ttl_seconds: float = Field(default=45.0, gt=0)
    commands_per_second: float = Field(default=20.0, gt=0)
    trust_dir: Path | None = None
    ca_dir: Path | None = None  # the CAs this platform operates; None: var_dir / "ca"
    login_challenge_seconds: int = Field(default=120, gt=0)
    # Login answers (POST /api/login) each node takes per minute from one client network (an
    # IPv4 address or an IPv6 /64), and failed answers per minute for one certificate and
    # network (token buckets, bursts of a minute's worth): over them, 429.
    logins_per_minute: float = Field(default=60.0, gt=0)
    certificate_logins_per_minute: float = Field(default=10.0, gt=0)
    # The proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or CIDRs,
    # JSON list; "*" any). Empty: the peer's own address is the client's, whatever it claims.
    trusted_proxies: list[str] = Field(default_factory=list)
    # A request body that pauses this long between two of its pieces is given up: 408
    # body_timeout (docs/operations.md "The HTTP edge").
    body_timeout_seconds: float = Field(default=60.0, gt=0)
    # Sockets one subject may hold in one room on one node; a newer one replaces the oldest,
    # which is closed with 4029.
    connections_per_subject: int = Field(default=4, ge=1)
    # A subject's last socket in a room that closes is recorded as gone only after this long;
    # a reconnection within it takes the old socket's place with no presence event.
    presence_grace_seconds: float = Field(default=5.0, ge=0)
    # The audit log's own Ed25519 key (bidroom.audit_key): an encrypted PKCS#8 file (None:
    # <var>/audit/log-key.pem, made at first use) and its passphrase (required). The witness:
    # the latest checkpoint this node signed or checked, kept apart from the database (None:
    # <var>/audit/witness.note), so that a database restored from a backup is not signed on.
    audit_key_file: Path | None = None
    audit_key_passphrase: SecretStr | None = None
    audit_witness: Path | None = None
    audit_origin: str | None = None  # the checkpoints' origin line; None: <host>/audit
    audit_seconds: float = Field(default=2.0, gt=0)  # how often pending entries are integrated
    # Trusted time (RFC 3161): an external TSA and a second one as fallback; with no URL, the
    # built-in TSA (key and certificates in tsa_dir, made at first start) serves POST /tsa.
    tsa_url: str | None = None
    tsa_fallback_url: str | None = None
    tsa_timeout_seconds: float = Field(default=10.0, gt=0)
    tsa_roots: Path | None = None  # PEM: roots of the external TSAs; None: the trust store
    tsa_dir: Path | None = None  # the built-in TSA's folder; None: var_dir / "tsa"
    # Tenders and bids (docs/opening.md): a lot's deadline is at least min_bid_days after its
    # publication; no lot may accept bids larger than max_bid_bytes.
    min_bid_days: int = Field(default=20, ge=0)
    max_bid_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    # The custody policy's insiders (docs/opening.md "Custodians"): the organisations on the
    # platform's side, the trading centre and the platform operator (who holds the database, the
    # disks and the secrets), as their certificates name them: an organisation's name (the O) or
    # "uscc:<code>", JSON list. The publishing chair's own organisation is always one. Fewer than
    # k of a lot's custodians may be insiders.
    insider_organisations: list[str] = Field(default_factory=list)
    # Unfinished uploads a bidder may hold per lot at once (each may take max_bid_bytes of disk).
    max_open_uploads: int = Field(default=2, ge=1)
    # How often the opening clock looks for due steps (bids fixed at the deadline, the window
    # closed at its end, confirmations closed at theirs).
    clock_seconds: float = Field(default=1.0, gt=0)
    # The bids are fixed this long after the deadline: a bid time-stamped before it may still be
    # being checked and recorded (a large envelope takes seconds).
    fix_grace_seconds: float = Field(default=30.0, ge=0)
    # The expert database's pool snapshot (a bidroom-expert-pool JSON file, committee.pool_json):
    # the committee is drawn from it. None: no committee can be drawn.
    expert_pool: Path | None = None
    # The clock looks only at openings whose deadline is at most this many days old.
    clock_horizon_days: float = Field(default=14.0, gt=0)
    # Media signaling (docs/protocol.md "Media signaling"). ICE servers: none by default (host
    # candidates only); TURN credentials are minted per participant in coturn's REST format from
    # turn_secret (coturn's static-auth-secret) and expire after turn_ttl_seconds. Lists are
    # JSON in the environment: BIDROOM_TURN_URLS='["turn:turn.example:3478"]'.
    stun_urls: list[str] = Field(default_factory=list)
    turn_urls: list[str] = Field(default_factory=list)
    turn_secret: SecretStr | None = None
    turn_ttl_seconds: int = Field(default=8 * 3600, gt=0)
    max_sdp_bytes: int = Field(default=32 * 1024, ge=1024)
    signals_per_second: float = Field(default=50.0, gt=0)
    # The server's own media participant (the evaluation recorder, signaling.aiortc_backend).
    # media_addresses: the host addresses it offers as ICE candidates ([] = every interface's
    # but loopback, aioice's own discovery; ["127.0.0.1"] for a single-machine test or demo).
    # What it relays to a viewer is held within media_max_width x media_max_height at
    # media_max_fps; recordings go to recordings_dir (None: var_dir / "recordings").
    media_addresses: list[str] = Field(default_factory=list)
    media_max_width: int = Field(default=640, ge=16, le=3840)
    media_max_height: int = Field(default=480, ge=16, le=2160)
    media_max_fps: float = Field(default=15.0, gt=0, le=60)
    recordings_dir: Path | None = None

    @model_validator(mode="after")
    def _replay_fits_the_queue(self) -> Settings:
        # A resume queues its whole replay at once: it must fit, with room for live events.
        if self.queue_size < self.replay_limit + 64:
            raise ValueError("BIDROOM_QUEUE_SIZE must exceed BIDROOM_REPLAY_LIMIT by at least 64")
        return self

    @model_validator(mode="after")
    def _media_fits(self) -> Settings:
        # TURN URLs are useless without credentials. (An SDP also travels inside one frame:
        # a frame over max_frame_bytes is refused before its SDP is looked at.)
        if self.turn_urls and self.turn_secret is None:
            raise ValueError("BIDROOM_TURN_URLS need BIDROOM_TURN_SECRET (static-auth-secret)")
        return self

    @model_validator(mode="after")
    def _secrets_apart(self) -> Settings:
        # One value given to two purposes would make one secret open both again.
        held: dict[str, str] = {}
        for name in SECRETS:
            secret: SecretStr | None = getattr(self, name)
            if secret is None:
                continue
            value = secret.get_secret_value()
            if value in held:
                raise ValueError(
                    f"BIDROOM_{held[value].upper()} and BIDROOM_{name.upper()} hold the same "
                    "value: each purpose needs a secret of its own"
                )
            held[value] = name
        return self

    def missing_secrets(self) -> list[str]:
        """The secrets a node needs and was not given (the TSA's only for the built-in TSA)."""
        needed = [n for n in SECRETS if n != "tsa_secret" or self.tsa_url is None]
        return [f"BIDROOM_{n.upper()}" for n in needed if getattr(self, n) is None]

    def require_secrets(self) -> None:
        """ConfigError naming every missing secret (serve and the app refuse to start)."""
        missing = self.missing_secrets()
        if missing:
            raise ConfigError(
                f"{', '.join(missing)} not set (each 32 or more random characters, a secret of "
                'its own: docs/operations.md "Keys and what must be kept")'
            )

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    @property
    def recordings_root(self) -> Path:
        return self.recordings_dir or self.var_dir / "recordings"

    @property
    def trust_root(self) -> Path:
        """The trust store: the CAs whose certificates this platform recognises."""
        return self.trust_dir or self.var_dir / "trust"

    @property
    def tsa_folder(self) -> Path:
        """The built-in TSA's key and certificates (used when no tsa_url is set)."""
        return self.tsa_dir or self.var_dir / "tsa"

    @property
    def web_root(self) -> Path:
        return self.web_dir or Path(__file__).resolve().parent.parent / "web"


def load_settings(**overrides: object) -> Settings:
    """Read the environment; a bad value becomes one ConfigError line naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"]
        if not loc:  # a check across settings: its message names the variables
            raise ConfigError(first["msg"].removeprefix("Value error, ")) from exc
        raise ConfigError(f"BIDROOM_{str(loc[0]).upper()}: {first['msg']}") from exc
