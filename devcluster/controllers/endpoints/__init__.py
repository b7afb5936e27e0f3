"""The endpoints controllers: which pods serve a Service.

- ``decisions``: a Service's ready and not-ready pod addresses with their
  resolved ports, as an ``EndpointSlice`` and a core/v1 ``Endpoints``. Pure.
- ``loop``: the EndpointSlice and Endpoints controllers acting on the store.
"""
