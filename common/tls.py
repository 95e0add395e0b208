"""TLS for the farm's two ports, on the standard library's `ssl` only (the add-on bundles it).

The server loads a certificate and key (`server_context`). A client verifies the farm's
certificate in one of two ways (`client_context`): against a CA file (the system's CAs when it
names none), hostname included; or, for a self-signed farm certificate, by its pinned SHA-256
fingerprint (`--tls-fingerprint`), checked right after the handshake (`check_pin`): the pin
stands for both the chain and the name. `describe` puts a failure in one line that says which
certificate and what was wrong with it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import http.client
import os
import re
import ssl
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

HANDSHAKE_TIMEOUT = 10.0
"""Seconds a peer of a TLS port has to finish its handshake."""


class TLSSettingsError(ValueError):
    """A certificate, key, CA file or fingerprint that cannot be used; the message says why."""


class UntrustedCertificate(ssl.SSLError):
    """The farm's certificate is not the pinned one."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "certificate not trusted"


@dataclass(frozen=True)
class ClientTLS:
    """How a client checks the farm: `ca` (a PEM file; "" for the system's CAs) or a pinned
    `fingerprint` (64 hex digits, colons allowed)."""

    ca: str = ""
    fingerprint: str = ""

    def context(self) -> ssl.SSLContext:
        return client_context(self.ca, self.fingerprint)

    @property
    def pin(self) -> str:
        return normalise_fingerprint(self.fingerprint) if self.fingerprint else ""


def find_client_tls(
    wants_tls: bool, ca: str | None, fingerprint: str | None, environ: Mapping[str, str]
) -> ClientTLS | None:
    """What `--tls-ca`, `--tls-fingerprint` or `BRENDER_TLS_CA` / `BRENDER_TLS_FINGERPRINT`
    say, for an address that asks for TLS (`wants_tls`); None for a plain one. The flags win
    over the environment; a CA file and a pin together are refused, as is either one for a
    plain address (its traffic would not be protected, whatever the flag says)."""
    from_flags = bool(ca or fingerprint)
    ca = ca if from_flags else environ.get("BRENDER_TLS_CA", "")
    fingerprint = fingerprint if from_flags else environ.get("BRENDER_TLS_FINGERPRINT", "")
    if ca and fingerprint:
        raise TLSSettingsError("give --tls-ca or --tls-fingerprint, not both")
    if not wants_tls:
        if from_flags:
            raise TLSSettingsError(
                "--tls-ca / --tls-fingerprint need a TLS address (https://… or tls://…)"
            )
        return None
    if ca and not os.path.isfile(ca):
        raise TLSSettingsError(f"no CA file {ca}")
    return ClientTLS(ca or "", normalise_fingerprint(fingerprint) if fingerprint else "")


def normalise_fingerprint(text: str) -> str:
    """`AB:CD:…` or `abcd…` as 64 lower-case hex digits; TLSSettingsError otherwise."""
    value = text.split("=", 1)[-1]  # `openssl x509 -fingerprint` prints "sha256 Fingerprint=…"
    if value.lower().startswith("sha256:"):
        value = value[len("sha256:") :]
    digits = re.sub(r"[\s:]", "", value).lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digits):
        raise TLSSettingsError(
            f"not a SHA-256 fingerprint: {text!r} (64 hex digits, as `openssl x509 -noout "
            "-fingerprint -sha256` prints them)"
        )
    return digits


def fingerprint_of_der(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def fingerprint_of_pem_file(path: str) -> str:
    """The SHA-256 fingerprint of the first certificate in a PEM file (the server's own)."""
    try:
        with open(path, encoding="ascii") as f:
            text = f.read()
        match = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", text, re.S)
        if match is None:
            raise TLSSettingsError(f"{path} holds no PEM certificate")
        return fingerprint_of_der(ssl.PEM_cert_to_DER_cert(match.group(0)))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, TLSSettingsError):
            raise
        raise TLSSettingsError(f"cannot read the certificate {path}: {exc}") from None


def show_fingerprint(hexdigits: str) -> str:
    return ":".join(hexdigits[i : i + 2] for i in range(0, len(hexdigits), 2)).upper()


def server_context(cert: str, key: str) -> ssl.SSLContext:
    """The server's context: TLS 1.2 or later, this certificate (a chain file) and key."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key or None)
    except (OSError, ssl.SSLError) as exc:
        raise TLSSettingsError(f"cannot use --tls-cert {cert} / --tls-key {key}: {exc}") from None
    return ctx


def client_context(ca: str = "", fingerprint: str = "") -> ssl.SSLContext:
    """A client's context. With a fingerprint the chain and name are not checked by OpenSSL
    (a self-signed certificate has neither): `check_pin` must run after the handshake."""
    if fingerprint:
        normalise_fingerprint(fingerprint)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        try:
            ctx = ssl.create_default_context(cafile=ca or None)
        except (OSError, ssl.SSLError) as exc:
            raise TLSSettingsError(f"cannot read the CA file {ca}: {exc}") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def check_pin(sock: ssl.SSLSocket | ssl.SSLObject, pin: str, host: str) -> None:
    """After the handshake: the peer's certificate must be the pinned one."""
    if not pin:
        return
    der = sock.getpeercert(binary_form=True) or b""
    got = fingerprint_of_der(der)
    if not hmac.compare_digest(got, pin):
        raise UntrustedCertificate(
            f"certificate for {host} not trusted: its SHA-256 fingerprint is "
            f"{show_fingerprint(got)}, not the pinned {show_fingerprint(pin)}"
        )


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """`http.client`'s HTTPS connection that also checks a pinned fingerprint on connecting."""

    def __init__(self, *args: Any, pin: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pin = pin

    def connect(self) -> None:
        super().connect()
        assert isinstance(self.sock, ssl.SSLSocket)
        check_pin(self.sock, self._pin, self.host)


def https_connection(host: str, port: int, timeout: float, tls: ClientTLS) -> PinnedHTTPSConnection:
    return PinnedHTTPSConnection(host, port, timeout=timeout, context=tls.context(), pin=tls.pin)


class HTTPSHandler(urllib.request.HTTPSHandler):
    """urllib's HTTPS with this CA file or pinned fingerprint (the add-on's opener)."""

    def __init__(self, tls: ClientTLS) -> None:
        super().__init__(context=tls.context())
        self._pin = tls.pin

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(PinnedHTTPSConnection, pin=self._pin)
        return self.do_open(connection, req, context=self._context)  # type: ignore[attr-defined]


def describe(
    exc: BaseException, host: str, hint: str = " (check --tls-ca or --tls-fingerprint)"
) -> str | None:
    """One line for a TLS failure talking to `host`, or None when `exc` is not one; `hint`
    follows an untrusted certificate's reason."""
    if isinstance(exc, UntrustedCertificate):
        return str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or exc.reason or str(exc)
        return f"certificate for {host} not trusted: {why}{hint}"
    if isinstance(exc, ssl.SSLError):
        why = exc.reason or str(exc)
        if why in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "UNEXPECTED_EOF_WHILE_READING"):
            return f"no TLS from {host} ({why}): does the farm run with --tls-cert?"
        return f"TLS with {host} failed: {why}"
    return None
