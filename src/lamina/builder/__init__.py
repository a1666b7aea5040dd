"""The layer builder: ``lamina layer build`` and ``lamina layer publish``.

Resolve and install wheels for the target runtime and architecture (never the host), lay out
``python/``, write a deterministic zip, cache it, verify it in a real execution environment, and
publish it with PublishLayerVersion when its CodeSha256 is new.
"""
