"""Publishing to a reference source server over HTTP (operator token)."""

from __future__ import annotations

import requests

from content_sync.publish.build import Publication, PublishError, manifest_version_in

TIMEOUT = (10, 120)


def current_version(base_url: str, board: str) -> int:
    """The version the server offers now (0 when none), so the new one is above it."""
    try:
        r = requests.get(f"{base_url}boards/{board}/manifest.json", timeout=TIMEOUT)
    except requests.RequestException as e:
        raise PublishError(f"cannot reach {base_url}: {e}") from None
    return manifest_version_in(r.content) if r.status_code == 200 else 0


def upload(pub: Publication, base_url: str, token: str) -> None:
    """Upload missing media, then the manifest (so boards never see dangling references)."""
    headers = {"Authorization": f"Bearer {token}"}
    with requests.Session() as s:
        for m in pub.media.values():
            url = f"{base_url}media/{m.sha256}"
            try:
                if s.head(url, timeout=TIMEOUT).status_code == 200:
                    continue
                with m.path.open("rb") as f:
                    r = s.put(url, data=f, headers=headers, timeout=TIMEOUT)
            except requests.RequestException as e:
                raise PublishError(f"uploading {m.path} to {url} failed: {e}") from None
            if r.status_code not in (201, 204):
                raise PublishError(
                    f"uploading {m.path} to {url}: HTTP {r.status_code} {r.text.strip()}"
                )
        url = f"{base_url}boards/{pub.board}/manifest.json"
        try:
            r = s.put(url, data=pub.envelope, headers=headers, timeout=TIMEOUT)
        except requests.RequestException as e:
            raise PublishError(f"uploading the manifest to {url} failed: {e}") from None
        if r.status_code not in (201, 204):
            raise PublishError(
                f"uploading the manifest to {url}: HTTP {r.status_code} {r.text.strip()}"
            )
