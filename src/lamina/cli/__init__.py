"""The ``lamina`` command."""
