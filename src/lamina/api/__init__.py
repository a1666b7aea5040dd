"""The HTTP front door and the one request pipeline (authenticate -> parse -> authorize ->
validate -> handle -> serialize): ``app`` (ASGI transport), ``pipeline``, ``auth``, ``sigv4``,
``protocols`` (the AWS wire protocols), ``validation``."""
