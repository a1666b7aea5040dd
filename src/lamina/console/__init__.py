"""The web console at ``/console/``: static pages plus a small JSON back end.

The back end signs a user in with an access key and secret (the same accounts, and STS sessions, as
the API) and then runs AWS operations for them through the very handlers, validation and
authorisation the API uses: ``POST /console/api/call {"service", "operation", "region", "params"}``
with params shaped as boto3 takes them (blobs in base64). No other path reaches the services.
"""
