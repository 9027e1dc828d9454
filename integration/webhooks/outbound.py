"""Outbound HTTP to addresses clients give us (webhook receivers), safe against SSRF.

requests-hardened resolves each host, refuses loopback, private, link-local (cloud
metadata), CGNAT and multicast addresses, IPv4-mapped IPv6 included, and connects to
the address it checked, so a DNS answer cannot change between check and connect. On top
of its filter, every address must be globally routable by `is_public` (which also sees
through IPv4-compatible IPv6 such as `::127.0.0.1` and refuses site-local `fec0::/10`),
the same function at registration (`check_target`) and at delivery (`PublicOnlyAdapter`).
Redirects are never followed. `WEBHOOK_ALLOW_PRIVATE` turns the filter off for local
development and tests, and is the only way plain `http://` targets are accepted.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import requests
from requests_hardened import Config, HTTPSession
from requests_hardened.ip_filter import EXTRA_BLOCKED_NET_RANGES, InvalidIPAddress
from requests_hardened.ip_filter_adapter import IPFilterAdapter

from integration.errors import ApiError
from integration.webhooks.deadline import watch_pools

TIMEOUT = (5.0, 15.0)
USER_AGENT = "podrelay-webhooks/1"


def is_public(address: str) -> bool:
    """Whether a webhook may be sent to this IP address: globally routable, whatever its spelling."""
    ip = ipaddress.ip_address(address.strip("[]").split("%")[0])
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif int(ip) < 2**32:  # IPv4-compatible (::a.b.c.d, deprecated): the IPv4 address it names
            ip = ipaddress.IPv4Address(int(ip))
        elif ip.is_site_local or ip.sixtofour is not None or ip.teredo is not None:
            return False
    return ip.is_global and not ip.is_multicast and not any(ip in net for net in EXTRA_BLOCKED_NET_RANGES)


def public_addresses(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, if all of them are public (InvalidIPAddress otherwise)."""
    found = [info[4][0] for info in socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)]
    refused = [address for address in found if not is_public(address)]
    if refused:
        raise InvalidIPAddress(refused[0])
    return found


class PublicOnlyAdapter(IPFilterAdapter):
    """requests-hardened's pinning adapter, whose pinned address must also pass `is_public`."""

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        """The pool for the pinned address; InvalidIPAddress when it is not public."""
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if not is_public(host_params["host"]):
            raise InvalidIPAddress(host_params["host"])
        return host_params, pool_kwargs


def session(allow_private: bool, pool_size: int = 64) -> requests.Session:
    """A session for webhook deliveries: no redirects, timeouts, the address filter."""
    config = Config(
        ip_filter_enable=not allow_private,
        ip_filter_allow_loopback_ips=False,
        never_redirect=True,
        default_timeout=TIMEOUT,
        user_agent_override=USER_AGENT,
    )
    http = HTTPSession(config)
    # No proxies or .netrc from the environment: a proxy would connect on podrelay's behalf
    # and bypass the address filter's pinning; and the look-up cost ~10% of a send's CPU.
    http.trust_env = False
    if not allow_private:
        for scheme in ("https://", "http://"):
            http.mount(scheme, PublicOnlyAdapter(is_https_proto=scheme == "https://", allow_loopback=False))
    for adapter in http.adapters.values():
        adapter.init_poolmanager(16, pool_size)  # many receivers, many concurrent sends
        watch_pools(adapter.poolmanager)  # a wall-clock deadline per attempt (deadline.py)
    return http


def check_target(url: str, allow_private: bool, param: str) -> None:
    """Refuse, with a 400 naming `param`, a webhook URL podrelay must not call."""
    parts = urlsplit(url)
    if "\\" in url:  # parsers disagree on a backslash (WHATWG reads it as '/'): refuse it
        raise ApiError(400, "invalid_webhook_url", "Webhook URL must not contain a backslash", param=param)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ApiError(400, "invalid_webhook_url", "Webhook URL must be an absolute https:// URL", param=param)
    if allow_private:
        return
    if parts.scheme != "https":
        raise ApiError(400, "invalid_webhook_url", "Webhook URL must use https://", param=param)
    try:
        public_addresses(parts.hostname, parts.port or 443)
    except InvalidIPAddress:
        raise ApiError(
            400, "invalid_webhook_url", "Webhook URL resolves to a private, loopback or link-local address", param=param
        ) from None
    except (socket.gaierror, UnicodeError, ValueError):
        raise ApiError(400, "invalid_webhook_url", f"Webhook URL host {parts.hostname!r} does not resolve", param=param) from None
