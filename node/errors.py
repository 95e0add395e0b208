"""The render node's one root exception."""

from __future__ import annotations


class NodeError(Exception):
    """Something the node cannot do, in words a farm manager understands."""


class Unauthorized(NodeError):
    """The master refused our token: retrying with the same one is pointless."""
