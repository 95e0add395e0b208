"""What can go wrong between Blender and the farm, each said in words an artist understands.

Every exception the add-on raises on purpose is a `FarmError`; its `str()` is the message shown
in Blender's status bar, so it says what happened and what to do about it. No `bpy` here.
"""

from __future__ import annotations


class FarmError(Exception):
    """The add-on's root exception: `str(exc)` is ready to show to the artist."""


class FarmUnreachable(FarmError):
    """Nothing answered at the farm's address (refused, timed out, unknown host)."""


class FarmUnauthorized(FarmError):
    """The farm wants a token and ours is missing or wrong."""


class FarmRefused(FarmError):
    """The farm understood the request and said no (its own validation message)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class FarmAnswerError(FarmError):
    """Something answered, but not the way a brender farm answers."""


class SettingsError(FarmError):
    """The add-on's own settings cannot make a job (no address, a bad frame range, …)."""
