"""Signing and encryption of what a queue stores: every task's call and every result, bound to its task.

A queue, a worker or a client given a signing key puts an HMAC-SHA256 in front of each blob it stores,
computed over the blob and what it is: the task's id, whether it is the call or the result, and the name of
the serializer that wrote it. A blob copied from another task or column, or relabelled with another
serializer, then fails to verify. Verification comes before any deserializer sees a byte, so whoever can
write the store but lacks the key cannot make a worker or a client decode their bytes. An encryption key
adds AES-256-GCM (from `cryptography`), bound to the same things. Backends store the sealed bytes as they
store any payload: this works the same on every backend.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from sitq.errors import ConfigurationError, SerializationError, SignatureError, ValidationError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SIGNING_KEY_ENV: Final = "SITQ_SIGNING_KEY"
ENCRYPTION_KEY_ENV: Final = "SITQ_ENCRYPTION_KEY"
MIN_KEY_BYTES: Final = 16

Key = str | bytes
Keys = Key | Sequence[Key]
"""One key, or several for rotation: the first seals, every one opens."""

_SEALED: Final = b"\x00sitq:"
"""What every sealed blob starts with, and no serializer's output does."""
_SIGNED: Final = _SEALED + b"hmac-sha256\x00"
_ENCRYPTED: Final = _SEALED + b"aes-256-gcm\x00"
_MAC_BYTES: Final = 32
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16
_KEY_HINT: Final = "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


class Part(StrEnum):
    """Which of a task's stored blobs is sealed: a key for one never opens the other."""

    CALL = "call"
    RESULT = "result"
    SCHEDULE = "schedule"
    """The call a schedule stores, sealed for the schedule's id: it never opens as a task's call, so a
    schedule's bytes copied into a task fail verification; a worker opens it and seals it anew for each
    task it enqueues (`Codec.reseal_scheduled_call`)."""


class Sealer:
    """Seals blobs before they are stored and opens them after they are read, with the keys it was given.

    Without a key, a blob is stored as the serializer wrote it, and a signed blob read back is taken
    unverified (so producers can start signing before every worker has the key). With a signing key, an
    unsigned blob or one whose MAC does not match under any key is refused with `SignatureError`. With an
    encryption key, the same holds for blobs that are not encrypted or do not decrypt.
    """

    def __init__(self, signing_keys: Sequence[bytes] = (), encryption_keys: Sequence[bytes] = ()) -> None:
        self.signing_keys = tuple(signing_keys)
        # Keyed once: a copy per blob costs half of what a new HMAC does.
        self._macs = tuple(hmac.new(key, digestmod=hashlib.sha256) for key in self.signing_keys)
        self.encryption_keys = tuple(encryption_keys)
        self._ciphers: tuple[AESGCM, ...] = tuple(_cipher(key) for key in self.encryption_keys)

    @classmethod
    def configured(
        cls, signing_key: Keys | None, encryption_key: Keys | None, inherited: Sealer | None = None
    ) -> Sealer:
        """The sealer for these arguments; each left None is `inherited`'s keys, else its environment
        variable's."""
        if inherited is None:
            return cls(
                _keys(signing_key, "signing_key", SIGNING_KEY_ENV),
                _keys(encryption_key, "encryption_key", ENCRYPTION_KEY_ENV),
            )
        return cls(
            inherited.signing_keys
            if signing_key is None
            else _keys(signing_key, "signing_key", SIGNING_KEY_ENV),
            inherited.encryption_keys
            if encryption_key is None
            else _keys(encryption_key, "encryption_key", ENCRYPTION_KEY_ENV),
        )

    def describe(self) -> dict[str, str]:
        """What this sealer does to what is stored, in words, for `sitq info`."""
        signing = (
            f"on: HMAC-SHA256, {len(self.signing_keys)} key(s); unsigned or altered calls and results "
            "are refused"
            if self.signing_keys
            else f"off: whoever can write the store can make workers run code (set ${SIGNING_KEY_ENV}; "
            "see 'Secure a queue' in the docs)"
        )
        encryption = (
            f"on: AES-256-GCM, {len(self._ciphers)} key(s)"
            if self._ciphers
            else "off: calls and results are readable by whoever can read the store"
        )
        return {"signing": signing, "encryption": encryption}

    def seal(self, data: bytes, task_id: str, part: Part, serializer: str) -> bytes:
        """`data` as it is to be stored: encrypted, then signed, as configured."""
        if not (self.signing_keys or self._ciphers):
            return data
        context = _context(task_id, part, serializer)
        if self._ciphers:
            nonce = secrets.token_bytes(_NONCE_BYTES)
            data = b"".join((_ENCRYPTED, nonce, self._ciphers[0].encrypt(nonce, data, context)))
        if self._macs:
            data = b"".join((_SIGNED, _mac(self._macs[0], context, data), data))
        return data

    def open(self, blob: bytes, task_id: str, part: Part, serializer: str) -> bytes:
        """What the serializer wrote, once `blob` is proven to be this task's `part` sealed with our keys."""
        if not (self._macs or self._ciphers or blob.startswith(_SEALED)):
            return blob  # the common case of an unsigned queue: no context to build, nothing to check
        context = _context(task_id, part, serializer)
        what = (
            f"the stored call of schedule {task_id}"
            if part is Part.SCHEDULE
            else f"the stored {part} of task {task_id}"
        )
        if self.signing_keys:
            blob = self._verified(blob, context, what)
        elif blob.startswith(_SIGNED):
            blob = blob[len(_SIGNED) + _MAC_BYTES :]
        if self._ciphers:
            return self._decrypted(blob, context, what)
        if blob.startswith(_ENCRYPTED):
            raise SerializationError(
                f"{what} is encrypted, and this process has no encryption key: give it the queue's key "
                f"(encryption_key=, or ${ENCRYPTION_KEY_ENV})"
            )
        return blob

    def _verified(self, blob: bytes, context: bytes, what: str) -> bytes:
        if not blob.startswith(_SIGNED):
            raise _unsealed(what, "signed", "signing")
        start = len(_SIGNED) + _MAC_BYTES
        mac, body = blob[len(_SIGNED) : start], blob[start:]
        for keyed in self._macs:
            if hmac.compare_digest(mac, _mac(keyed, context, body)):
                return body
        raise SignatureError(
            f"{what} does not match its signature under any of this process's {len(self._macs)} "
            "signing key(s): it was changed, copied from another task or column, relabelled with "
            "another serializer, or signed with a key no longer configured. It was not decoded"
        )

    def _decrypted(self, blob: bytes, context: bytes, what: str) -> bytes:
        from cryptography.exceptions import InvalidTag

        if not blob.startswith(_ENCRYPTED):
            raise _unsealed(what, "encrypted", "encryption")
        start = len(_ENCRYPTED) + _NONCE_BYTES
        nonce, ciphertext = blob[len(_ENCRYPTED) : start], blob[start:]
        if len(ciphertext) >= _TAG_BYTES:  # anything shorter was cut: it cannot be opened
            for cipher in self._ciphers:
                try:
                    return cipher.decrypt(nonce, ciphertext, context)
                except InvalidTag:
                    continue
        raise SignatureError(
            f"{what} does not decrypt under any of this process's {len(self._ciphers)} encryption key(s): "
            "it was changed, copied from another task or column, or encrypted with a key no longer "
            "configured. It was not decoded"
        )


