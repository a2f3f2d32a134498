"""Any web server can carry eboard/1: sync from a source folder served by nginx."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from content_sync.board.engine import Engine
from content_sync.db import store
from tests.kit.sync import (
    BOARD,
    Publisher,
    big_bmp,
    free_port,
    make_keys,
    png,
    sha256,
    wait_until,
    write_config,
)

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed "
                                "(Debian package nginx-light; `make test` installs it)")

CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
    log_format eboard '$request_method $uri $status $body_bytes_sent "$http_range" '
                      '"$http_if_none_match" "$http_if_range"';
    access_log {d}/access.log eboard;
    client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
    uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
    types {{ application/json json; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
"""


class Nginx:
    def __init__(self, d: Path, root: Path) -> None:
        self.d, self.port = d, free_port()
        (d / "tmp").mkdir(parents=True)
        (d / "nginx.conf").write_text(CONF.format(d=d, port=self.port, root=root))
        self.url = f"http://127.0.0.1:{self.port}/"

    def log(self) -> list[list[str]]:
        path = self.d / "access.log"
        return [line.split(" ", 4) for line in path.read_text().splitlines()] \
            if path.exists() else []


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[tuple[Nginx, Publisher, Path]]:
    key, pubkey = make_keys(tmp_path / "keys")
    root = tmp_path / "published"
    pub = Publisher(root, key)
    n = Nginx(tmp_path / "nginx", root)
    proc = subprocess.Popen([str(NGINX), "-p", str(n.d), "-c", str(n.d / "nginx.conf")],
                            stderr=subprocess.PIPE)

    def up() -> bool:
        try:
            requests.get(n.url, timeout=1)
            return True
        except requests.ConnectionError:
            return False

    try:
        assert wait_until(up, timeout=15), (n.d / "error.log").read_text()
        yield n, pub, pubkey
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_sync_from_nginx_with_conditional_get(nginx: tuple[Nginx, Publisher, Path],
                                              tmp_path: Path) -> None:
    n, pub, pubkey = nginx
    pub.publish(1, {"a": (png(1), "image/png"), "b": (png(2), "image/png")})
    config = write_config(tmp_path, n.url, [pubkey])
    conn = store.connect(config.db_path)
    assert Engine(config, conn).sync_once().ok
    before = len(n.log())
    r = Engine(config, conn).sync_once()
    assert r.ok
    new = n.log()[before:]
    assert [(x[0], x[1], x[2]) for x in new] == \
        [("GET", f"/boards/{BOARD}/manifest.json", "304")]
    assert store.active_version(conn) == 1


def test_resume_through_nginx_with_range_and_if_range(nginx: tuple[Nginx, Publisher, Path],
                                                      tmp_path: Path) -> None:
    n, pub, pubkey = nginx
    big = big_bmp(7, 600)  # about 1 MB
    h = sha256(big)
    pub.publish(1, {"big": (big, "image/bmp")})
    config = write_config(tmp_path, n.url, [pubkey])
    # The state a cut (or a killed process) leaves: half the bytes and nginx's validator.
    head = requests.head(f"{n.url}media/{h}", timeout=5)
    partial = store.partial_dir(config.cache_dir) / h
    partial.parent.mkdir(parents=True)
    half = len(big) // 2
    partial.write_bytes(big[:half])
    partial.with_name(h + ".json").write_text(json.dumps(
        {"url": f"{n.url}media/{h}", "etag": head.headers["ETag"],
         "last_modified": head.headers["Last-Modified"]}))
    conn = store.connect(config.db_path)
    r = Engine(config, conn).sync_once()
    assert r.ok, r.reason
    got = [x for x in n.log() if x[1] == f"/media/{h}" and x[0] == "GET"]
    assert len(got) == 1 and got[0][2] == "206"
    assert int(got[0][3]) == len(big) - half
    etag = head.headers["ETag"].strip('"')
    assert f'"bytes={half}-"' in got[0][4] and etag in got[0][4]  # nginx logs " as \x22
    assert store.media_path(config.cache_dir, h).read_bytes() == big
