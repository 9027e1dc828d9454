"""Outbound HTTP to addresses clients give us (webhook receivers), safe against SSRF.

requests-hardened resolves each host, refuses loopback, private, link-local (cloud
metadata), CGNAT and multicast addresses, IPv4-mapped IPv6 included, and connects to
the address it checked, so a DNS answer cannot change between check and connect.
Redirects are never followed. `WEBHOOK_ALLOW_PRIVATE` turns the filter off for local
development and tests, and is the only way plain `http://` targets are accepted.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import requests
from requests_hardened import Config, HTTPSession
from requests_hardened.ip_filter import InvalidIPAddress, get_ip_address

from integration.errors import ApiError

TIMEOUT = (5.0, 15.0)
USER_AGENT = "podrelay-webhooks/1"


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
    for adapter in http.adapters.values():
        adapter.init_poolmanager(16, pool_size)  # many receivers, many concurrent sends
    return http


def check_target(url: str, allow_private: bool, param: str) -> None:
    """Refuse, with a 400 naming `param`, a webhook URL podrelay must not call."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ApiError(400, "invalid_webhook_url", "Webhook URL must be an absolute https:// URL", param=param)
    if allow_private:
        return
    if parts.scheme != "https":
        raise ApiError(400, "invalid_webhook_url", "Webhook URL must use https://", param=param)
    try:
        get_ip_address(parts.hostname.strip("[]"), parts.port or 443, allow_loopback=False)
    except InvalidIPAddress:
        raise ApiError(
            400, "invalid_webhook_url", "Webhook URL resolves to a private, loopback or link-local address", param=param
        ) from None
    except (socket.gaierror, UnicodeError, ValueError):
        raise ApiError(400, "invalid_webhook_url", f"Webhook URL host {parts.hostname!r} does not resolve", param=param) from None
