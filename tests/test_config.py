"""kiosk_config: layering, every kind of error message, the example file, the CLI."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from kiosk_config import ConfigError, load, load_config, read_token, render
from kiosk_config.schema import Config
from kiosk_config.secrets import SecretFileError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "kiosk_config" / "eboard.example.toml"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    return [str(p) for p in load(path).problems]


def test_defaults_only_is_valid() -> None:
    result = load()
    assert result.problems == []
    assert result.config is not None
    assert result.config.timezone == "Asia/Ho_Chi_Minh"


def test_layers_apply_in_order(_isolated_etc: Path, tmp_path: Path) -> None:
    write(_isolated_etc / "eboard.toml", '[board]\nid = "a.b"\nname = "Xã A"\n')
    write(_isolated_etc / "conf.d" / "10-display.toml", '[display]\ngeometry = "768x384+0+0"\n')
    write(_isolated_etc / "conf.d" / "20-name.toml", '[board]\nname = "Xã B"\n')
    extra = write(tmp_path / "extra.toml", '[board]\nid = "c.d"\n')
    result = load(extra)
    assert result.problems == []
    cfg = result.config
    assert cfg is not None
    assert (cfg.board.id, cfg.board.name) == ("c.d", "Xã B")
    assert cfg.display.rect() == (768, 384, 0, 0)
    assert result.origins["board.name"].endswith("20-name.toml")
    assert result.origins["board.id"] == str(extra)


def test_unknown_key_names_file_key_and_suggestion(tmp_path: Path) -> None:
    f = write(tmp_path / "box.toml", '[source]\nurll = "http://127.0.0.1/"\n')
    (msg,) = problems_of(f)
    assert msg.startswith(f"{f}: source.urll: unknown key")
    assert "did you mean 'source.url'?" in msg


def test_unknown_section_suggests(tmp_path: Path) -> None:
    f = write(tmp_path / "box.toml", '[dispaly]\ngeometry = "fullscreen"\n')
    (msg,) = problems_of(f)
    assert "dispaly" in msg and "did you mean 'display'?" in msg


def test_bad_value_names_file_key_and_what_was_expected(tmp_path: Path) -> None:
    f = write(tmp_path / "box.toml", '[display]\ngeometry = "1920x1080"\n')
    (msg,) = problems_of(f)
    assert msg.startswith(f"{f}: display.geometry: expected 'fullscreen' or a rectangle WxH+X+Y")
    assert "'1920x1080'" in msg


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ('timezone = "Asia/Hanoi_City"', "timezone", "IANA timezone"),
        ('[source]\nurl = "ftp://x/"', "source.url", "http://, https:// or file://"),
        ('[board]\nid = "Bad ID!"', "board.id", "lowercase letters"),
        ("[display]\nrotation = 45", "display.rotation", "0, 90, 180 or 270"),
        ('[display]\non_hours = "6h-22h"', "display.on_hours", "HH:MM-HH:MM"),
        ('[source]\npoll_interval = "soon"', "source.poll_interval", "integer"),
        ("[source]\npoll_interval = 1", "source.poll_interval", "greater than or equal to 5"),
        ('board = "x"', "board", "table"),
    ],
)
def test_each_kind_of_bad_value(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    f = write(tmp_path / "box.toml", text + "\n")
    msgs = problems_of(f)
    assert msgs, "expected a problem"
    assert any(m.startswith(f"{f}: {key}") and fragment in m for m in msgs), msgs


def test_not_toml_names_the_file(tmp_path: Path) -> None:
    f = write(tmp_path / "box.toml", "[board\nid = 1\n")
    (msg,) = problems_of(f)
    assert msg.startswith(f"{f}: -: not valid TOML")


def test_missing_file(tmp_path: Path) -> None:
    (msg,) = problems_of(tmp_path / "nope.toml")
    assert "file not found" in msg


def test_relative_paths_resolve_against_the_file(tmp_path: Path) -> None:
    f = write(tmp_path / "sub" / "box.toml",
              '[source]\ntrusted_keys = ["keys/a.pub"]\n[cache]\ndir = "state"\n')
    cfg = load_config(f)
    assert cfg.source.trusted_keys == [str(tmp_path / "sub" / "keys" / "a.pub")]
    assert cfg.cache_dir == tmp_path / "sub" / "state"


def test_load_config_raises_with_every_problem(tmp_path: Path) -> None:
    f = write(tmp_path / "box.toml", '[display]\nrotation = 45\ngeometry = "big"\n')
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert len(e.value.problems) == 2


def test_example_file_is_valid_and_documents_every_key() -> None:
    result = load(files=[EXAMPLE])
    assert result.problems == []
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))

    def keys_of(model: type, prefix: str = "") -> set[str]:
        out = set()
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            ann = field.annotation
            if isinstance(ann, type) and hasattr(ann, "model_fields"):
                out |= keys_of(ann, f"{prefix}{name}.")
            else:
                out.add(prefix + name)
        return out

    def keys_in(d: dict, prefix: str = "") -> set[str]:
        out = set()
        for k, v in d.items():
            out |= keys_in(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k}
        return out

    assert keys_of(Config) == keys_in(data)
    # Every key is preceded by a comment line.
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            j = i - 1
            while j >= 0 and not lines[j].startswith("#") and "=" in lines[j]:
                j -= 1
            assert j >= 0 and lines[j].startswith("#"), f"undocumented key: {line}"


def test_render_masks_credentials_in_urls(tmp_path: Path) -> None:
    f = write(tmp_path / "box.toml", '[source]\nproxy = "http://user:s3cret@proxy:3128"\n')
    text = render(load(f))
    assert "s3cret" not in text
    assert "proxy = \"http://user:********@proxy:3128\"" in text


def test_token_file_must_be_private(tmp_path: Path) -> None:
    tok = tmp_path / "board.token"
    tok.write_text("abc\n")
    tok.chmod(0o644)
    with pytest.raises(SecretFileError, match="chmod 600"):
        read_token(tok)
    tok.chmod(0o600)
    assert read_token(tok) == "abc"
    with pytest.raises(SecretFileError, match="does not exist"):
        read_token(tmp_path / "none")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eboard", *args], capture_output=True,
                          text=True, check=False, cwd=ROOT)


def test_config_check_cli_clean_and_bad(tmp_path: Path) -> None:
    good = write(tmp_path / "good.toml", '[board]\nid = "x.y"\nname = "Xã Ê"\n')
    r = run_cli("config", "check", "--config", str(good))
    assert r.returncode == 0, r.stderr
    assert 'name = "Xã Ê"    # from ' in r.stdout
    bad = write(tmp_path / "bad.toml", '[board]\nidd = "x"\n')
    r = run_cli("config", "check", "--config", str(bad))
    assert r.returncode == 1
    assert f"{bad}: board.idd: unknown key" in r.stderr
    assert "did you mean 'board.id'?" in r.stderr


def test_other_commands_refuse_a_bad_config(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.toml", '[display]\ngeometry = "huge"\n')
    r = run_cli("status", "--config", str(bad))
    assert r.returncode == 2
    assert f"{bad}: display.geometry: expected" in r.stderr
