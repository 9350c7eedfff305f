"""Where data files live, and how a missing one is fetched and checked.

Resolution of a data file ``relative_path``:

1. the data root is ``$STRUCTEBM_DATA`` if set, else ``$XDG_CACHE_HOME/structebm/data``
   (``~/.cache/structebm/data``);
2. a file already there is used after its SHA-256 is checked;
3. otherwise it is downloaded from its upstream URL (unless ``$STRUCTEBM_OFFLINE=1``), checked
   and stored; an archive member is extracted first, and a ``.gz`` target is written gzipped;
4. offline (or when the download fails) one :class:`DataFileMissingError` names the file,
   the folder to put it in, and the URL.

For a ``.gz`` file the checksum is that of the **decompressed** content, so a re-compressed
copy of the same data passes. Derived caches (e.g. encoded graphs) go to ``$STRUCTEBM_CACHE``,
else ``$XDG_CACHE_HOME/structebm/cache``, never into the data root, which may be read-only.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

__all__ = [
    "RemoteFile",
    "ChecksumError",
    "DataFileMissingError",
    "data_root",
    "cache_root",
    "content_sha256",
    "fetch_file",
]


class ChecksumError(ValueError):
    """A data file exists but its content does not have the expected SHA-256."""


class DataFileMissingError(FileNotFoundError):
    """A data file is absent and could not be downloaded."""


@dataclass(frozen=True)
class RemoteFile:
    """A data file: where it goes under the data root, its checksum and its upstream source.

    Args:
        relative_path: path under the data root, e.g. ``"qm9/qm9_smiles.csv"``.
        sha256: SHA-256 of the content (decompressed content for ``.gz`` files).
        url: upstream download address.
        archive_member: if the URL points to a (gzipped) tar archive, the member to extract.
    """

    relative_path: str
    sha256: str
    url: str
    archive_member: Optional[str] = None


def _user_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "structebm"


def data_root() -> Path:
    """``$STRUCTEBM_DATA`` if set, else the user cache's ``data`` folder."""
    env = os.environ.get("STRUCTEBM_DATA")
    return Path(env) if env else _user_cache() / "data"


def cache_root() -> Path:
    """Folder for derived caches: ``$STRUCTEBM_CACHE`` if set, else the user cache's ``cache`` folder."""
    env = os.environ.get("STRUCTEBM_CACHE")
    return Path(env) if env else _user_cache() / "cache"


def content_sha256(path: Path) -> str:
    """SHA-256 of a file's content, decompressing ``.gz`` files first."""
    digest = hashlib.sha256()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, remote: RemoteFile) -> Path:
    actual = content_sha256(path)
    if actual != remote.sha256:
        raise ChecksumError(
            f"checksum mismatch for data file {path}: expected sha256 {remote.sha256}, got {actual}. "
            f"The file is corrupt or a different version; delete it to re-download from {remote.url}"
        )
    return path


def _download_content(remote: RemoteFile) -> bytes:
    with urllib.request.urlopen(remote.url, timeout=60) as response:
        payload = response.read()
    if remote.archive_member is None:
        return gzip.decompress(payload) if remote.url.endswith(".gz") else payload
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:*") as archive:
        member = archive.extractfile(remote.archive_member)
        if member is None:
            raise DataFileMissingError(f"{remote.url} has no file {remote.archive_member!r}")
        return member.read()


def fetch_file(remote: RemoteFile, root: Optional[Path] = None) -> Path:
    """Path of a checked local copy of ``remote`` (see the module docstring for the rules)."""
    root = Path(root) if root is not None else data_root()
    path = root / remote.relative_path
    if path.exists():
        return _verify(path, remote)
    where = f"put {path.name} into {path.parent} (or set STRUCTEBM_DATA to a folder holding {remote.relative_path})"
    if os.environ.get("STRUCTEBM_OFFLINE", "") not in ("", "0"):
        raise DataFileMissingError(f"data file {remote.relative_path} is missing and STRUCTEBM_OFFLINE is set: {where}")
    try:
        content = _download_content(remote)
    except (OSError, tarfile.TarError, EOFError) as error:
        raise DataFileMissingError(
            f"data file {remote.relative_path} is missing and downloading {remote.url} failed ({error}): {where}"
        ) from None
    actual = hashlib.sha256(content).hexdigest()
    if actual != remote.sha256:
        raise ChecksumError(f"downloaded {remote.url}: expected sha256 {remote.sha256}, got {actual}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as handle:
        handle.write(gzip.compress(content, mtime=0) if path.suffix == ".gz" else content)
    Path(handle.name).replace(path)
    return path
