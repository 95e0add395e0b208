"""The brender master."""
