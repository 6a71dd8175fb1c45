"""Encrypted recordings: a fresh AES-256-GCM key per recording, agreed with the project's X25519 public key.

A recording holds production data. With a project key pair, the recorder makes a fresh ephemeral X25519
key per recording; its exchange with the project's public key, through HKDF-SHA256, gives the
recording's AES-256-GCM key (ECIES: the key is "wrapped" by the ephemeral public key that the file keeps).
Only the holder of the project's private key can derive it again. Every frame after a small readable
header is sealed on its own, with the frame's sequence number as its nonce, so frames stream out as they
are written, a reordered or spliced frame fails to open, and each nonce is used once per key.

Keys are text, one line each (``retrace keygen`` makes a pair)::

    retrace-public-key-1:<base64url of 32 bytes>
    retrace-private-key-1:<base64url of 32 bytes>

PEM (SubjectPublicKeyInfo / PKCS#8) forms of X25519 keys are read too. ``cryptography`` is imported only
when a recording is sealed or opened: plain recordings cost nothing.
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

from ..errors import RecordingError, RetraceError

SCHEME = "X25519-HKDF-SHA256-AES-256-GCM"
PUBLIC_PREFIX = "retrace-public-key-1:"
PRIVATE_PREFIX = "retrace-private-key-1:"
PUBLIC_ENV = "RETRACE_PUBLIC_KEY"  # the key text, or the path of a file holding it
PRIVATE_ENV = "RETRACE_PRIVATE_KEY"  # the key text, or the path of a file holding it
PRIVATE_FILE_ENV = "RETRACE_PRIVATE_KEY_FILE"
_INFO = b"pytest-retrace recording key 1"
_NONCE_BYTES = 12


class KeyProblem(RetraceError):
    """A key that cannot be used: malformed text, the wrong kind of key, or a file that cannot be read."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str, what: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raw = b""
    if len(raw) != 32:
        raise KeyProblem(f"{what} is not a pytest-retrace key (32 bytes of base64url expected after the prefix); "
                        "make a key pair with `retrace keygen`")
    return raw


def key_id(public_raw: bytes) -> str:
    """A short name of a public key: recordings say which key they are sealed for."""
    return hashlib.blake2b(public_raw, digest_size=8).hexdigest()


def _key_text(value: str, what: str) -> tuple[str, str]:
    """The key text of ``value`` (the text itself, or a file that holds it) and where it came from."""
    text = value.strip()
    if text and not text.startswith(("retrace-", "-----BEGIN")) and os.path.isfile(os.path.expanduser(text)):
        path = os.path.expanduser(text)
        try:
            with open(path, encoding="ascii") as f:
                return f.read().strip(), path
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyProblem(f"cannot read the {what} from {path}: {exc}") from None
    return text, what


def _pem_raw(text: str, source: str, private: bool) -> bytes:
    """The raw 32 bytes of an X25519 key in PEM (PKCS#8 for a private key, SubjectPublicKeyInfo for a public one)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

    what = "private" if private else "public"
    try:
        key = (serialization.load_pem_private_key(text.encode(), password=None) if private
               else serialization.load_pem_public_key(text.encode()))
    except (ValueError, TypeError) as exc:
        raise KeyProblem(f"{source}: not a readable PEM {what} key: {exc}") from None
    if isinstance(key, X25519PrivateKey) and private:
        return key.private_bytes_raw()
    if isinstance(key, X25519PublicKey) and not private:
        return key.public_bytes_raw()
    raise KeyProblem(f"{source}: a {type(key).__name__}, not an X25519 {what} key; use `retrace keygen`")


class PublicKey:
    """The project's public key: every recording is sealed for it."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.id = key_id(raw)

    @classmethod
    def parse(cls, value: str, what: str = "the public key") -> PublicKey:
        text, source = _key_text(value, what)
        if text.startswith(PUBLIC_PREFIX):
            return cls(_unb64(text[len(PUBLIC_PREFIX):], source))
        if text.startswith(PRIVATE_PREFIX):
            raise KeyProblem(f"{source} is a private key; recording needs only the public key "
                            f"({PUBLIC_PREFIX}…): keep the private one where replays run")
        if text.startswith("-----BEGIN PUBLIC KEY"):
            return cls(_pem_raw(text, source, private=False))
        raise KeyProblem(f"{source} is not a pytest-retrace public key (it starts with {PUBLIC_PREFIX!r}); "
                        "make a key pair with `retrace keygen`")

    def text(self) -> str:
        return PUBLIC_PREFIX + _b64(self.raw)


