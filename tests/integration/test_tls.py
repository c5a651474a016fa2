"""TLS served directly (issue 18): QUIVER_TLS_CERT / QUIVER_TLS_KEY, and client certificates
required by QUIVER_TLS_CA_CERT. Certificates are made by the test (``cryptography``)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.helpers.configured_server import configured_server

pytestmark = pytest.mark.integration


@dataclass
class Issued:
    cert: Path
    key: Path


class Authority:
    """A throwaway CA that writes PEM files into a folder."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.name = subject
        self.cert = (
            self._builder(subject, self.key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.path = folder / f"{name}.pem"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, *, server: bool) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = self._builder(subject, key.public_key()).add_extension(
            x509.ExtendedKeyUsage([usage]), critical=False
        )
        if server:
            names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        issued = Issued(self.folder / f"{name}.crt", self.folder / f"{name}.key")
        issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        issued.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return issued

    def _builder(
        self, subject: x509.Name, public_key: ec.EllipticCurvePublicKey
    ) -> x509.CertificateBuilder:
        now = datetime.datetime.now(datetime.UTC)
        issuer = getattr(self, "name", subject)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
        )


def context(ca: Authority, client: Issued | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca.path))
    if client is not None:
        ctx.load_cert_chain(str(client.cert), str(client.key))
    return ctx


def test_https_with_a_certificate_the_test_made(tmp_path: Path) -> None:
    ca = Authority(tmp_path, "test-ca")
    server = ca.issue("server", server=True)
    settings = {"QUIVER_TLS_CERT": str(server.cert), "QUIVER_TLS_KEY": str(server.key)}
    with configured_server(tmp_path, settings, scheme="https", verify=context(ca)) as url:
        with httpx.Client(verify=context(ca), timeout=10) as client:
            body = {"vectors": {"size": 2, "distance": "Dot"}}
            assert client.put(f"{url}/collections/secure", json=body).status_code == 200
            assert client.get(f"{url}/collections").json()["result"]["collections"] == [
                {"name": "secure"}
            ]
        plain = url.replace("https://", "http://")
        with pytest.raises(httpx.TransportError), httpx.Client(timeout=5) as client:
            client.get(f"{plain}/collections")


def test_a_ca_makes_client_certificates_required(tmp_path: Path) -> None:
    ca = Authority(tmp_path, "test-ca")
    stranger = Authority(tmp_path, "other-ca")
    server = ca.issue("server", server=True)
    client_cert = ca.issue("client", server=False)
    settings = {
        "QUIVER_TLS_CERT": str(server.cert),
        "QUIVER_TLS_KEY": str(server.key),
        "QUIVER_TLS_CA_CERT": str(ca.path),
    }
    trusted = context(ca, client_cert)
    with configured_server(tmp_path, settings, scheme="https", verify=trusted) as url:
        with httpx.Client(verify=trusted, timeout=10) as client:
            assert client.get(f"{url}/collections").status_code == 200
        for refused in (context(ca), context(ca, stranger.issue("intruder", server=False))):
            with (
                pytest.raises(httpx.TransportError),
                httpx.Client(verify=refused, timeout=5) as client,
            ):
                client.get(f"{url}/collections")
