"""What a secret looks like, and how a recording holds one: :class:`Redaction`, the one policy.

A secret is found by its **name** (an environment variable, a header, a form field, a JSON key, a query
parameter, a keyword argument, a ``--flag`` of the program) or by the shape of its **value** (URL userinfo,
a DSN's ``password=``, ``Bearer …``, ``Basic …``, AWS access key ids, PEM private keys, JWTs, well-known
token prefixes). It is replaced by :data:`PLACEHOLDER`; a value with a shape keeps its shape, only the
secret part is replaced (``postgresql://u:REDACTED-by-pytest-retrace@db/app``).

Name patterns are regular expressions searched in the *normalized* name: lower case, camelCase split,
every run of other characters one ``_``, with ``_`` at both ends (``X-Api-Key`` → ``_x_api_key_``,
``stripeKey`` → ``_stripe_key_``), so ``_keys?_`` finds the word "key" but not "keyboard".

Redacting is idempotent and applied the same way on both sides of a boundary: the recording side redacts
what it writes, the replay side redacts what the program does now with the policy read from the header,
so call keys compare equal whether the program uses a real secret or the placeholder it was given.
``replace_secrets=False`` (an encrypted recording) redacts nothing: the secrets travel inside the encryption.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote_plus

from .record import Record

# One fixed string, safe wherever a secret was (URLs, headers, cookies, DSNs, JSON): no spaces, no quoting needed.
PLACEHOLDER = "REDACTED-by-pytest-retrace"
_P = re.escape(PLACEHOLDER)

# Learned from Sentry's and Django's sensitive-name filters; see the module's documentation for the form.
DEFAULT_NAMES: tuple[str, ...] = (
    "passw", "_pass_", "(?<!by|om|ur)pass_", "passphrase", "_pwd_",  # PWD, the working folder, is kept (see value())
    "secret", "token", "_auth(?!or(s|ed|ship)?_)", "oauth", "credential", "signature", "_sig_",
    "private", "cookie", "session", "csrf", "xsrf", "dsn", "_keys?_", "apikey", "accesskey", "jwt", "_pw_",
    "_creds?_", "_pat_",
)


def _basic(match: re.Match[str]) -> str:
    """``Basic`` credentials only when they decode to ``user:password`` ("Basic plan" stays)."""
    try:
        decoded = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        return match.group(0)
    return f"{match.group(1)} {PLACEHOLDER}" if b":" in decoded else match.group(0)


# name → (pattern, replacement): each replacement leaves what its pattern matches again unchanged.
VALUE_PATTERNS: dict[str, tuple[re.Pattern[str], Any]] = {
    # Each part bounded, so that no start of a match scans the whole value: linear time on any input.
    "url-password": (re.compile(rf"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]{{0,31}}://[^\s/:@]{{0,256}}:)"
                                rf"(?:{_P}|[^\s/@]{{1,256}})@"), rf"\1{PLACEHOLDER}@"),
    "dsn-password": (re.compile(rf"(?i)\b((?:password|pwd)\s*=\s*)(?:{_P}|'(?:[^'\\]|\\.)*'|[^\s;&'\"]+)"),
                     rf"\1{PLACEHOLDER}"),
    "bearer": (re.compile(rf"\b((?i:bearer))\s+(?:{_P}|[A-Za-z0-9._~+/-]{{8,}}=*)"), rf"\1 {PLACEHOLDER}"),
    "basic": (re.compile(r"\b((?i:basic))\s+([A-Za-z0-9+/]{4,}={0,2})"), _basic),
    "aws-key": (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), PLACEHOLDER),
    "private-key": (re.compile(r"-----BEGIN[A-Z ]* PRIVATE KEY-----.*?(?:-----END[A-Z ]* PRIVATE KEY-----|\Z)",
                               re.DOTALL), PLACEHOLDER),
    "jwt": (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), PLACEHOLDER),
    "known-token": (re.compile(r"\b(?:(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}|gh[pousr]_[A-Za-z0-9]{20,}"
                               r"|xox[abprs]-[A-Za-z0-9-]{10,}|glpat-[A-Za-z0-9_-]{20,}"
                               r"|github_pat_[A-Za-z0-9_]{20,})"), PLACEHOLDER),
}

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_OTHER = re.compile(r"[^a-z0-9]+")
# A payload on the socket layer that is HTTP: a request line, or a status line.
_REQUEST_LINE = re.compile(rb"[A-Z]{3,10} \S+ HTTP/1\.[01]\r\n")
_COOKIE_HEADERS = frozenset({"cookie", "set-cookie", "set-cookie2"})


def _normalize(name: str) -> str:
    return "_" + _OTHER.sub("_", _CAMEL.sub("_", name).lower()).strip("_") + "_"


@functools.lru_cache(maxsize=4096)  # the same names come back request after request
def normalized(name: str) -> str:
    """A name as name patterns see it: ``X-Api-Key`` → ``_x_api_key_``."""
    return _normalize(name)


@functools.lru_cache(maxsize=32)
def _names_regex(names: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(f"(?:{n})" for n in names)) if names else None


_MAX_PATTERNS = 200
_MIN_KNOWN = 8
_MIN_CARRIED = 6  # a request's secret-named fields: passwords are often short


# A name pattern of one's own: words of a normalized name, ``|`` between alternatives. No repetition, so no
# pattern can make matching a name take long (a recording's header holds its patterns: untrusted input).
_PLAIN_PATTERN = re.compile(r"[a-z0-9_]{1,64}(\|[a-z0-9_]{1,64}){0,15}")


@functools.lru_cache(maxsize=8192)  # the same names come back request after request
def _name_matches(names: tuple[str, ...], name: str) -> bool:
    compiled = _names_regex(names)
    return compiled is not None and compiled.search(_normalize(name)) is not None


# Substrings (of the lower-cased text) without one of which no default name pattern matches anything in it.
_NAME_CLUES = re.compile("pass|pwd|secret|token|auth|cred|sig|priv|cookie|session|csrf|xsrf|dsn|key|jwt|pw|pat")


def _usable(pattern: Any) -> bool:
    """A name pattern a replay may take from a recording: one of the defaults, or a plain one."""
    return isinstance(pattern, str) and (pattern in DEFAULT_NAMES or _PLAIN_PATTERN.fullmatch(pattern) is not None)


_URL = re.compile(r"(?i)([a-z][a-z0-9+.-]*://)(?:([^\s/@]*)@)?([^\s/?#@]*)(\S*)")
_DATABASE_SCHEMES = ("postgres", "mysql", "mariadb", "redis", "rediss", "amqp", "mongodb", "sqlite", "mssql", "oracle")
_KEY_VALUES = re.compile(r"\s*\w+\s*=\s*(?:'(?:[^'\\]|\\.)*'|\S+)(?:\s+\w+\s*=\s*(?:'(?:[^'\\]|\\.)*'|\S+))*\s*")


def _shaped(value: str) -> str | None:
    """A secret-named value that a program parses, with the secret parts of its shape replaced: a URL's userinfo
    (its password; a user alone, as a Sentry DSN's key, is the secret), a database URL, a ``key=value`` DSN
    (its ``password=``, by the value patterns). None: no such shape, the whole value is the secret."""
    url = _URL.fullmatch(value)
    if url is not None:
        scheme, userinfo, host, rest = url.groups()
        if userinfo is not None:
            user, colon, _ = userinfo.partition(":")
            return f"{scheme}{user}:{PLACEHOLDER}@{host}{rest}" if colon else f"{scheme}{PLACEHOLDER}@{host}{rest}"
        return value if scheme.lower().split("+")[0].rstrip(":/").startswith(_DATABASE_SCHEMES) else None
    return value if _KEY_VALUES.fullmatch(value) else None


def _replaced_parts(original: str, redacted: str) -> list[str]:
    """The parts of ``original`` that the placeholders in ``redacted`` stand for (none if they do not line up)."""
    kept = redacted.split(PLACEHOLDER)
    if len(kept) > 16:  # a value with that many secrets in it: its parts are not worth the match
        return []
    match = re.fullmatch("(.+?)".join(re.escape(part) for part in kept), original, re.DOTALL)
    return list(match.groups()) if match else []


class Redaction(Record):
    """The redaction policy of a recording: name patterns, the value patterns in use (names of
    :data:`VALUE_PATTERNS`), and whether secrets are replaced at all."""

    __slots__ = ("names", "values", "replace_secrets", "known")

    def __init__(self, names: tuple[str, ...] = DEFAULT_NAMES, values: tuple[str, ...] = tuple(VALUE_PATTERNS),
                 replace_secrets: bool = True, known: tuple[str, ...] = ()) -> None:
        self.names = tuple(names)
        self.values = tuple(values)
        self.replace_secrets = replace_secrets
        # Recording only, never written: values redacted by name at the start (an API_TOKEN's value), replaced
        # wherever they show up later (a DSN passed whole, a token in a URL path), as the replay, which holds
        # the placeholder there, sends it.
        self.known = tuple(known)

    def knowing(self, before: list[str], after: list[str]) -> Redaction:
        """This policy, also replacing the values that redacting ``before`` (into ``after``, item by item)
        replaced, whole or in part (a DSN's user, a URL's token): the replay holds the placeholder there, and what
        it passes on (a driver's ``user`` argument) must key as the recording did. Short ones (a
        ``XDG_SESSION_TYPE=tty``) would show up by chance, and are left."""
        found: set[str] = set()
        for original, redacted in zip(before, after, strict=True):
            if redacted != original and PLACEHOLDER in redacted:
                found.update(_replaced_parts(original, redacted))
        return self.also_known(v for v in found if len(v) >= _MIN_KNOWN and PLACEHOLDER not in v)

    def also_known(self, values: Iterable[str]) -> Redaction:
        """This policy, also replacing ``values`` wherever they show up (the longest first)."""
        new = set(values) - set(self.known)
        return self.replace(known=tuple(sorted({*self.known, *new}, key=len, reverse=True))) if new else self

    def carried_by_request(self, environ: Mapping[str, Any], body: bytes) -> Redaction:
        """This policy, also replacing wherever they show up later the secrets an inbound request carries
        (secret-named headers, cookies, query and form fields, JSON keys), as its recording holds them
        redacted: a password the app checks against its database is keyed redacted there too, as the replay,
        which gets the placeholder, passes it on. Only values of some length: short ones show up by chance."""
        if not self.replace_secrets:
            return self
        found: list[str] = []
        for key, value in environ.items():
            if not isinstance(value, str):
                continue
            if key.startswith("HTTP_"):
                name = key[5:].replace("_", "-").lower()
                if name in _COOKIE_HEADERS:
                    found += [pair.partition("=")[2].strip() for pair in value.split(";")]
                elif self.matches(name):
                    found += [value, *value.split(None, 1)[1:]]  # "Bearer X": X too
            elif key == "QUERY_STRING":
                found += [v for k, v in parse_qsl(value, keep_blank_values=True) if self.matches(k)]
        kind = str(environ.get("CONTENT_TYPE") or "").lower()
        if body and "x-www-form-urlencoded" in kind:
            found += [v for k, v in parse_qsl(body.decode("latin-1"), keep_blank_values=True) if self.matches(k)]
        elif body and "json" in kind:
            try:
                found += self._secret_strings(json.loads(body))
            except ValueError:
                pass
        return self.also_known(v for v in found if len(v) >= _MIN_CARRIED and PLACEHOLDER not in v)

    def _secret_strings(self, value: Any, secret: bool = False) -> list[str]:
        """The strings (and numbers, as text) under secret-named keys of a JSON value."""
        found: list[str] = []
        pending = [(value, secret)]
        while pending:
            current, under_secret = pending.pop()
            if isinstance(current, dict):
                pending += [(v, under_secret or (isinstance(k, str) and self.matches(k))) for k, v in current.items()]
            elif isinstance(current, list):
                pending += [(v, under_secret) for v in current]
            elif under_secret and isinstance(current, (str, int, float)) and not isinstance(current, bool):
                found.append(str(current))
        return found

    def to_json(self) -> dict[str, Any]:
        return {"names": list(self.names), "values": list(self.values), "replace_secrets": self.replace_secrets}

    @classmethod
    def configured(cls, add: tuple[str, ...] | list[str] = (), remove: tuple[str, ...] | list[str] = (),
                   replace_secrets: bool = True) -> Redaction:
        """The default policy with name patterns added (regular expressions, see :func:`normalized`) and
        default name or value patterns removed (by their text or name). A ValueError says what is wrong."""
        add = [pattern.lower() for pattern in add]
        for pattern in add:
            if not _usable(pattern):
                raise ValueError(f"redaction pattern {pattern!r} is not words of a name (letters, digits and _, "
                                 "alternatives separated by |, searched in the name as `_x_api_key_`)")
        unknown = [p for p in remove if p not in DEFAULT_NAMES and p not in VALUE_PATTERNS]
        if unknown:
            raise ValueError(f"cannot remove redaction pattern {unknown[0]!r}: it is none of the defaults "
                             f"(names: {', '.join(DEFAULT_NAMES)}; values: {', '.join(VALUE_PATTERNS)})")
        names = tuple(n for n in DEFAULT_NAMES if n not in remove) + tuple(p for p in add if p not in DEFAULT_NAMES)
        values = tuple(v for v in VALUE_PATTERNS if v not in remove)
        return cls(names, values, replace_secrets)

    @classmethod
    def of(cls, redact: Redaction | str | list[str] | tuple[str, ...] | None) -> Redaction:
        """A ``redact=`` argument as a policy: None (the default), a policy, or name patterns to add."""
        if redact is None:
            return DEFAULT
        if isinstance(redact, Redaction):
            return redact
        return cls.configured(add=(redact,) if isinstance(redact, str) else tuple(redact))

    # -- the header ------------------------------------------------------------------------------------

    def to_header(self, redacted: list[str]) -> dict[str, Any]:
        """What the header holds: the policy, and the names whose values were redacted (never values)."""
        return {**self.to_json(), "redacted": redacted}

    @classmethod
    def from_header(cls, header: Mapping[str, Any]) -> Redaction:
        """The policy a recording was made with (replay applies the same). A recording from before policies
        held one name pattern (``pattern``) and redacted nothing else."""
        held = header.get("redaction")
        if not isinstance(held, Mapping):
            return cls((), (), True)
        if "names" not in held:  # made before policies: only its environment was redacted, in the snapshot
            return cls((), (), True)
        names = held.get("names")
        values = held.get("values")
        # A recording is untrusted input: only the defaults and plain patterns, of a bounded number, are used.
        return cls(tuple(n for n in names[:_MAX_PATTERNS] if _usable(n)) if isinstance(names, list) else (),
                   tuple(v for v in values if isinstance(v, str) and v in VALUE_PATTERNS)
                   if isinstance(values, list) else (),
                   held.get("replace_secrets") is not False)

    # -- what is a secret ------------------------------------------------------------------------------

    def matches(self, name: str) -> bool:
        """Whether a value under ``name`` is a secret."""
        return self.replace_secrets and _name_matches(self.names, name)

    def text(self, value: str) -> str:
        """``value`` with the secret parts of the value patterns in use replaced."""
        if not self.replace_secrets or not value:
            return value
        for secret in self.known:
            if secret in value:
                value = value.replace(secret, PLACEHOLDER)
        lowered = value.lower()
        if _ANY_CLUE.search(lowered) is None:  # most values: no pattern can match
            return value
        for name in self.values:
            if not any(clue in lowered for clue in _CLUES[name]):
                continue
            pattern, replacement = VALUE_PATTERNS[name]
            value = pattern.sub(replacement, value)
        return value

    def value(self, name: str, value: str) -> str:
        """A value under ``name``: a secret-named one is the placeholder, unless it has a shape a program parses
        (a URL, a ``key=value`` DSN), which it keeps with only its secret parts replaced."""
        if not self.matches(name):
            return self.text(value)
        shaped = _shaped(value)
        return PLACEHOLDER if shaped is None else self.text(shaped)

    # -- where secrets travel --------------------------------------------------------------------------

    def environ(self, environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
        """An environment snapshot, and the names of the variables whose values changed."""
        if not self.replace_secrets:
            return dict(environ), []
        redacted = {name: value if name == "PWD" else self.value(name, value)  # PWD: the working folder
                    for name, value in environ.items()}
        return redacted, sorted(n for n, v in redacted.items() if v != environ[n])

    def argv(self, argv: list[str]) -> tuple[list[str], list[str]]:
        """Program arguments: ``--password=…`` and ``--token X`` (a secret-named option and its value), and
        values of a secret's shape anywhere. Also the names of the options whose values were replaced."""
        if not self.replace_secrets:
            return list(argv), []
        out: list[str] = []
        names: list[str] = []
        secret_next = False
        for arg in argv:
            if secret_next and not arg.startswith("-"):
                out.append(PLACEHOLDER)
                secret_next = False
                continue
            secret_next = False
            if arg.startswith("-") and len(arg) > 1 and arg != "--":
                flag, eq, rest = arg.partition("=")
                if self.matches(flag):
                    names.append(flag)
                    if eq:
                        out.append(f"{flag}={PLACEHOLDER}")
                        continue
                    secret_next = True
            out.append(self.text(arg))
        return out, names

    def query(self, query: str) -> str:
        """A query string or urlencoded form: secret-named values replaced, secret-shaped parts of the others.
        Parts without a secret stay byte for byte; parts with the placeholder take one canonical quoting."""
        if not self.replace_secrets or not query:
            return query
        parts = []
        for part in query.split("&"):
            raw_name, eq, raw_value = part.partition("=")
            name = unquote_plus(raw_name)
            if eq and self.matches(name):
                parts.append(f"{raw_name}={quote(PLACEHOLDER, safe='')}")
                continue
            value = self.text(unquote_plus(raw_value))
            parts.append(f"{raw_name}={quote(value, safe='')}" if eq and PLACEHOLDER in value else part)
        return "&".join(parts)

    def url(self, url: str) -> str:
        """A URL: userinfo password and query parameters."""
        if not self.replace_secrets:
            return url
        url = self.text(url)
        base, hashmark, fragment = url.partition("#")
        path, question, query = base.partition("?")
        return f"{path}{question}{self.query(query)}{hashmark}{fragment}"

    def header(self, name: str, value: str) -> str:
        """An HTTP header's value: cookies keep their names, other secret-named headers become the placeholder."""
        if not self.matches(name):
            return self.text(value)
        if name.lower() in _COOKIE_HEADERS:
            return self.cookie(value, set_cookie=name.lower() != "cookie")
        return PLACEHOLDER

    def cookie(self, value: str, set_cookie: bool) -> str:
        """``a=1; b=2`` → each value replaced; a Set-Cookie's attributes (``Path=/``, ``Expires=…``) stay."""
        pairs = value.split(";")
        for i, pair in enumerate(pairs):
            if set_cookie and i > 0:
                break
            name, eq, _ = pair.partition("=")
            pairs[i] = f"{name}={PLACEHOLDER}" if eq else pair
        return ";".join(pairs)

    def headers(self, headers: list[list[str]]) -> list[list[str]]:
        if not self.replace_secrets:
            return headers
        return [[name, self.header(name, value)] for name, value in headers]

    def data(self, value: Any, secret: bool = False) -> Any:
        """A structure of plain values (JSON, a call's arguments): every scalar under a secret-named key (or in
        a list under one) replaced; strings elsewhere by their shape. Booleans and None stay."""
        if not self.replace_secrets:
            return value
        if isinstance(value, dict):
            return {k: self.data(v, secret or (isinstance(k, str) and self.matches(k))) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            items = [self.data(v, secret) for v in value]
            return items if isinstance(value, list) else tuple(items)
        if isinstance(value, bool) or value is None:
            return value
        if secret and isinstance(value, (str, bytes, int, float)):
            return PLACEHOLDER
        return self.text(value) if isinstance(value, str) else value

    def body(self, body: Any, content_type: str | None) -> Any:
        """A request or response body (bytes or str): JSON by keys, urlencoded forms by field names, anything
        else by the shape of its text. Unchanged (the same object) when nothing in it is a secret."""
        if not self.replace_secrets or not body or not isinstance(body, (bytes, str)):
            return body
        text = body.decode("latin-1") if isinstance(body, bytes) else body
        kind = (content_type or "").lower()
        redacted = text
        if "json" in kind or (not kind and text[:1] in "{["):
            redacted = self._json(text)
        elif "x-www-form-urlencoded" in kind:
            redacted = self.query(text)
        else:
            redacted = self.text(text)
        if redacted == text:
            return body
        return redacted.encode("latin-1", "replace") if isinstance(body, bytes) else redacted

    def _json(self, text: str) -> str:
        try:
            # latin-1 in, so a UTF-8 body's bytes pass through json as they came (re-encoded the same way)
            parsed = json.loads(text)
        except ValueError:
            return self.text(text)
        redacted = self.data(parsed)
        if redacted == parsed and PLACEHOLDER not in text:
            return text
        return json.dumps(redacted, ensure_ascii=False)

    def fragment(self, text: str) -> str:
        """A piece of a body that may not parse (a preview cut short): every ``"key": value`` or ``key=value``
        pair under a secret name has its value replaced, then strings by their shape."""
        if not self.replace_secrets:
            return text
        names = _names_regex(self.names)
        if names is None or (  # no secret name anywhere in it: no pair to look at
                _NAME_CLUES.search(text.lower()) is None if self.names == DEFAULT_NAMES
                else names.search(_normalize(text)) is None):
            return self.text(text)

        def pair(match: re.Match[str]) -> str:
            value = match.group("value")
            quote = value[0] if value[:1] in "\"'" else ""
            prefix = match.group(0)[: match.start("value") - match.start()]
            if self.matches(match.group("key")):
                return f"{prefix}{quote}{PLACEHOLDER}{quote}"
            if quote and len(value) > 2:  # a string may hold pairs of its own ('msg': 'token=…')
                closed = value.endswith(quote) and len(value) > 1
                inner = value[1:-1] if closed else value[1:]
                return f"{prefix}{quote}{_PAIR.sub(pair, inner)}{quote if closed else ''}"
            return match.group(0)

        return self.text(_PAIR.sub(pair, text))

    def http_head(self, data: bytes) -> bytes:
        """A socket payload: when it starts an HTTP request or response, its request target and header lines
        redacted (the body, which may follow, is not looked at). Other payloads come back as they are."""
        if not self.replace_secrets or not (data.startswith(b"HTTP/1.") or _REQUEST_LINE.match(data)):
            return data
        head, blank, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        first = lines[0].split(" ")
        if not data.startswith(b"HTTP/1.") and len(first) == 3:
            first[1] = self.url(first[1])
        out = [" ".join(first)]
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            out.append(f"{name}: {self.header(name.strip(), value.strip())}" if colon else line)
        redacted = "\r\n".join(out).encode("latin-1", "replace")
        return data if redacted == head else redacted + blank + rest


# What each value pattern cannot match without (lower case): a value holding none of them is passed by.
_CLUES: dict[str, tuple[str, ...]] = {
    "url-password": ("://",), "dsn-password": ("password", "pwd"), "bearer": ("bearer",), "basic": ("basic",),
    "aws-key": ("akia", "asia"), "private-key": ("private key",), "jwt": ("eyj",),
    "known-token": ("sk_", "rk_", "gh", "xox", "glpat-", "github_pat_"),
}

_ANY_CLUE = re.compile("|".join(re.escape(clue) for clues in _CLUES.values() for clue in clues))

# "key": "value", 'key': 1, key=value (JSON, Python reprs, forms); a value cut short at the end is still one.
# A value that opens a dict or list is not taken whole: the pairs inside are looked at.
_PAIR = re.compile(r"""(?P<q>["']?)(?P<key>[A-Za-z0-9_.-]{1,64})(?P=q)\s*[:=]\s*"""
                   r"""(?P<value>"(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|[^\s,&;{}\[\]]+)""")

DEFAULT = Redaction()
