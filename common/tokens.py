"""Where a program finds the farm's token: `--token`, `--token-file`, `BRENDER_TOKEN`,
`BRENDER_TOKEN_FILE`, in that order. A token on a command line shows in `ps` to every user of
the machine; a file readable only by its owner (`chmod 600`) does not, nor does the
environment of another user's process."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


class TokenFileError(ValueError):
    """The token file cannot be read, or holds no token; the message says which and why."""


def read_token_file(path: str) -> str:
    """The token in `path`: its first line, without surrounding blanks."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenFileError(f"cannot read the token file {path}: {exc}") from None
    token = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not token:
        raise TokenFileError(f"the token file {path} is empty")
    return token


def find_token(token: str | None, token_file: str | None, environ: Mapping[str, str]) -> str | None:
    """The token the flags or the environment give, or None; TokenFileError for a bad file or
    for both `--token` and `--token-file`."""
    if token and token_file:
        raise TokenFileError("give --token or --token-file, not both")
    if token:
        return token
    if token_file:
        return read_token_file(token_file)
    if environ.get("BRENDER_TOKEN"):
        return environ["BRENDER_TOKEN"]
    if environ.get("BRENDER_TOKEN_FILE"):
        return read_token_file(environ["BRENDER_TOKEN_FILE"])
    return None