class PrivateKey:
    """A project's private key: opens the recordings sealed for its public key."""

    def __init__(self, raw: bytes) -> None:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        self.raw = raw
        self._key = X25519PrivateKey.from_private_bytes(raw)
        self.public = PublicKey(self._key.public_key().public_bytes_raw())

    @classmethod
    def generate(cls) -> PrivateKey:
        return cls(os.urandom(32))

    @classmethod
    def parse(cls, value: str, what: str = "the private key") -> PrivateKey:
        text, source = _key_text(value, what)
        if text.startswith(PRIVATE_PREFIX):
            return cls(_unb64(text[len(PRIVATE_PREFIX):], source))
        if text.startswith("-----BEGIN PRIVATE KEY"):
            return cls(_pem_raw(text, source, private=True))
        raise KeyProblem(f"{source} is not a pytest-retrace private key (it starts with {PRIVATE_PREFIX!r}); "
                        "make a key pair with `retrace keygen`")

    def text(self) -> str:
        return PRIVATE_PREFIX + _b64(self.raw)

    def agree(self, ephemeral: bytes) -> bytes:
        """The recording key of a recording whose ephemeral public key is ``ephemeral``."""
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

        shared = self._key.exchange(X25519PublicKey.from_public_bytes(ephemeral))
        return _derive(shared, ephemeral, self.public.raw)


def _derive(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=_INFO).derive(shared)


class Envelope:
    """What a sealed recording's readable header says of its key: the scheme, whose key, the ephemeral key."""

    __slots__ = ("recipient", "ephemeral")

    def __init__(self, recipient: str, ephemeral: bytes) -> None:
        self.recipient = recipient
        self.ephemeral = ephemeral

    def to_header(self) -> dict[str, Any]:
        return {"scheme": SCHEME, "recipient": self.recipient, "ephemeral": self.ephemeral}

    @classmethod
    def from_header(cls, data: Any, where: str) -> Envelope:
        if (not isinstance(data, dict) or data.get("scheme") != SCHEME or not isinstance(data.get("recipient"), str)
                or not isinstance(data.get("ephemeral"), bytes) or len(data["ephemeral"]) != 32):
            raise RecordingError(f"{where}: sealed with an unknown scheme or a damaged key envelope "
                                 f"(this pytest-retrace opens {SCHEME})")
        return cls(data["recipient"], data["ephemeral"])


class _Frames:
    """AES-256-GCM over frames numbered from ``count``: the number is the nonce, used once per key. The first
    sealed frame (the full header) also authenticates ``readable``, the readable header's payload: that header
    cannot be changed without the key either."""

    def __init__(self, key: bytes, count: int = 0) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.key = key
        self.count = count
        self.readable = b""
        self._aead = AESGCM(key)

    def _nonce(self, index: int) -> bytes:
        return index.to_bytes(_NONCE_BYTES, "big")

    def _associated(self, index: int) -> bytes | None:
        return self.readable if index == 0 else None


class Sealer(_Frames):
    """Seals the frames of one recording, in order."""

    def __init__(self, key: bytes, envelope: Envelope, count: int = 0, recipient: PublicKey | None = None) -> None:
        super().__init__(key, count)
        self.envelope = envelope
        self.recipient = recipient  # whose key: a forked process seals its own recording for it, afresh

    @classmethod
    def fresh(cls, recipient: PublicKey) -> Sealer:
        """A new recording: a new ephemeral key, so a new recording key."""
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

        ephemeral = X25519PrivateKey.generate()
        ephemeral_raw = ephemeral.public_key().public_bytes_raw()
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient.raw))
        return cls(_derive(shared, ephemeral_raw, recipient.raw), Envelope(recipient.id, ephemeral_raw),
                   recipient=recipient)

    def seal(self, payload: bytes) -> bytes:
        sealed = self._aead.encrypt(self._nonce(self.count), payload, self._associated(self.count))
        self.count += 1
        return sealed

    def to_json(self) -> dict[str, Any]:
        """What another process needs to go on sealing this recording (the launcher seals its child's END)."""
        data = {"key": self.key.hex(), "recipient": self.envelope.recipient, "ephemeral": self.envelope.ephemeral.hex()}
        if self.recipient is not None:
            data["public"] = self.recipient.raw.hex()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], count: int = 0) -> Sealer:
        public = PublicKey(bytes.fromhex(data["public"])) if data.get("public") else None
        return cls(bytes.fromhex(data["key"]), Envelope(data["recipient"], bytes.fromhex(data["ephemeral"])), count,
                   public)


class Opener(_Frames):
    """Opens the sealed frames of one recording."""

    def open(self, index: int, sealed: bytes) -> bytes | None:
        """The frame's payload; None when it does not open (damaged, reordered or from another recording)."""
        from cryptography.exceptions import InvalidTag

        try:
            return self._aead.decrypt(self._nonce(index), sealed, self._associated(index))  # type: ignore[no-any-return]
        except (InvalidTag, ValueError):
            return None


