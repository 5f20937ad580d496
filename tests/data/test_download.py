import hashlib
import http.server
import subprocess
import sys
import threading
import time
from functools import partial

import pytest

from imdb_cli.data.download import download
from imdb_cli.errors import UserError


def leftovers(cache) -> list[str]:
    """What a failed download left in the cache, but for its lock file (kept, as Hugging Face's cache keeps its own)."""
    return [p.name for p in cache.iterdir() if not p.name.endswith(".lock")]


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on the loopback interface, serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "data.tar.gz").write_bytes(b"archive bytes" * 1000)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()


def test_download_verifies_and_caches(server, tmp_path):
    url, root = server
    body = (root / "data.tar.gz").read_bytes()
    cache = tmp_path / "cache"
    path = download(f"{url}/data.tar.gz", cache, sha256=hashlib.sha256(body).hexdigest())
    assert path == cache / "data.tar.gz" and path.read_bytes() == body
    (root / "data.tar.gz").unlink()
    assert download(f"{url}/data.tar.gz", cache) == path  # second call: from the cache, no request


def test_checksum_mismatch_leaves_nothing_behind(server, tmp_path):
    url, _ = server
    with pytest.raises(UserError, match="corrupt"):
        download(f"{url}/data.tar.gz", tmp_path / "cache", sha256="0" * 64)
    assert leftovers(tmp_path / "cache") == []


def test_unreachable_url_says_how_to_pass_a_local_copy(server, tmp_path):
    url, _ = server
    with pytest.raises(UserError, match=r"pass a local copy: --data\.source"):
        download(f"{url}/missing.tar.gz", tmp_path / "cache")
    assert leftovers(tmp_path / "cache") == []


def test_an_interrupted_download_is_never_taken_for_the_file(tmp_path):
    """The server promises 100,000 bytes and hangs up after 10."""

    class HangsUp(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"0123456789")

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), HangsUp)
    threading.Thread(target=httpd.handle_request, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/aclImdb_v1.tar.gz"
    with pytest.raises(UserError, match="cannot download"):
        download(url, tmp_path / "cache")
    assert leftovers(tmp_path / "cache") == []
    httpd.server_close()


def test_processes_sharing_a_cache_download_once(tmp_path):
    """Two processes, one cache (DDP ranks, or nodes on a shared file system): one request, one whole file."""
    body = b"archive bytes" * 100_000
    requests = []

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for i in range(0, len(body), 100_000):
                self.wfile.write(body[i : i + 100_000])
                time.sleep(0.05)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/data.tar.gz"
    script = "import sys; from pathlib import Path; from imdb_cli.data.download import download; "
    script += f"print(download({url!r}, Path({str(tmp_path / 'cache')!r}), {hashlib.sha256(body).hexdigest()!r}))"
    workers = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
               for _ in range(2)]  # fmt: skip
    paths = {worker.communicate(timeout=60)[0].strip() for worker in workers}
    httpd.shutdown()
    assert [worker.returncode for worker in workers] == [0, 0] and len(requests) == 1
    assert paths == {str(tmp_path / "cache/data.tar.gz").encode()}
    assert (tmp_path / "cache/data.tar.gz").read_bytes() == body
    assert leftovers(tmp_path / "cache") == ["data.tar.gz"]
