"""The brender render node."""
