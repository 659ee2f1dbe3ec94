"""bidroom: remote bid opening and remote multi-venue evaluation for public procurement."""

__version__ = "0.1.0"
