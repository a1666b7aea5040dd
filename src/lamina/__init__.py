"""lamina: a self-hosted AWS Lambda for Linux."""

__version__ = "0.1.0"
