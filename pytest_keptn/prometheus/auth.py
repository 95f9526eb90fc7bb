"""Where Prometheus is and who we are to it: URLs as Keptn reads them, credentials from the
environment variables the settings name, extra headers, TLS verification. A bad setting is a
:class:`ConfigError` that never shows a secret."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import ssl
from typing import Any
from urllib.parse import quote, quote_plus, unquote

from pytest_keptn.errors import ConfigError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# what may follow the userinfo's "@": a host (or [IPv6]) and an optional port, then the path
_HOSTPORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^/?#@:\[\]]+)(:\d*)?(?=[/?#]|$)")


def normalize_url(url: str) -> str:
    """The base URL as Keptn's Prometheus provider reads it: spaces removed, ``https://`` when
    there is no scheme. Any other scheme than http(s) is a :class:`ConfigError` (which never
    shows the URL: it may hold a password)."""
    url = url.strip().replace(" ", "")
    match = _SCHEME.match(url)
    if match is None:
        return "https://" + url
    if match.group(1).lower() not in ("http", "https"):
        raise ConfigError(f"the URL's scheme must be http:// or https://, not "
                          f"{match.group(1)[:10]!r}://", field="--keptn-prometheus-url")
    return url


def split_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` without userinfo, and the (user, password) it held.

    A password may hold an unencoded ``#``, ``/``, ``?`` or ``@``: the userinfo then ends at the
    last ``@`` that a host (and port) follows, instead of where a URL parser would end the host.
    """
    match = _SCHEME.match(url)
    if match is None or "@" not in url:
        return url, None
    rest = url[match.end():]
    cut = -1
    for i in range(len(rest) - 1, -1, -1):
        if rest[i] == "@" and _HOSTPORT.match(rest[i + 1:]):
            cut = i
            break
    if cut < 0:
        raise ConfigError("the URL has an '@' but no host after it; percent-encode the "
                          "password, or give it through --keptn-prometheus-password-env",
                          field="--keptn-prometheus-url")
    userinfo, hostpart = rest[:cut], rest[cut + 1:]
    raw_user, _, raw_password = userinfo.partition(":")
    return url[:match.end()] + hostpart, (unquote(raw_user), unquote(raw_password))


def secret_forms(secret: str) -> set[str]:
    """Every way ``secret`` can appear in text this package writes or a library prints: raw,
    inside ``repr``, JSON (both escapings), HTML, URL-encoded, base64."""
    if not secret:
        return set()
    forms = {
        secret,
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        html.escape(secret),
        html.escape(secret, quote=False),
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        base64.b64encode(secret.encode()).decode(),
    }
    return {f for f in forms if f}


def sensitive(header: str) -> bool:
    h = header.lower()
    return h in ("authorization", "proxy-authorization", "cookie") or any(
        w in h for w in ("token", "key", "secret", "auth", "password")
    )


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 token
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def parse_headers(raw: str) -> dict[str, str]:
    """``Name: value; Name2: value2`` as a mapping; a malformed one is named by its place and
    name, never shown with its value (it may be a credential)."""
    headers: dict[str, str] = {}
    parts = [p for p in raw.split(";") if p.strip()]
    for number, part in enumerate(parts, 1):
        name, sep, value = part.partition(":")
        name, value = name.strip(), value.strip()
        where = f"header {number} of {len(parts)}"
        if not sep or not _HEADER_NAME.match(name):
            raise ConfigError(f"{where} is not 'Name: value' (a header name is letters, digits "
                              "and -; a value cannot hold ';')", field="--keptn-prometheus-headers")
        if _CONTROL.search(value):
            raise ConfigError(f"{where} ({name}) has a control character in its value",
                              field="--keptn-prometheus-headers")
        headers[name] = value
    return headers


def credential(settings: Any, field: str) -> str | None:
    """The credential in the environment variable the setting ``field`` names, stripped of
    surrounding whitespace (secrets read from files end with a newline); None when not set
    or empty. Never says the option's value: a user may have given the secret itself."""
    var = getattr(settings, field, None)
    if not var:
        return None
    option = "--keptn-" + field.replace("_", "-")
    if not _ENV_NAME.match(var):
        raise ConfigError("names an environment variable, and what it was given is not a valid "
                          "variable name (give the variable's name, not the credential itself)",
                          field=option)
    value = os.environ.get(var)
    if value is None:
        raise ConfigError("names an environment variable that is not set (give the variable's "
                          "name, not the credential itself)", field=option)
    value = value.strip()
    if _CONTROL.search(value):
        raise ConfigError("names an environment variable whose value has a control character "
                          "inside it", field=option)
    return value or None


def tls_verify(settings: Any) -> ssl.SSLContext | bool:
    """TLS certificates are verified (Keptn 0.8.7's provider did not); a private CA can be
    trusted, or verification skipped, by options named for what they do."""
    bundle = getattr(settings, "prometheus_ca_bundle", None)
    skip = bool(getattr(settings, "prometheus_insecure_skip_verify", False))
    if bundle and skip:
        raise ConfigError("give either --keptn-prometheus-ca-bundle or this, not both",
                          field="--keptn-prometheus-insecure-skip-verify")
    if skip:
        return False
    if not bundle:
        return True
    try:
        return ssl.create_default_context(cafile=str(bundle))
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"cannot read {bundle} as PEM certificates ({reason})",
                          field="--keptn-prometheus-ca-bundle") from None


