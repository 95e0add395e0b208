"""Certificates made in the test run (never committed): a CA, a farm certificate it signed
for 127.0.0.1 (a SAN IP entry), and a second CA that signed nothing the farm holds."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from farmctl import ServerProcess


@dataclass(frozen=True)
class Certs:
    ca: Path
    cert: Path
    key: Path
    other_ca: Path
    fingerprint: str
    """The farm certificate's SHA-256, as `openssl x509 -fingerprint -sha256` prints it."""


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _ca(common: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(_name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_certs(folder: Path) -> Certs:
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca = _ca("brender test CA")
    _, other = _ca("someone else's CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("brender farm"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = Certs(
        ca=folder / "ca.pem",
        cert=folder / "farm.pem",
        key=folder / "farm.key",
        other_ca=folder / "other-ca.pem",
        fingerprint=":".join(
            f"{b:02X}"
            for b in hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
        ),
    )
    paths.ca.write_bytes(_pem(ca))
    paths.other_ca.write_bytes(_pem(other))
    paths.cert.write_bytes(_pem(cert))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    paths.key.chmod(0o600)
    return paths


@contextlib.contextmanager
def tls_farm(
    data_dir: Path, certs: Certs, token: str | None, extra: list[str] | None = None
) -> Iterator[ServerProcess]:
    """A server with TLS on both ports, this certificate and key, stopped at the end."""
    flags = ["--tls-cert", str(certs.cert), "--tls-key", str(certs.key), *(extra or [])]
    farm = ServerProcess(data_dir, token=token, extra=flags).start()
    try:
        yield farm
    finally:
        farm.stop()
