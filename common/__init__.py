"""brender: a render farm manager for Blender. Shared pieces of the server and the node."""

__version__ = "0.1.0"
