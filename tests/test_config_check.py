"""`eboard config check` as a technician uses it: every problem of every file in one run,
the daemons' own rules (the sync's URL rule), strict types."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kiosk_config import load

ROOT = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def eboard(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command; EBOARD_ETC (the test's own /etc/eboard) is inherited."""
    return subprocess.run([sys.executable, "-m", "eboard", *args], capture_output=True,
                          text=True, check=False, cwd=ROOT, timeout=60)


def problem_lines(stderr: str) -> list[str]:
    return [line.strip() for line in stderr.splitlines() if line.startswith("  /")]


def test_one_run_shows_every_problem_of_every_file(_isolated_etc: Path, tmp_path: Path
                                                   ) -> None:
    """An unknown key used to hide every other problem: 1 shown, then 9 once it was fixed."""
    main = write(_isolated_etc / "eboard.toml",
                 '[board]\nidd = "x"\nname = "UBND xã Pa Vệ Sủ"\n'
                 '[display]\nrotation = 45\nimage_fit = "fil"\n')
    confd = write(_isolated_etc / "conf.d" / "10-net.toml",
                  '[sourc]\nurl = "https://x/"\n[source]\npoll_interval = 1\n'
                  'url = "http://10.0.0.5/eboard/v1/"\n')
    extra = write(tmp_path / "extra.toml",
                  '[emergency]\nalarm = "yes"\nalarm_volume = "80"\n[status]\nheartbeat = 60\n')
    r = eboard("config", "check", "--config", str(extra))
    assert r.returncode == 1
    got = problem_lines(r.stderr)
    expected = [
        (main, "board.idd", "unknown key", "did you mean 'board.id'?"),
        (main, "display.rotation", "expected 0, 90, 180 or 270", "got 45"),
        (main, "display.image_fit", "'fit', 'fill' or 'stretch'", "did you mean 'fill'?"),
        (confd, "sourc", "unknown key", "did you mean 'source'?"),
        (confd, "source.poll_interval", "greater than or equal to 5", "got 1"),
        (confd, "source.url", "uses plain http to 10.0.0.5", "source.allow_insecure_http"),
        (extra, "emergency.alarm", "true or false", "did you mean true?"),
        (extra, "emergency.alarm_volume", "integer", "did you mean 80?"),
        (extra, "status.heartbeat", "unknown key", "did you mean 'status.heartbeat_interval'?"),
    ]
    for file, key, says, hint in expected:
        assert any(line.startswith(f"{file}: {key}: ") and says in line and hint in line
                   for line in got), (key, got)
    assert len(got) == len(expected), got
    # File by file, in the order the layers apply.
    files = [line.split(": ", 1)[0] for line in got]
    assert files == sorted(files, key=[str(main), str(confd), str(extra)].index), got
    assert f"{len(expected)} problem(s):" in r.stderr
    # The good values of a file with an unknown key are still applied and shown.
    assert f'name = "UBND xã Pa Vệ Sủ"    # from {main}' in r.stdout


def test_the_check_refuses_the_url_the_sync_refuses_in_the_same_words(tmp_path: Path) -> None:
    f = write(tmp_path / "box.toml",
              f'[source]\nurl = "http://10.0.0.5/eboard/v1/"\n[cache]\ndir = "{tmp_path}/c"\n')
    check = eboard("config", "check", "--config", str(f))
    sync = eboard("sync", "--once", "--config", str(f))
    assert (check.returncode, sync.returncode) == (1, 2)
    (line,) = problem_lines(check.stderr)
    assert line.startswith(f"{f}: source.url: http://10.0.0.5/eboard/v1/ uses plain http to "
                           "10.0.0.5; anyone on the path could read or alter traffic. Use "
                           "https, or set source.allow_insecure_http = true")
    assert problem_lines(sync.stderr) == [line]

    # A config made in code, past the schema, meets the same rule in the same words.
    from content_sync.net import SourceConfigError, make_session
    from kiosk_config import Config

    base = Config()
    config = base.model_copy(update={"source": base.source.model_copy(
        update={"url": "http://10.0.0.5/eboard/v1/"})})
    with pytest.raises(SourceConfigError) as e:
        make_session(config)
    assert str(e.value) == "source.url " + line.split(": source.url: ", 1)[1]


@pytest.mark.parametrize(("url", "allow", "ok"), [
    ("http://10.0.0.5/eboard/v1/", "true", True),
    ("http://127.0.0.1:8765/", "false", True),
    ("http://[::1]:8765/", "false", True),
    ("http://localhost/eboard/", "false", True),
    ("https://10.0.0.5/eboard/v1/", "false", True),
    ("http://httt.example.gov.vn/", "false", False),
    ("http://[10.0.0.5/eboard/", "true", False),  # not a URL: requests would raise later
])
def test_url_rule(tmp_path: Path, url: str, allow: str, ok: bool) -> None:
    f = write(tmp_path / "box.toml", f'[source]\nurl = "{url}"\nallow_insecure_http = {allow}\n')
    problems = load(f).problems
    assert (problems == []) is ok, problems
    assert all(str(p).startswith(f"{f}: source.url: {url}") for p in problems)


