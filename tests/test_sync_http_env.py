"""EboardSession remembers requests' merge of the environment's proxy and CA settings per
origin (content_sync/net/http.py); what it returns must stay what requests itself would say.
The real proxy paths (config and environment) are in tests/test_sync_transport.py."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from content_sync.net import http

URLS = [
    "http://127.0.0.1:8080/media/aa", "http://127.0.0.1:8080/media/bb",
    "http://127.0.0.1:9090/media/aa", "https://source.example.vn/eboard/v1/media/aa",
    "https://cdn.example.vn/m/aa", "https://user:pw@cdn.example.vn/m/bb",
    "http://intranet.local/x", "https://intranet.local:8443/x",
]


@pytest.fixture()
def proxied_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "https_proxy", "no_proxy", "all_proxy", "HTTP_PROXY",
                "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "REQUESTS_CA_BUNDLE",
                "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("http_proxy", "http://proxy.example.vn:3128")
    monkeypatch.setenv("https_proxy", "http://tls-proxy.example.vn:3129")
    monkeypatch.setenv("no_proxy", "127.0.0.1,.local,cdn.example.vn")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")


def _args(url: str) -> list[tuple[Any, ...]]:
    return [(url, {}, True, None, None), (url, {}, False, True, None),
            (url, {"https": "http://per-request:1"}, True, None, None),
            (url, {"no_proxy": "example.vn"}, True, "/tmp/ca.pem", None)]


@pytest.mark.usefixtures("proxied_env")
def test_same_settings_as_requests_for_every_origin_and_call() -> None:
    ours, theirs = http.EboardSession((5, 5)), requests.Session()
    for _ in range(3):  # the first round fills the memo, the next ones read it
        for url in URLS:
            for args in _args(url):
                assert ours.merge_environment_settings(*args) == \
                    theirs.merge_environment_settings(*args), args


@pytest.mark.usefixtures("proxied_env")
def test_session_settings_changed_later_are_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")  # else it wins over the session's verify
    ours, theirs = http.EboardSession((5, 5)), requests.Session()
    url = "http://127.0.0.1:8080/media/aa"  # no_proxy: the environment gives none
    assert ours.merge_environment_settings(url, {}, True, None, None)["proxies"] == {}
    for s in (ours, theirs):
        s.proxies = {"http": "http://configured:8080"}
    got = ours.merge_environment_settings(url, {}, True, None, None)
    assert got == theirs.merge_environment_settings(url, {}, True, None, None)
    assert got["proxies"] == {"http": "http://configured:8080"}
    for s in (ours, theirs):
        s.verify = "/etc/eboard/ca.pem"
    got = ours.merge_environment_settings(url, {}, True, None, None)
    assert got == theirs.merge_environment_settings(url, {}, True, None, None)


@pytest.mark.usefixtures("proxied_env")
def test_a_caller_changing_the_answer_does_not_change_the_memo() -> None:
    s = http.EboardSession((5, 5))
    url = "https://source.example.vn/x"
    first = s.merge_environment_settings(url, {}, True, None, None)
    first["proxies"]["https"] = "http://evil:1"
    first["verify"] = False
    again = s.merge_environment_settings(url, {}, True, None, None)
    assert again["proxies"]["https"] == "http://tls-proxy.example.vn:3129"
    assert again["verify"] == "/etc/ssl/certs/ca-certificates.crt"


def test_without_trust_env_nothing_is_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "http://tls-proxy.example.vn:3129")
    s = http.EboardSession((5, 5))
    s.trust_env = False  # what make_session does when source.proxy is set
    s.proxies = {"https": "http://configured:8080"}
    got = s.merge_environment_settings("https://a.example.vn/", {}, True, None, None)
    assert got["proxies"] == {"https": "http://configured:8080"} and s._merged == {}


@pytest.mark.usefixtures("proxied_env")
def test_the_memo_stays_small() -> None:
    s = http.EboardSession((5, 5))
    for i in range(3 * http.MERGED_MAX):
        s.merge_environment_settings(f"https://host{i}.example.vn/m", {}, True, None, None)
        assert len(s._merged) <= http.MERGED_MAX
