"""slack_sdk's ``WebClient`` over kept-alive HTTP connections.

``WebClient`` opens a new connection for every Web API call (``urllib.request.urlopen``): a
TCP handshake, and against slack.com a TLS handshake, each time. :class:`KeepAliveWebClient`
sends the same requests over one connection per thread and host, kept open between calls, and
otherwise behaves exactly like ``WebClient``: the same requests and headers, the same errors
(``HTTPError`` for a status of 400 or more, ``URLError`` when a request cannot be sent, a
timeout or ``RemoteDisconnected`` while waiting for the response), so slack_sdk's retry
handlers and faqbot's error handling see no difference. With a proxy it is plain
``WebClient``.

A request is sent again on a new connection only when it could not be sent on a kept one
(the server had closed it): it cannot have been processed. A connection that broke after the
request was sent is never retried here; the call fails as it would with ``WebClient``.
"""

from __future__ import annotations

import http.client
import io
import ssl
import threading
import time
import urllib.parse
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request

from slack_sdk import WebClient

__all__ = ["KeepAliveWebClient"]

#: A kept connection unused for this long is closed instead of reused: servers close idle
#: connections after a while (Slack's load balancers after about a minute), and a request
#: sent as the server closes would fail.
IDLE_SECONDS = 20.0


class KeepAliveWebClient(WebClient):
    """A ``WebClient`` that keeps its connections open between calls (see the module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._local = threading.local()

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        parts = urllib.parse.urlsplit(url)
        if self.proxy is not None or parts.scheme.lower() not in ("http", "https"):
            return super()._perform_urllib_http_request_internal(url, req)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = dict(req.header_items())
        method = req.get_method()
        key = (parts.scheme.lower(), parts.netloc)
        conn, kept = self._connection(key)
        try:
            conn.request(method, path, body=req.data, headers=headers)
        except OSError as exc:
            self._drop(key)
            if not kept:
                raise URLError(exc) from exc
            conn, _ = self._connection(key)  # the kept one was closed: nothing was sent
            try:
                conn.request(method, path, body=req.data, headers=headers)
            except OSError as again:
                self._drop(key)
                raise URLError(again) from again
        try:
            response = conn.getresponse()
            data = response.read()
        except BaseException:
            self._drop(key)  # in an unknown state: never reused
            raise
        self._local.used[key] = time.monotonic()
        if response.status >= 400:
            raise HTTPError(url, response.status, response.reason, response.msg, io.BytesIO(data))
        headers_in = response.msg
        if headers_in.get_content_type() == "application/gzip":
            return {"status": response.status, "headers": headers_in, "body": data}
        charset = headers_in.get_content_charset() or "utf-8"
        return {"status": response.status, "headers": headers_in, "body": data.decode(charset)}

    def _connection(self, key: tuple[str, str]) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection to ``key`` (scheme, host:port); whether it is a kept one."""
        local = self._local
        if not hasattr(local, "conns"):
            local.conns, local.used = {}, {}
        conn = local.conns.get(key)
        if conn is not None and time.monotonic() - local.used.get(key, 0.0) > IDLE_SECONDS:
            self._drop(key)
            conn = None
        if conn is not None:
            return conn, conn.sock is not None
        scheme, netloc = key
        if scheme == "https":
            context = self.ssl or ssl.create_default_context()
            conn = http.client.HTTPSConnection(netloc, timeout=self.timeout, context=context)
        else:
            conn = http.client.HTTPConnection(netloc, timeout=self.timeout)
        local.conns[key] = conn
        local.used[key] = time.monotonic()
        return conn, False

    def _drop(self, key: tuple[str, str]) -> None:
        conn = self._local.conns.pop(key, None)
        self._local.used.pop(key, None)
        if conn is not None:
            conn.close()
