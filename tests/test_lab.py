"""`make lab` works: `kdl lab` starts JupyterLab from this environment on the chapters and serves
a chapter.

The server runs on a free loopback port with a token, started as `make lab` starts it; the test
requests the Lab page and one chapter over HTTP (the contents API the Lab front end reads a
notebook through), then stops the server. Bounded: two minutes to come up.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, b""


def test_jupyterlab_starts_on_the_chapters_and_serves_a_chapter(tmp_path):
    chapter = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))[0]
    port, token = _free_port(), secrets.token_hex(16)
    log = open(tmp_path / "lab.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "kdl", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}"],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        env={"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path),
             "JUPYTER_CONFIG_DIR": str(tmp_path), "JUPYTER_DATA_DIR": str(tmp_path / "data"),
             "JUPYTER_RUNTIME_DIR": str(tmp_path)},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                status, _ = _get(f"{base}/api/status?token={token}")
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                status = None
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200, (tmp_path / "lab.log").read_text()[-3000:]
        assert _get(f"{base}/api/contents/{chapter.name}")[0] == 403, "served without the token"
        lab_status, page = _get(f"{base}/lab/tree/{chapter.name}?token={token}")
        assert lab_status == 200 and b"JupyterLab" in page
        got, body = _get(f"{base}/api/contents/{chapter.name}?token={token}&content=1")
        assert got == 200
        served = json.loads(body)
        stored = json.loads(chapter.read_text())
        assert served["type"] == "notebook"
        assert [c["source"] for c in served["content"]["cells"]][:3] == [
            "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in stored["cells"][:3]
        ]
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
