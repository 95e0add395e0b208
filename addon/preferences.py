"""The add-on's preferences: where the farm is, its token, how often the jobs list refreshes."""

# mypy: disable-error-code="valid-type"
# (Blender property annotations are deferred property definitions, not types.)

from __future__ import annotations

from collections.abc import Callable

import bpy
from bpy.props import FloatProperty, StringProperty

from .client import DEFAULT_PORT

ADDON_ID = __package__ or "brender"


class BrenderPreferences(bpy.types.AddonPreferences):
    """Edit > Preferences > Add-ons > brender."""

    bl_idname = ADDON_ID

    address: StringProperty(
        name="Farm address",
        description=(
            "Host and port of the farm's HTTP API (brender-server's --http-port), "
            f"for example 10.0.0.5:{DEFAULT_PORT}; https://host:port for a farm with TLS"
        ),
        default=f"127.0.0.1:{DEFAULT_PORT}",
    )
    token: StringProperty(
        name="Token",
        description="The farm's token (brender-server's --token or BRENDER_TOKEN); empty if none",
        subtype="PASSWORD",
    )
    tls_ca: StringProperty(
        name="CA file",
        description=(
            "For an https:// farm: the CA certificate (PEM) that signed the farm's certificate; "
            "empty for the system's CAs"
        ),
        subtype="FILE_PATH",
    )
    tls_fingerprint: StringProperty(
        name="Certificate fingerprint",
        description=(
            "For an https:// farm with a self-signed certificate: its SHA-256 fingerprint "
            "(openssl x509 -noout -fingerprint -sha256 -in farm.pem)"
        ),
    )
    refresh_every: FloatProperty(
        name="Refresh every",
        description="Seconds between two refreshes of the jobs list while it is on screen",
        default=3.0,
        min=1.0,
        max=120.0,
        subtype="TIME_ABSOLUTE",
        unit="TIME_ABSOLUTE",
    )

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "address")
        layout.prop(self, "token")
        layout.prop(self, "tls_ca")
        layout.prop(self, "tls_fingerprint")
        layout.prop(self, "refresh_every")
        row = layout.row()
        row.operator("brender.test_connection", icon="LINKED")


classes = (BrenderPreferences,)
# The stubs say the factory returns None; it returns (register, unregister).
register: Callable[[], None]
unregister: Callable[[], None]
register, unregister = bpy.utils.register_classes_factory(classes)  # type: ignore[func-returns-value, misc]
