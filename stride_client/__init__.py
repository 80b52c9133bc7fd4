"""Stride's typed Python client: the public API over httpx, for game servers, studios' tools
and the ``stride content`` CLI.

Thin and typed over httpx rather than generated: the API's one error shape, its
``Retry-After`` answers and its ``ETag``/``If-Match`` concurrency are handled once in
:mod:`stride_client._http`, and every resource module is a few typed methods over it.
"""

from stride_client._http import StrideAPIError, Transport
from stride_client.assets import AssetsClient
from stride_client.events import EventsClient

__all__ = ["AssetsClient", "EventsClient", "StrideAPIError", "Transport"]
