"""The add-on talks to a farm with TLS (`https://` in its address): the farm's certificate
checked against a CA file or a pinned fingerprint (its preferences), a wrong one refused in
words an artist can act on; uploads and downloads go the same way."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import addon_harness  # noqa: F401  (puts the repository root on sys.path)
import pytest
from tlscerts import Certs, tls_farm

from addon import client, transfer
from addon.errors import FarmUnreachable, SettingsError

TOKEN = "addon-tls"


@pytest.fixture(scope="module")
def https_url(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[str]:
    with tls_farm(tmp_path_factory.mktemp("farm"), certs, TOKEN) as farm:
        yield farm.http_url


def test_a_ca_file_or_a_pin_reaches_the_farm(https_url: str, certs: Certs, tmp_path: Path) -> None:
    assert https_url.startswith("https://")
    by_ca = client.FarmClient(https_url, TOKEN, tls_ca=str(certs.ca))
    assert by_ca.url == f"{https_url}/api"
    assert by_ca.status()["version"]
    by_pin = client.FarmClient(https_url, TOKEN, tls_fingerprint=certs.fingerprint)
    assert by_pin.status()["version"]
    # The blob endpoints go through the same checked connection.
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"over tls")
    sha = hashlib.sha256(b"over tls").hexdigest()
    files = transfer.Files(by_pin)
    assert files.base == https_url
    assert files.put_blob(sha, blob, lambda n: None) == 8


def test_a_wrong_certificate_is_said_in_words(https_url: str, certs: Certs) -> None:
    with pytest.raises(FarmUnreachable) as wrong_ca:
        client.FarmClient(https_url, TOKEN, tls_ca=str(certs.other_ca)).status()
    text = str(wrong_ca.value)
    assert text.startswith("Certificate for 127.0.0.1 not trusted: "), text
    assert "preferences" in text
    with pytest.raises(FarmUnreachable, match="not the pinned 00:00"):
        client.FarmClient(https_url, TOKEN, tls_fingerprint="00" * 32).status()
    with pytest.raises(SettingsError, match="not a SHA-256 fingerprint"):
        client.FarmClient(https_url, TOKEN, tls_fingerprint="abc")
    with pytest.raises(SettingsError, match="not https"):
        client.FarmClient("127.0.0.1:8080", TOKEN, tls_fingerprint="00" * 32)
    # A plain http:// address to the TLS port: the farm is not found as a brender farm.
    plain = https_url.replace("https://", "http://")
    with pytest.raises(FarmUnreachable):
        client.FarmClient(plain, TOKEN).status()
