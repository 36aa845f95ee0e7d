"""The operator's side of fleet credentials: a fleet's secret, the tokens enrolled from it, and a
development CA.

A credentials folder holds:

    fleet.secret           the router's fleet secret (`fleet_secret_file`); keep it with the router
    devices/<id>.token     a device's credential (`[edge] token_file`)
    pools/<name>.token     a cloud pool's credential (`[[cloud.pools]] token_file`)
    ca.pem (ca.key)        a development CA: every component's `tls.ca_file`
    router.pem, .key       the router's certificate (`[router.tls]`), its client certificate too
    worker.pem, .key       the cloud replicas' (and listening devices') certificate

The certificates name localhost, 127.0.0.1, ::1, this machine's name and any `hosts` given: a
local stack's. In production use your own PKI for the TLS files; the tokens work the same.

`tandem credentials init DIR` makes one, `tandem credentials enroll device ID` / `enroll pool NAME`
print and file a member's token. `tandem up`, `tandem demo`, the local stack and the tests make
theirs the same way, so the path they run is the secure one.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import socket
from collections.abc import Iterable
from pathlib import Path

from runtime.credentials import DEVICE, POOL, member_token, read_secret, write_secret
from runtime.tls import TlsConfig

SECRET_NAME = "fleet.secret"
CERT_DAYS = 365


@dataclasses.dataclass(frozen=True)
class FleetCredentials:
    """A credentials folder (see the module docstring)."""

    root: Path

    @property
    def secret_file(self) -> Path:
        return self.root / SECRET_NAME

    def secret(self) -> bytes:
        return read_secret(self.secret_file)

    def token(self, role: str, name: str) -> str:
        """Member `name`'s token in `role` (DEVICE or POOL); InvalidArgument on a bad name."""
        return member_token(self.secret(), role, name)

    def token_file(self, role: str, name: str) -> Path:
        """A file holding member `name`'s token (written when missing, owner-readable only)."""
        path = self.root / f"{role}s" / f"{name}.token"
        if not path.exists():
            token = self.token(role, name)  # checks the name before it becomes a path
            path.parent.mkdir(mode=0o700, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(token + "\n")
        return path

    def device_token_file(self, device_id: str) -> Path:
        return self.token_file(DEVICE, device_id)

    def pool_token_file(self, pool: str) -> Path:
        return self.token_file(POOL, pool)

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.pem"

    def tls(self, name: str = "") -> TlsConfig:
        """TLS files for a component: "router" or "worker" (its certificate and the CA), or ""
        (the CA alone: apps, devices that dial out, the load tester)."""
        if not name:
            return TlsConfig(ca_file=self.ca_file)
        return TlsConfig(self.ca_file, self.root / f"{name}.pem", self.root / f"{name}.key")

    def ca_bytes(self) -> bytes:
        return self.ca_file.read_bytes()


def init_credentials(root: Path, hosts: Iterable[str] = ()) -> FleetCredentials:
    """A credentials folder at `root` with a fleet secret and a development CA with the router's
    and the workers' certificates for `hosts` (beside the local names). What exists is kept."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    creds = FleetCredentials(root)
    if not creds.secret_file.exists():
        write_secret(creds.secret_file)
    if not creds.ca_file.exists():
        _make_dev_pki(root, ["localhost", "127.0.0.1", "::1", socket.gethostname(), *hosts])
    return creds


def _make_dev_pki(root: Path, hosts: list[str]) -> None:
    """ca.pem/.key, and router.pem/.key and worker.pem/.key signed by it, for `hosts` (P-256)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tandem development"),
                          x509.NameAttribute(NameOID.COMMON_NAME, cn)])  # fmt: skip

    def write(stem: str, key, cert) -> None:
        key_path = root / f"{stem}.key"
        key_path.touch(mode=0o600)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (root / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("Tandem development CA"))
        .issuer_name(name("Tandem development CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    alt_names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    for stem, cn in (("router", "tandem-router"), ("worker", "tandem-worker")):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        write(stem, key, cert)
    write("ca", ca_key, ca_cert)