def test_url_rule_is_reported_beside_the_other_problems_of_its_table(tmp_path: Path) -> None:
    f = write(tmp_path / "box.toml",
              '[source]\nurl = "http://10.0.0.5/"\nread_timeout = 0\nlong_poll = "no"\n')
    assert sorted(p.key for p in load(f).problems) == \
        ["source.long_poll", "source.read_timeout", "source.url"]


@pytest.mark.parametrize(("text", "key", "says"), [
    ('[emergency]\nalarm = "yes"', "emergency.alarm", "did you mean true?"),
    ('[display]\nheader = "false"', "display.header", "did you mean false?"),
    ("[display]\nticker = 1", "display.ticker", "true or false"),
    ('[source]\npoll_interval = "60"', "source.poll_interval", "did you mean 60?"),
    ("[source]\npoll_interval = 60.0", "source.poll_interval", "a whole number"),
    ('[source]\npoll_jitter = "0.5"', "source.poll_jitter", "did you mean 0.5?"),
    ("[board]\nname = 5", "board.name", 'did you mean "5"?'),
    ('[source]\ntrusted_keys = "a.pub"', "source.trusted_keys", "a valid list"),
])
def test_types_are_strict(tmp_path: Path, text: str, key: str, says: str) -> None:
    """A string is not a boolean nor a number: `alarm = "yes"` was taken as true."""
    f = write(tmp_path / "conf.d" / "50-x.toml", text + "\n")
    (problem,) = load(f).problems
    assert str(problem).startswith(f"{f}: {key}: expected "), str(problem)
    assert says in problem.message


def test_a_rule_over_a_whole_table_names_the_file_that_set_it(_isolated_etc: Path) -> None:
    """cap.feed_url without the board's area was reported as from '(defaults)'."""
    write(_isolated_etc / "eboard.toml", '[board]\nid = "a.b"\n')
    f = write(_isolated_etc / "conf.d" / "20-cap.toml", '[cap]\nfeed_url = "file:///x.xml"\n')
    (problem,) = load().problems
    assert (problem.file, problem.key) == (str(f), "cap")
    assert "cap.feed_url is set but the board's area is not" in problem.message


def test_the_check_refuses_the_cap_feed_the_cap_job_refuses_in_the_same_words(
        tmp_path: Path) -> None:
    """cap.feed_url meets the source's plain-http rule: the check used to pass a feed that
    the CAP job then refused at every poll."""
    from content_sync.cap.fetch import FetchError, check_insecure

    feed = "http://10.0.0.5/cap/feed.xml"
    f = write(tmp_path / "box.toml",
              f'[cap]\nfeed_url = "{feed}"\narea_names = ["Xã Pa Vệ Sủ"]\n'
              f'[cache]\ndir = "{tmp_path}/c"\n')
    check = eboard("config", "check", "--config", str(f))
    assert check.returncode == 1
    (line,) = problem_lines(check.stderr)
    with pytest.raises(FetchError) as e:
        check_insecure(feed, allow_insecure_http=False)
    assert line == f"{f}: cap.feed_url: {e.value}"
    assert "cap.allow_insecure_http" in line
    ok = write(tmp_path / "ok.toml",
               f'[cap]\nfeed_url = "{feed}"\nallow_insecure_http = true\n'
               f'area_names = ["Xã Pa Vệ Sủ"]\n[cache]\ndir = "{tmp_path}/c"\n')
    assert eboard("config", "check", "--config", str(ok)).returncode == 0


def test_cap_rules_over_several_keys_are_listed_with_the_tables_other_problems(
        tmp_path: Path) -> None:
    """A required signature without certificates, or a feed without the board's area, was
    hidden by any other problem of [cap] and read "cap: expected cap.require_signature…"."""
    f = write(tmp_path / "box.toml",
              '[cap]\nfeed_url = "file:///x.xml"\nrequire_signature = true\n'
              f'advisory_share = "0.5"\n[cache]\ndir = "{tmp_path}/c"\n')
    got = problem_lines(eboard("config", "check", "--config", str(f)).stderr)
    assert len(got) == 3, got
    assert any(line.startswith(f"{f}: cap.advisory_share: expected a valid number")
               for line in got), got
    assert f"{f}: cap.require_signature: cap.require_signature is on but cap.trusted_certs " \
           "is empty: list the PEM certificate files of the issuers, e.g. " \
           "['/etc/eboard/cap-kttv.pem']" in got
    assert any(line.startswith(f"{f}: cap: cap.feed_url is set but the board's area is not")
               for line in got), got


def test_cap_trusted_certs_are_relative_to_the_file_that_names_them(tmp_path: Path) -> None:
    """As the example file says for every path: a certificate named 'kttv.pem' beside the
    config was looked for in whatever folder the daemon ran from."""
    conf = tmp_path / "etc"
    f = write(conf / "box.toml",
              '[cap]\nfeed_url = "file:///x.xml"\narea_names = ["Xã Pa Vệ Sủ"]\n'
              f'trusted_certs = ["kttv.pem"]\n[cache]\ndir = "{tmp_path}/c"\n')
    loaded = load(f)
    assert loaded.problems == []
    assert loaded.config.cap.trusted_certs == [str(conf / "kttv.pem")]
