"""Fleet credentials: the ids members go by, and the tokens they prove them with. Pure.

One random *fleet secret* lives with the router (and the operator's enrolment). Every member's
token is an HMAC of its role and name under it — ``device:<id>`` for a device, ``pool:<name>``
for the replicas of a cloud pool — so the router checks any member without a table of tokens, a
token names exactly one member, and a member holds its own token and nothing else. The same token
proves the router to the member: the router's calls to a replica (or to a device that listens)
carry it, and only the router and that member know it. `tandem credentials enroll device ID` and
`tandem credentials enroll pool NAME` print tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from pathlib import Path

from tandem.errors import InvalidArgument, Unauthenticated

ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
TOKEN_PREFIX = "tdv1."
SECRET_BYTES = 32
DEVICE = "device"
POOL = "pool"


def check_id(field: str, value: str) -> str:
    """`value` when it is a valid member id (1 to 128 characters of [A-Za-z0-9._:-]); else
    InvalidArgument naming `field`."""
    if not ID_PATTERN.fullmatch(value or ""):
        shown = value if len(value) <= 40 else value[:40] + "…"
        raise InvalidArgument(
            field, f"must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':', '-'; got {shown!r}"
        )
    return value


def write_secret(path: Path) -> bytes:
    """A new fleet secret in `path` (hex, readable by its owner only)."""
    secret = secrets.token_bytes(SECRET_BYTES)
    path.touch(mode=0o600)
    path.write_text(secret.hex() + "\n")
    return secret


def read_secret(path: Path) -> bytes:
    """The fleet secret in `path`; ValueError when it is not one."""
    try:
        secret = bytes.fromhex(path.read_text().strip())
    except OSError as exc:
        raise ValueError(f"fleet secret {path}: {exc.strerror}") from None
    except ValueError:
        raise ValueError(f"{path}: not a fleet secret (hex)") from None
    if len(secret) < 16:
        raise ValueError(f"{path}: a fleet secret has at least 16 bytes")
    return secret


def member_token(secret: bytes, role: str, name: str) -> str:
    """The token of member `name` in `role` (DEVICE or POOL) under `secret`."""
    mac = hmac.new(secret, f"{role}:{check_id(f'{role} id', name)}".encode(), hashlib.sha256).digest()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(mac).decode().rstrip("=")


def check_token(expected: str, token: str, who: str, how: str) -> None:
    """Raise Unauthenticated unless `token` is `expected` (compared in constant time). `who` names
    the member in the message, `how` says where its credential comes from."""
    if not token:
        raise Unauthenticated(f"{who} sent no credential (`authorization: Bearer <token>` metadata: {how})")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthenticated(f"the credential sent is not {who}'s")


def bearer(metadata) -> str:
    """The bearer token in call metadata ('' when none)."""
    auth = next((v for k, v in (metadata or ()) if k == "authorization"), "")
    return auth[len("Bearer ") :] if isinstance(auth, str) and auth.startswith("Bearer ") else ""


def bearer_metadata(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying `token` (none when it is empty)."""
    return (("authorization", f"Bearer {token}"),) if token else ()


def read_token(token: str, token_file: Path | None, what: str) -> str:
    """A credential given inline or in a file ('' when neither); ValueError on an unreadable file."""
    if token_file is None:
        return token
    try:
        return token_file.read_text().strip()
    except OSError as exc:
        raise ValueError(f"{what} token_file {token_file}: {exc.strerror}") from None
