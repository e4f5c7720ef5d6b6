"""Converted files of a network, kept for the rest of the process: exporting one trained model to several
files (float, fp16, int8 ...; .tflite and .onnx) converts it from PyTorch once per file format, and the
same export asked for twice quantizes once.

A conversion (`litert_torch.convert`, `torch.onnx.export`) reads only the network's modules, their
settings, weights and buffers, and the input shape; `fingerprint` hashes exactly those. A network it
cannot vouch for (forward hooks, a setting it cannot hash) gets no fingerprint and is always converted.
An ONNX file is also kept by the network's graph (`fingerprint` with ``weights=False``): a network of the
same graph with other weights (a GPTQ-rounded or fine-tuned copy, another training run) gets that file
with its own weights put in, checked against its PyTorch outputs (`effnet.export.onnx`).

``EFFNET_CONVERSION_CACHE=FOLDER`` also keeps them in FOLDER (one file a conversion, never pruned), shared by
the processes of one job: the workers of a test run, a sweep's exports. A folder holds the conversions of
one effnet, torch and converter version; give each job its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from effnet.checkpoint import atomic_path

FOLDER_VARIABLE = "EFFNET_CONVERSION_CACHE"
MAX_FILES = 16  # converted files kept per process (the most recent ones)
MAX_BYTES = 256 * 2**20  # and at most this many bytes in all

_SCALARS = (bool, int, float, str, bytes, type(None))
_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_state_dict_hooks")


class _Unhashable(Exception):
    pass


def fingerprint(network: nn.Module, *settings: Hashable, weights: bool = True) -> str | None:
    """A digest of what a conversion of ``network`` reads (every module's class and public settings, every
    parameter and buffer, the training flags) and of ``settings``; None when the network holds something
    the digest cannot cover. ``weights=False``: the parameters' and buffers' names, shapes and types but not
    their values (the digest of the network's graph)."""
    digest = hashlib.blake2b(digest_size=20)
    try:
        _update(digest, settings)
        if not weights:
            digest.update(b"graph;")
        for name, module in network.named_modules():
            if any(getattr(module, hooks, None) for hooks in _HOOKS):
                return None
            digest.update(f"{name}:{type(module).__module__}.{type(module).__qualname__}".encode())
            for key, value in sorted(vars(module).items()):
                if not key.startswith("_"):
                    digest.update(key.encode())
                    _update(digest, value)
        for name, tensor in network.state_dict(keep_vars=True).items():
            digest.update(name.encode())
            if weights:
                _update(digest, tensor)
            else:
                # all zeros or not: exporters leave out an all-zero bias
                digest.update(f"{tensor.dtype}:{tuple(tensor.shape)}:{bool(tensor.detach().any())};".encode())
    except _Unhashable:
        return None
    return digest.hexdigest()


def digest_of(*values: object) -> str | None:
    """A digest of ``values`` (scalars, bytes, arrays, tensors, sequences, dicts, dataclasses); None when
    one of them is something else."""
    digest = hashlib.blake2b(digest_size=20)
    try:
        _update(digest, values)
    except _Unhashable:
        return None
    return digest.hexdigest()


def _update(digest, value) -> None:
    if isinstance(value, _SCALARS):
        digest.update(f"{type(value).__name__}:{value!r};".encode())
    elif isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"tensor:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    elif isinstance(value, np.ndarray):
        digest.update(f"array:{value.dtype}:{value.shape};".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, (tuple, list)):
        digest.update(f"{type(value).__name__}[{len(value)}](".encode())
        for item in value:
            _update(digest, item)
        digest.update(b")")
    elif isinstance(value, dict):
        digest.update(f"dict[{len(value)}](".encode())
        for key in sorted(value, key=repr):
            _update(digest, key)
            _update(digest, value[key])
        digest.update(b")")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        digest.update(f"{type(value).__qualname__}(".encode())
        for field in dataclasses.fields(value):
            digest.update(field.name.encode())
            _update(digest, getattr(value, field.name))
        digest.update(b")")
    else:
        raise _Unhashable(type(value).__qualname__)


class ConversionCache:
    """The bytes of recently converted files, by fingerprint (least recently used dropped first); with a
    ``folder``, also every file there, shared with other processes."""

    def __init__(
        self, max_files: int = MAX_FILES, max_bytes: int = MAX_BYTES, folder: str | Path | None = None
    ) -> None:
        self.max_files, self.max_bytes = max_files, max_bytes
        self.folder = Path(folder) if folder else None
        self._files: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def convert(
        self,
        network: nn.Module,
        file: Path,
        convert: Callable[[nn.Module, Path], None],
        *settings: Hashable,
        reweight: Callable[[bytes, nn.Module], bytes | None] | None = None,
    ) -> None:
        """Write ``network``'s converted file to ``file``: a copy of an earlier conversion with the same
        fingerprint and ``settings``, else ``convert(network, file)`` (kept for later calls). With
        ``reweight(converted, network)``: a file converted from a network of the same graph and other weights
        (GPTQ-rounded or fine-tuned copies, another training run) given ``network``'s weights by it, where it
        returns bytes rather than None, instead of converting again."""
        key = fingerprint(network, *settings)
        kept = self._get(key)
        graph_key = None
        if kept is None and reweight is not None and key is not None:
            graph_key = fingerprint(network, *settings, weights=False)
            graph = self._get(graph_key)
            kept = reweight(graph, network) if graph is not None else None
            if kept is not None:
                self._put(key, kept)
        if kept is not None:
            Path(file).write_bytes(kept)
            return
        convert(network, file)
        if key is not None and Path(file).is_file():
            content = Path(file).read_bytes()
            self._put(key, content)
            if graph_key is not None:
                self._put(graph_key, content)

    def computed(self, key: str | None, compute: Callable[[], bytes]) -> bytes:
        """The bytes ``compute()`` returned for ``key`` (a `digest_of` everything it reads) before, else
        ``compute()`` (kept for later calls); a None key is always computed."""
        kept = self._get(key)
        if kept is not None:
            return kept
        content = compute()
        if key is not None:
            self._put(key, content)
        return content

    def _get(self, key: str | None) -> bytes | None:
        if key is None:
            return None
        with self._lock:
            kept = self._files.get(key)
            if kept is not None:
                self._files.move_to_end(key)
                return kept
        shared = self.folder / key if self.folder is not None else None
        if shared is None or not shared.is_file():
            return None
        kept = shared.read_bytes()
        self._put(key, kept, share=False)
        return kept

    def _put(self, key: str, content: bytes, share: bool = True) -> None:
        if share and self.folder is not None:
            with atomic_path(self.folder / key) as tmp:
                tmp.write_bytes(content)
        if len(content) > self.max_bytes:
            return
        with self._lock:
            self._files[key] = bytes(content)
            while len(self._files) > self.max_files or sum(map(len, self._files.values())) > self.max_bytes:
                self._files.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._files.clear()


CONVERSIONS = ConversionCache(folder=os.environ.get(FOLDER_VARIABLE))
