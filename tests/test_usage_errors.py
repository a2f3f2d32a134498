"""A wrong command line exits 2 with argparse's "eboard CMD: error: argument --FLAG: ..."
naming the flag and the form it wants, for every command: `eboard report` exited 1 for
an unreadable date, `doctor --skip` with an unknown check and `publish` to a URL without
its token exited 1 as if the box (or the publishing) had failed."""

from __future__ import annotations

import pytest

from eboard.cli import main


@pytest.mark.parametrize(("argv", "says"), [
    (["report", "--from", "1/11/2026", "--to", "2026-11-30"],
     "eboard report: error: argument --from: '1/11/2026' is not a date; write it as "
     "YYYY-MM-DD"),
    (["report", "--from", "2026-12-01", "--to", "2026-11-01"],
     "eboard report: error: argument --from: 2026-12-01 is after --to 2026-11-01; swap them"),
    (["doctor", "--skip", "clock,vidoe"],
     "eboard doctor: error: argument --skip: unknown check(s) to skip: vidoe (did you mean "
     "'video' for 'vidoe'?)"),
    (["publish", "--to", "https://httt.example.gov.vn/eboard/v1/", "--board", "a.b",
      "--key", "/nonexistent/key", "/nonexistent/playlist.toml"],
     "eboard publish: error: argument --token-file: publishing to a URL needs --token-file"),
    (["play", "--duration", "soon"],
     "eboard play: error: argument --duration: 'soon' is not a number of seconds"),
    (["play", "--duration", "-5"],
     "eboard play: error: argument --duration: -5 is not a positive number of seconds"),
])
def test_usage_errors_exit_2_naming_the_flag(capsys: pytest.CaptureFixture[str],
                                             argv: list[str], says: str) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    out = capsys.readouterr()
    assert says in out.err and out.out == "", out.err
