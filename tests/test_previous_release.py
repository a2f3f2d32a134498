"""Boards and data of the previous release (v0.1.0, commit 8161ee3) with this tree's server.

Two promises, each held through processes and HTTP only, so that they hold for any
server that answers ``eboard serve-source`` (the reference server is being rewritten):

1. A board running the previous release, unchanged, works against this tree's server:
   ``eboard sync --once`` fetches and keeps the manifest's media; the daemon's heartbeat
   is listed, the proof of play its player queued reaches the server, and a new publish
   reaches it through the events long-poll, long before its next manifest poll.
2. A data folder written by the previous release's server (manifests, media, tokens,
   ``.server/server.db``) is taken over by this tree's server without a board noticing:
   the same bytes are served, the boards seen are still listed with their last status,
   proof of play already received is still counted, a command queued before is still
   delivered, and event ids go on from the old ones, so a board that keeps its ``after``
   cursor in its own database across restarts receives the next publish.

The previous release is extracted once per session with ``git archive`` (a clone without
its history fails, saying so) and run with the venv's python and ``PYTHONPATH`` at it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.kit.previous_release import (
    CURRENT,
    Api,
    Lab,
    MissingHistory,
    OldBoard,
    Tree,
    extract_previous_release,
    free_port,
    manifest_payload,
    secret_file,
    sha256,
    write_playlist,
    write_tokens,
)

BOARD = "laichau.muongte.pavesu-01"
BOARD_TOKEN = "board-token-pavesu-01"
OPERATOR = "operator-token-province"
LONG_POLL_WITHIN_S = 15.0  # the board's manifest poll is 600 s away

pytestmark = pytest.mark.timeout(150)


@pytest.fixture(scope="session")
def previous(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    try:
        root = extract_previous_release(tmp_path_factory.mktemp("eboard-v0.1.0"))
    except MissingHistory as e:
        missing = str(e)
    else:
        return Tree(root, "v0.1.0")
    pytest.fail(missing, pytrace=False)


def test_a_board_of_the_previous_release_works_with_this_server(
        previous: Tree, tmp_path: Path) -> None:
    with Lab(tmp_path) as lab:
        private, public = lab.keys(CURRENT, tmp_path / "keys")
        tokens = write_tokens(tmp_path / "tokens.toml", OPERATOR, {BOARD: BOARD_TOKEN})
        operator_token = secret_file(tmp_path / "operator.token", OPERATOR + "\n")
        server = lab.serve_source(CURRENT, "server", tmp_path / "data", tokens, free_port())
        api = Api(server.url, OPERATOR, {BOARD: BOARD_TOKEN})
        first = write_playlist(tmp_path / "v1", (200, 30, 40))
        v1 = lab.publish(CURRENT, server.url, BOARD, private, first, operator_token)
        box = OldBoard.write(tmp_path / "box", BOARD, server.url, BOARD_TOKEN, public)

        # its one sync: verified, downloaded, activated, kept in its own layout
        lab.run(previous, "sync", "--once", "--config", str(box.config))
        assert box.active_version() == v1
        assert box.cached_media(sha256(first.image)) == first.image, \
            "the previous release's cache does not hold the image the manifest names"

        # its player's proof of play, queued before the daemon starts (it sends at start)
        played = box.queue_plays(lab, previous, 3, first.image_item, first.playlist_id, v1)
        assert box.outbox_size() == len(played)

        lab.start(previous, "board", "sync", "--config", str(box.config))
        lab.expect("the board's proof of play is counted by the server",
                   lambda: api.plays_summary(BOARD)["records"] == len(played), 20)
        lab.expect("the board's outbox is emptied: the server's answer acknowledged it",
                   lambda: box.outbox_size() == 0, 10)
        lab.expect(f"the server lists the board's heartbeat with version {v1} active",
                   lambda: api.reported_version(BOARD) == v1, 20)
        status = api.heartbeat(BOARD)
        assert status is not None and status.get("board") == BOARD, status
        events = api.events(BOARD, 0)["events"]
        assert events, "the server announced no event for the publish"
        announced = max(e["id"] for e in events)
        lab.expect("the board's long-poll took the events so far (its cursor, in its db)",
                   lambda: box.events_after() >= announced, 35)

        second = write_playlist(tmp_path / "v2", (20, 160, 60))
        published = time.monotonic()
        v2 = lab.publish(CURRENT, server.url, BOARD, private, second, operator_token)
        lab.expect(f"version {v2} is active on the board through the long-poll (its "
                   "manifest poll is 600 s away)", lambda: box.active_version() == v2,
                   LONG_POLL_WITHIN_S)
        assert time.monotonic() - published < LONG_POLL_WITHIN_S
        assert box.cached_media(sha256(second.image)) == second.image
        assert box.events_after() > announced


def test_this_server_takes_over_the_previous_release_data_folder(
        previous: Tree, tmp_path: Path) -> None:
    with Lab(tmp_path) as lab:
        private, public = lab.keys(previous, tmp_path / "keys")
        data = tmp_path / "data"
        tokens = write_tokens(tmp_path / "tokens.toml", OPERATOR, {BOARD: BOARD_TOKEN})
        operator_token = secret_file(tmp_path / "operator.token", OPERATOR + "\n")
        port = free_port()

        # --- the previous release's server, its publish, its board ----------------------
        old = lab.serve_source(previous, "old server", data, tokens, port)
        api = Api(old.url, OPERATOR, {BOARD: BOARD_TOKEN})
        first = write_playlist(tmp_path / "v1", (200, 30, 40))
        v1 = lab.publish(previous, old.url, BOARD, private, first, operator_token)
        box = OldBoard.write(tmp_path / "box", BOARD, old.url, BOARD_TOKEN, public)
        played = box.queue_plays(lab, previous, 2, first.image_item, first.playlist_id, v1)
        board = lab.start(previous, "board", "sync", "--config", str(box.config))
        lab.expect(f"version {v1} is active on the board", lambda: box.active_version() == v1,
                   20)
        lab.expect("the old server counts the board's proof of play",
                   lambda: api.plays_summary(BOARD)["records"] == len(played), 20)
        # a command while the board is up: through the long-poll, answered in a heartbeat
        done = api.post_command(BOARD, "sync_now")
        lab.expect("the old server has the answer to the first command",
                   lambda: api.answered(BOARD, done["id"]), 20)
        lab.expect("the old server lists the board's heartbeat with its version",
                   lambda: api.reported_version(BOARD) == v1, 20)
        events = api.events(BOARD, 0)["events"]
        assert events, "the old server announced no event for the publish"
        seen = max(e["id"] for e in events)
        lab.expect("the board's long-poll took the old server's events (its cursor)",
                   lambda: box.events_after() == seen, 35)
        assert board.stop() == 0, "the board did not stop cleanly"
        cursor = box.events_after()

        # a command for the board while it is off: queued, not delivered
        waiting = api.post_command(BOARD, "sync_now")
        queued = api.command(BOARD, waiting["id"])
        assert queued is not None and queued["state"] == "queued", queued
        old_max = max(e["id"] for e in api.events(BOARD, 0)["events"])
        assert old_max > cursor, "the command made no event on the old server"

        manifest = api.get(f"boards/{BOARD}/manifest.json")
        media = api.get(f"media/{sha256(first.image)}")
        assert manifest.status_code == media.status_code == 200
        assert manifest_payload(manifest.content)["version"] == v1
        listed = api.listed(BOARD)
        assert listed is not None
        summary = api.plays_summary(BOARD)
        old.proc.stop()
        assert (data / ".server" / "server.db").is_file(), "the old server kept no database"

        # --- this tree's server on the same folder, tokens and port --------------------
        server = lab.serve_source(CURRENT, "server", data, tokens, port)
        assert server.url == api.url  # the boards' source.url is unchanged
        again = api.get(f"boards/{BOARD}/manifest.json")
        assert again.status_code == 200 and again.content == manifest.content, \
            "the manifest published through the old server is not served as it was"
        etag = manifest.headers.get("ETag")
        if etag:  # a 304 or the same bytes: either way the board keeps what it has
            conditional = api.get(f"boards/{BOARD}/manifest.json",
                                  headers={"If-None-Match": etag})
            assert conditional.status_code in (200, 304), conditional
            if conditional.status_code == 200:
                assert conditional.content == manifest.content
        served = api.get(f"media/{sha256(first.image)}")
        assert served.status_code == 200 and served.content == media.content == first.image
        now_listed = api.listed(BOARD)
        assert now_listed is not None, "the board the old server saw is not listed"
        assert now_listed.get("status") == listed.get("status"), \
            f"the board's last status changed in the takeover:\n{listed}\n{now_listed}"
        assert api.plays_summary(BOARD) == summary, "proof of play received before is lost"
        assert api.answered(BOARD, done["id"]), "the answered command lost its answer"
        still = api.command(BOARD, waiting["id"])
        assert still is not None and still["state"] == "queued", \
            f"the command queued through the old server is not queued any more: {still}"

        # the board comes back with its cursor: the command reaches it, then a publish
        lab.start(previous, "board again", "sync", "--config", str(box.config))
        answered = lab.expect("the command queued before the takeover is delivered and "
                              "answered", lambda: api.answered(BOARD, waiting["id"]), 20)
        assert answered["result"]["ok"] is True, answered
        result = box.command_result(waiting["id"])
        assert result is not None and result["state"] == "done", result
        assert box.events_after() >= cursor, "the board's cursor went back"

        second = write_playlist(tmp_path / "v2", (20, 160, 60))
        v2 = lab.publish(CURRENT, server.url, BOARD, private, second, operator_token)
        new = [e for e in api.events(BOARD, old_max, wait=10)["events"]
               if e.get("type") == "manifest"]
        assert new and all(e["id"] > old_max for e in new), \
            f"no manifest event above the old server's ids ({old_max}): {new}"
        lab.expect(f"version {v2} reaches the board (its cursor {cursor} kept across the "
                   "takeover) through the long-poll", lambda: box.active_version() == v2,
                   LONG_POLL_WITHIN_S)
        assert box.cached_media(sha256(second.image)) == second.image
        assert box.events_after() >= max(e["id"] for e in new)