def _unsealed(what: str, sealed: str, key: str) -> SignatureError:
    return SignatureError(
        f"{what} is not {sealed}, and this process requires it: it was written without the {key} key, "
        "or by someone who does not have it. It was not decoded"
    )


def _context(task_id: str, part: Part, serializer: str) -> bytes:
    """What a blob is bound to, each field length-prefixed so that no two contexts read the same."""
    return f"sitq/1 {len(part)}:{part} {len(task_id)}:{task_id} {len(serializer)}:{serializer}".encode()


def _mac(keyed: hmac.HMAC, context: bytes, data: bytes) -> bytes:
    mac = keyed.copy()
    mac.update(context)
    mac.update(data)
    return mac.digest()


def _cipher(key: bytes) -> AESGCM:
    """AES-256-GCM under a key derived from `key` for this one use, so any string of enough entropy does."""
    try:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    except ImportError as exc:
        raise ConfigurationError(
            "encryption needs the cryptography package: pip install 'sitq-core[encryption]'"
        ) from exc
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"sitq aes-256-gcm").derive(key)
    return AESGCM(derived)


def _keys(keys: Keys | None, argument: str, variable: str) -> tuple[bytes, ...]:
    """`keys` as bytes, checked; from the environment variable (comma-separated) when None."""
    if keys is None:
        value = os.environ.get(variable, "")
        if not value:
            return ()
        try:
            return tuple(_key(key, f"${variable}") for key in value.split(","))
        except ValidationError as exc:
            raise ConfigurationError(str(exc)) from None
    if isinstance(keys, str | bytes):
        return (_key(keys, argument),)
    if not isinstance(keys, Sequence) or not keys:
        raise ValidationError(
            f"{argument} takes a string or bytes, or a non-empty sequence of them (the first seals, every "
            f"one opens), not {keys!r:.100}"
        )
    return tuple(_key(key, argument) for key in keys)


def _key(key: object, where: str) -> bytes:
    if not isinstance(key, str | bytes):
        raise ValidationError(f"each key in {where} must be a string or bytes, not {type(key).__name__}")
    raw = key.encode() if isinstance(key, str) else key
    if len(raw) < MIN_KEY_BYTES:
        raise ValidationError(
            f"a key in {where} is {len(raw)} bytes long; keys must have at least {MIN_KEY_BYTES}: {_KEY_HINT}"
        )
    return raw
