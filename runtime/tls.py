"""TLS for Tandem's hops: one component's PEM files, and the gRPC credentials made from them.

Every hop runs TLS unless a component is told `insecure = true`. Where both ends are the fleet's
own — the router calling a cloud replica, or a device that listens — it is mutual: the worker
asks for a client certificate signed by the fleet's CA, and the router presents its own.
`tandem credentials init DIR` makes a development CA and certificates for a local stack.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import grpc


@dataclasses.dataclass(frozen=True)
class TlsConfig:
    """A component's TLS files (the ``[<component>.tls]`` table)."""

    ca_file: Path | None = None  # the CA that signed the peers' certificates (None: the system's roots)
    cert_file: Path | None = None  # this component's certificate (its client certificate too)
    key_file: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls: set cert_file and key_file together")

    @property
    def has_cert(self) -> bool:
        return self.cert_file is not None

    def _read(self, path: Path | None, what: str) -> bytes | None:
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ValueError(f"tls {what} {path}: {exc.strerror}") from None

    def server_credentials(self, require_client_auth: bool = False) -> grpc.ServerCredentials:
        """Credentials to serve with this certificate; `require_client_auth`: only peers with a
        certificate signed by `ca_file` get in. ValueError when a file is missing."""
        if not self.has_cert:
            raise ValueError("tls: serving TLS needs cert_file and key_file")
        if require_client_auth and self.ca_file is None:
            raise ValueError("tls: checking client certificates needs ca_file")
        return grpc.ssl_server_credentials(
            [(self._read(self.key_file, "key_file"), self._read(self.cert_file, "cert_file"))],
            root_certificates=self._read(self.ca_file, "ca_file"),
            require_client_auth=require_client_auth,
        )

    def channel_credentials(self, present_cert: bool = False) -> grpc.ChannelCredentials:
        """Credentials to call a TLS server whose certificate `ca_file` vouches for; with
        `present_cert`, also show this component's certificate (mutual TLS)."""
        key = cert = None
        if present_cert:
            if not self.has_cert:
                raise ValueError("tls: mutual TLS needs cert_file and key_file")
            key, cert = self._read(self.key_file, "key_file"), self._read(self.cert_file, "cert_file")
        return grpc.ssl_channel_credentials(
            root_certificates=self._read(self.ca_file, "ca_file"), private_key=key, certificate_chain=cert
        )


def open_channel(
    target: str, credentials: grpc.ChannelCredentials | None, options=(), aio: bool = True
) -> grpc.Channel | grpc.aio.Channel:
    """A channel to `target`: TLS with `credentials`, plaintext when they are None."""
    module = grpc.aio if aio else grpc
    if credentials is None:
        return module.insecure_channel(target, options=list(options))
    return module.secure_channel(target, credentials, options=list(options))
