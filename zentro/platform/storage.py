"""The artifact store: evidence bundles, workbooks and other generated files, addressed by key.

Everything that keeps an artifact goes through ``get_storage(app)`` and the four calls of
``Storage``; nothing else in the code opens artifact paths itself. The default ``LocalStorage``
keeps files under ``ZENTRO_STORAGE_DIR`` (default ``instance/storage``), which serves one host, or
several when that directory is a shared volume (NFS, EFS...). An object store plugs in by
implementing ``Storage`` (put/open/exists/delete on keys) and registering the instance with
``register_storage(app, storage)`` at start-up: callers never learn which one they talk to.

Keys are relative, slash-separated paths such as ``bundles/org-7/000003-evidence-1f2e.zip``:
each segment is letters, digits, ``.``, ``_`` or ``-`` (not ``.`` or ``..``), so a key can never
name anything outside the store.
"""
from __future__ import annotations

import abc
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterable

from flask import Flask

_SEGMENT = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
MAX_KEY_LENGTH = 300  # EvidenceBundle.storage_key
CHUNK = 1 << 20


class StorageError(Exception):
    """A key that is not valid, or an artifact that is not there."""


def validate_key(key: str) -> str:
    """Return the key when it is a safe relative path; raise StorageError otherwise."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise StorageError(f"Invalid storage key {key!r}: 1–{MAX_KEY_LENGTH} characters.")
    parts = key.split("/")
    for part in parts:
        if part in ("", ".", "..") or not _SEGMENT.match(part):
            raise StorageError(f"Invalid storage key {key!r}: segments are letters, digits, '.', '_' or '-' "
                               "(not empty, '.' or '..').")
    return key


def _chunks(data: bytes | bytearray | memoryview | Iterable[bytes]) -> Iterable[bytes]:
    if isinstance(data, (bytes, bytearray, memoryview)):
        yield bytes(data)
        return
    for chunk in data:
        if chunk:
            yield bytes(chunk)


class Storage(abc.ABC):
    """Where artifacts live. Implementations must make ``put`` atomic: a reader sees the whole
    artifact or nothing, never a partial write."""

    @abc.abstractmethod
    def put(self, key: str, data: bytes | Iterable[bytes]) -> tuple[int, str]:
        """Store ``data`` (bytes, or an iterable of byte chunks) under ``key``, replacing any previous
        artifact. Returns (size in bytes, SHA-256 hex of the content)."""

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A readable binary file object (the caller closes it). StorageError if absent."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        ...

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the artifact; deleting an absent key is not an error."""

    def read(self, key: str) -> bytes:
        with self.open(key) as fh:
            return fh.read()


class LocalStorage(Storage):
    """Files under one root directory, written via a temporary file and ``os.replace``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        if self.root not in path.parents:  # belt and braces: symlinks inside the store
            raise StorageError(f"Invalid storage key {key!r}: it leaves the store.")
        return path

    def put(self, key: str, data: bytes | Iterable[bytes]) -> tuple[int, str]:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=path.parent)
        digest, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in _chunks(data):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return size, digest.hexdigest()

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise StorageError(f"No artifact stored under {key!r}.") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass


_EXTENSION = "zentro_storage"


def register_storage(app: Flask, storage: Storage) -> None:
    """Use ``storage`` (e.g. an object-store implementation) for this app instead of LocalStorage."""
    app.extensions[_EXTENSION] = (None, storage)


def get_storage(app: Flask) -> Storage:
    """The app's artifact store: a registered one, else LocalStorage at ZENTRO_STORAGE_DIR (default
    instance/storage). Re-read on each call so a changed setting (tests) takes effect."""
    held = app.extensions.get(_EXTENSION)
    if held is not None and held[0] is None:
        return held[1]
    root = app.config.get("ZENTRO_STORAGE_DIR") or os.path.join(app.instance_path, "storage")
    if held is None or held[0] != root:
        held = (root, LocalStorage(root))
        app.extensions[_EXTENSION] = held
    return held[1]
