"""The layer builder: ``lamina layer build``, ``lamina layer check`` and ``lamina layer publish``.

Resolve and install wheels for the target runtime and architecture (never the host), lay out
``python/``, write a deterministic zip, cache it, verify it in a real execution environment, and
publish it with PublishLayerVersion when its CodeSha256 is new. ``elfcheck`` tells, without running
anything, which files of any zip cannot load on a runtime.
"""
