"""TLS and mutual TLS for every gRPC port and for the gateway's channels to its backends.

Certificates are files (PEM), named by settings, so that a Kubernetes secret mounted as a
volume or a certificate made by a test fixture is used the same way. A client CA on a
server turns on mutual TLS: callers without a certificate that CA signed are refused in
the handshake.
"""

from pathlib import Path

import grpc
from pydantic import Field

from dragoman.settings import SettingsError, SettingsGroup


class ServerTlsSettings(SettingsGroup):
    """The TLS settings of a gRPC server port (each service's `tls` group)."""

    tls_cert_file: str = Field(
        "", description="PEM certificate chain of the gRPC port; empty: plaintext (h2c)"
    )
    tls_key_file: str = Field("", description="PEM private key of that certificate")
    tls_client_ca_file: str = Field(
        "", description="PEM CA that client certificates must chain to: mutual TLS; empty: none"
    )


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as error:
        raise SettingsError(f"cannot read the {what} {path}: {error.strerror}") from None


def server_credentials(
    cert_file: str, key_file: str, client_ca_file: str
) -> grpc.ServerCredentials | None:
    """None for plaintext; raises SettingsError for a half-configured or unreadable pair."""
    if not cert_file and not key_file:
        if client_ca_file:
            raise SettingsError("tls_client_ca_file needs tls_cert_file and tls_key_file")
        return None
    if not (cert_file and key_file):
        raise SettingsError("TLS needs both tls_cert_file and tls_key_file")
    client_ca = _read(client_ca_file, "client CA") if client_ca_file else None
    return grpc.ssl_server_credentials(
        [(_read(key_file, "key"), _read(cert_file, "certificate"))],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def channel_credentials(
    ca_file: str, cert_file: str = "", key_file: str = ""
) -> grpc.ChannelCredentials | None:
    """Credentials to reach a TLS server signed by `ca_file` (None: plaintext), with a
    client certificate when the server asks for mutual TLS."""
    if not ca_file:
        if cert_file or key_file:
            raise SettingsError("a client certificate needs the servers' CA file as well")
        return None
    if bool(cert_file) != bool(key_file):
        raise SettingsError("a client certificate needs both its certificate and key files")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca_file, "CA"),
        private_key=_read(key_file, "client key") if key_file else None,
        certificate_chain=_read(cert_file, "client certificate") if cert_file else None,
    )
