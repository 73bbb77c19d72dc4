"""One way to hide secrets in URLs, used for everything dqn-sweep prints or stores (tags, study attributes, errors).

A regex over `user:secret@` missed passwords containing `/` and passwords passed in the query (`?password=...`,
`?sslpassword=...`), which libpq and SQLAlchemy both accept. So every URL found in a text is parsed (SQLAlchemy's
`make_url`, which also reads `http://` and `journal:`-less URLs), its password and secret query values masked,
and each secret found is also removed wherever else it appears in the same text (a driver may echo it).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlsplit

MASK = "***"
SECRET_QUERY_KEYS = frozenset(
    {"password", "passwd", "pwd", "sslpassword", "secret", "token", "access_token", "api_key", "apikey", "sslkey"}
)
# scheme://... up to whitespace or a quote; `@` and `/` inside the password are kept so the parser sees them.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")


def redact(text: str) -> str:
    """`text` with the password and secret query values of every URL in it replaced by `***`."""
    if "://" not in text:
        return text
    secrets: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        url = match.group(0)
        core = url.rstrip(".,:;)]}")  # punctuation of the sentence around the URL, not part of it
        shown, found = _redact_url(core)
        secrets.update(found)
        return shown + url[len(core) :]

    out = _URL.sub(replace, text)
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 3:  # a one-letter password would mangle the whole message
            out = out.replace(secret, MASK)
    return out


def url_secrets(url: str) -> set[str]:
    """The secrets `redact` hides in one URL (tests grep stores and outputs for them)."""
    return _redact_url(url)[1]


def _redact_url(url: str) -> tuple[str, set[str]]:
    secrets: set[str] = set()
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception:
        parsed = None
    if parsed is not None:
        if parsed.password:
            secrets.add(str(parsed.password))
        query = {}
        for key, value in parsed.query.items():
            if key.lower() in SECRET_QUERY_KEYS:
                secrets.update([value] if isinstance(value, str) else value)
                query[key] = MASK
            else:
                query[key] = value
        if not secrets:  # nothing to hide: keep the text exactly as written
            return url, secrets
        shown = parsed.set(query=query).render_as_string(hide_password=True)
        return shown.replace("%2A%2A%2A", MASK), secrets | {quote(s, safe="") for s in secrets}
    # Not an SQLAlchemy URL (no host part, say): fall back to the generic parts.
    parts = urlsplit(url)
    if parts.password:
        secrets.add(parts.password)
    secrets.update(v for k, v in parse_qsl(parts.query) if k.lower() in SECRET_QUERY_KEYS and v)
    shown = url
    for secret in secrets:
        shown = shown.replace(secret, MASK)
    return shown, secrets
