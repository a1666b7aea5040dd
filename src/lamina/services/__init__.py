"""Operation handlers, one package per AWS service.

A :class:`~lamina.services.base.ServiceBinding` ties a botocore service model to its handlers; the
API's pipeline routes, parses, authorizes and validates, then calls
``handler(platform, ctx, params)`` and serialises what it returns. The handlers' shared parts are a
:class:`~lamina.services.platform.Platform`, built by the composition root.
"""
