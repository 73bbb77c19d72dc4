"""One way to hide secrets in URLs, used for everything dqn-sweep prints or stores (tags, study attributes, errors).

Passwords are typed raw as often as percent-encoded, and a raw one may hold anything: `/`, `'`, a space, a tab, `@`.
Cutting a URL at whitespace or quotes, or parsing it as SQLAlchemy does (the password ends at its *first* `@`),
showed such passwords, or their part after the first `@` (which SQLAlchemy then takes for the host, and the driver
prints in its error). So a URL's password is read as everything between `user:` and the *last* `@` before the
next URL in the text: whatever the password holds, all of it is masked (at worst a little more). Secret query values
(`?password=...`, `?sslpassword=...`, which libpq and SQLAlchemy both accept) are masked too, and each secret is also
removed, raw, decoded or re-encoded, from the rest of the text (a driver may echo it, or a piece of it).
"""

from __future__ import annotations

import re
from urllib.parse import quote, quote_plus, unquote

MASK = "***"
SECRET_QUERY_KEYS = frozenset(
    {"password", "passwd", "pwd", "sslpassword", "secret", "token", "access_token", "api_key", "apikey", "sslkey"}
)
MIN_SECRET = 3  # shorter pieces are not masked elsewhere in the text: a one-letter one would mangle every word
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_USER = re.compile(r"[^:/@\s?#]*:")  # `user:` right after `scheme://`: a password follows, up to an `@`
_TOKEN = re.compile(r"[^\s'\"<>]*")  # a URL without a password ends at whitespace or a quote
_HOST = re.compile(r"[^\s/:?#'\"<>]*")
_TAIL = re.compile(r"[^\s'\"<>]*$")
_QUERY_PAIR = re.compile(r"([?&])([^=&]+)=([^&]*)")
_DELIMITERS = re.compile(r"[@/?#:\s]+")  # where a driver that misreads a raw password cuts it into pieces


def redact(text: str) -> str:
    """`text` with the password and secret query values of every URL in it replaced by `***`."""
    if "://" not in text:
        return text
    starts = [m.start() for m in _SCHEME.finditer(text)]
    if not starts:
        return text
    pieces: list[tuple[str, bool]] = [(text[: starts[0]], False)]  # (text, is a URL already masked)
    elsewhere: dict[str, str] = {}
    for start, end in zip(starts, [*starts[1:], len(text)], strict=True):
        url, after, found = _redact_region(text[start:end])
        pieces += [(url, True), (after, False)]
        elsewhere.update(found)
    order = sorted(elsewhere, key=len, reverse=True)
    out = []
    for piece, masked in pieces:
        if not masked:
            for secret in order:
                piece = piece.replace(secret, elsewhere[secret])
        out.append(piece)
    return "".join(out)


def url_secrets(url: str) -> set[str]:
    """The secrets `redact` hides in one URL, in every form it masks as `***` (tests grep stores and outputs for
    them)."""
    if "://" not in url:
        return set()
    return {secret for secret, shown in _redact_region(url)[2].items() if shown == MASK}


def _redact_region(region: str) -> tuple[str, str, dict[str, str]]:
    """One URL and the text after it up to the next URL: (the URL masked, the text after it, {secret: mask})."""
    head_end = region.index("://") + 3
    head, body = region[:head_end], region[head_end:]
    found: dict[str, str] = {}
    user = _USER.match(body)
    at = _password_end(body, user.end()) if user is not None else None
    if user is not None and at is not None:
        password, rest = body[user.end() : at], body[at + 1 :]
        found.update(_password_forms(password, _HOST.match(rest).group(0)))  # type: ignore[union-attr]
        head += body[: user.end()] + (MASK if password else "") + "@"
    else:
        rest = body
    token = _TOKEN.match(rest).group(0)  # type: ignore[union-attr]
    core = token.rstrip(".,:;)]}")  # punctuation of the sentence around the URL, not part of it
    shown, query_secrets = _mask_query(core)
    found.update(query_secrets)
    return head + shown, rest[len(core) :], found


def _password_end(body: str, start: int) -> int | None:
    """Where the password that starts at `body[start]` ends: the last `@` (a raw password may hold `@`; the host
    follows the last one), except an `@` in a driver's echo after the URL: a repeat, raw or decoded, of text
    before it (`'ss@Secr3t@db-host'` after a raw `p@ss@Secr3t@db-host`, `p@ss` after `p%40ss@db-host`)."""
    for at in reversed([i for i in range(start, len(body)) if body[i] == "@"]):
        host = _HOST.match(body, at + 1).group(0)  # type: ignore[union-attr]
        tail = _TAIL.search(body, 0, at).group(0)  # type: ignore[union-attr]
        before = body[start : at - len(tail)]
        echo = f"{tail}@{host}"
        if tail and host and (echo in before or echo in unquote(before)):
            continue
        return at
    return None


def _mask_query(url: str) -> tuple[str, dict[str, str]]:
    """The URL with the values of secret query keys masked, and those values in their forms."""
    if "?" not in url:
        return url, {}
    base, query = url.split("?", 1)
    found: dict[str, str] = {}

    def mask(match: re.Match[str]) -> str:
        sep, key, value = match.groups()
        if unquote(key).lower() not in SECRET_QUERY_KEYS or not value:
            return match.group(0)
        found.update(_forms(value))
        return f"{sep}{key}={MASK}"

    return base + _QUERY_PAIR.sub(mask, "?" + query), found


def _password_forms(password: str, host: str) -> dict[str, str]:
    """A password as typed, decoded and re-encoded, its pieces between URL delimiters (what a driver that ends
    the password at its first `@` echoes as a host or database name), and `tail@host` for each tail after an `@`
    (such an echo, whatever the tail's length), each with what replaces it."""
    if not password:
        return {}
    found = _forms(password)
    for text in (password, unquote(password)):
        for piece in _DELIMITERS.split(text):
            if len(piece) >= MIN_SECRET:
                found[piece] = MASK
        for index, char in enumerate(text):
            if char == "@" and host:
                found[f"{text[index + 1 :]}@{host}"] = f"{MASK}@{host}"
    return found


def _forms(raw: str) -> dict[str, str]:
    """A secret as typed in a URL, decoded (what the driver receives), and encoded as SQLAlchemy, urllib and a
    libpq connection string (quotes escaped) write it."""
    plain = unquote(raw)
    forms = {
        raw,
        plain,
        quote(plain, safe=""),
        quote(plain, safe=" +"),
        quote_plus(plain),
        plain.replace("\\", "\\\\").replace("'", "\\'"),
    }
    return {form: MASK for form in forms if len(form) >= MIN_SECRET}