# -- where keys come from --------------------------------------------------------------------------------

_added: dict[str, PrivateKey] = {}
CHILD_KEYS_ENV = "_PYTEST_RETRACE_KEYS"  # keys handed to a replaying child (not the program: popped at start)
KEY_VARIABLES = frozenset({PRIVATE_ENV, PRIVATE_FILE_ENV, CHILD_KEYS_ENV})  # never recorded


def add_private_key(value: str, what: str = "the private key") -> PrivateKey:
    """Make a private key (its text or a file holding it) known to this process's readers."""
    key = PrivateKey.parse(value, what)
    _added[key.public.id] = key
    return key


def add_private_key_file(path: str) -> PrivateKey:
    """Make the private key in file ``path`` known to this process's readers."""
    if not os.path.isfile(os.path.expanduser(path)):
        raise KeyProblem(f"no key file {path}; give the file `retrace keygen -o FILE` wrote (FILE, not FILE.pub)")
    return add_private_key(os.path.expanduser(path), path)


def keys_for_child(env: dict[str, str]) -> None:
    """Hand the keys added here to a child process through ``env`` (it takes them with :func:`keys_from_parent`)."""
    texts = [key.text() for key in _added.values()] + [text for text, _, _ in _Environment.pending]
    if texts:
        env[CHILD_KEYS_ENV] = "\n".join(texts)


class _Environment:
    taken = False  # the keys of this process's environment were taken at its start (keys_from_parent)
    # Keys taken at the start, read when a sealed recording is first opened: making a key imports cryptography,
    # which a replayed program must not find in sys.modules when it never opens one. (text, where from, whether
    # a bad one is left out quietly)
    pending: list[tuple[str, str, bool]] = []


def _take_pending() -> None:
    while _Environment.pending:
        text, what, quiet = _Environment.pending.pop(0)
        try:
            add_private_key(text, what)
        except KeyProblem:
            if not quiet:
                raise


def keys_from_parent() -> None:
    """Take the keys a parent handed over, and those of ``$RETRACE_PRIVATE_KEY`` / ``$RETRACE_PRIVATE_KEY_FILE``
    (a file named relative to where the parent ran), out of the environment the program will see: a replay
    restores the recorded environment, which holds a placeholder there."""
    handed = os.environ.pop(CHILD_KEYS_ENV, "")
    _Environment.pending += [(line, "a key handed to the replay", False) for line in handed.splitlines()]
    for name in (PRIVATE_ENV, PRIVATE_FILE_ENV):
        value = os.environ.pop(name, None)
        if value:
            try:  # a file is read now, where the parent ran: the program may change folders
                text, _ = _key_text(value, f"${name}")
            except KeyProblem:
                continue  # the parent said so already, or will when the key is needed
            _Environment.pending.append((text, f"${name}", True))  # the parent said so already, if it is bad
    _Environment.taken = True


def private_keys() -> dict[str, PrivateKey]:
    """The private keys this process may open recordings with, by their public key's id: those added, and
    ``$RETRACE_PRIVATE_KEY`` / ``$RETRACE_PRIVATE_KEY_FILE``."""
    _take_pending()
    keys = dict(_added)
    for name in () if _Environment.taken else (PRIVATE_ENV, PRIVATE_FILE_ENV):
        value = os.environ.get(name)
        if value:
            key = PrivateKey.parse(value, f"${name}")
            keys.setdefault(key.public.id, key)
    return keys


class KeyNeeded(RecordingError):
    """A sealed recording, and no key here opens it."""


def opener_for(envelope: Envelope, where: str) -> Opener:
    """The opener of a recording sealed as ``envelope`` says; :class:`KeyNeeded` when no key here opens it."""
    return Opener(key_for(envelope, where).agree(envelope.ephemeral))


def key_for(envelope: Envelope, where: str) -> PrivateKey:
    """The private key here that opens a recording sealed as ``envelope`` says; :class:`KeyNeeded` if none."""
    key = private_keys().get(envelope.recipient)
    if key is None:
        raise KeyNeeded(
            f"{where}: needs the recording key: it is encrypted for the project key {envelope.recipient}; "
            f"set ${PRIVATE_ENV} to that private key (or to a file holding it), or pass it with --retrace-key-file "
            "(pytest) / --key-file (retrace)"
        )
    return key


def public_key_from(value: str | None) -> PublicKey | None:
    """The public key recordings are sealed for: ``value`` (text or a file), else ``$RETRACE_PUBLIC_KEY``."""
    if value:
        return PublicKey.parse(value)
    env = os.environ.get(PUBLIC_ENV)
    return PublicKey.parse(env, f"${PUBLIC_ENV}") if env else None
