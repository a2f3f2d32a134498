"""What the three atheris harnesses share: seeding the corpus and libFuzzer's defaults.

A harness is run as a script::

    .venv/bin/python fuzz/fuzz_cap.py [CORPUS_DIR ...] [-max_total_time=60 | -runs=N] [...]

Before fuzzing, the harness writes its seed inputs (``seed-*``) into the first corpus
folder (``fuzz/corpus/NAME/`` when none is given; ignored by git), so a fresh clone
starts from real inputs. libFuzzer adds the inputs it finds interesting to that
folder, and writes a failing input to ``fuzz/artifacts/NAME-crash-…`` (or ``-timeout-``,
``-oom-``) unless ``-artifact_prefix`` says otherwise. Given a file instead of a
folder, it runs that one input (to reproduce a crash).

Defaults, each overridden by giving the flag: ``-timeout=10`` (an input taking longer
is a hang), ``-rss_limit_mb=2048``, ``-max_len=65536``, ``-dict=fuzz/NAME.dict`` (the
format's tokens and the project's own words, to splice into inputs).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
"""Read-only documents beside the clone; may be absent (CI): used when present, never copied."""

DEFAULT_FLAGS = ("-timeout=10", "-rss_limit_mb=2048", "-max_len=65536")


def one_line(e: BaseException) -> None:
    """The project's errors carry one non-empty line a technician can act on."""
    msg = str(e)
    assert msg and "\n" not in msg, f"{type(e).__name__} message is not one line: {msg!r}"


def _argv(name: str, seeds: Mapping[str, bytes]) -> list[str]:
    argv = list(sys.argv)
    positional = [a for a in argv[1:] if not a.startswith("-")]
    flags = {a.split("=", 1)[0] for a in argv[1:] if a.startswith("-")}
    if not positional:
        positional = [str(ROOT / "fuzz" / "corpus" / name)]
        argv.append(positional[0])
    corpus = Path(positional[0])
    if not corpus.is_file():  # a file is one input to run again, not a corpus
        corpus.mkdir(parents=True, exist_ok=True)
        for seed, data in seeds.items():
            (corpus / f"seed-{seed}").write_bytes(data)
    extra = [f for f in DEFAULT_FLAGS if f.split("=", 1)[0] not in flags]
    dictionary = ROOT / "fuzz" / f"{name}.dict"
    if "-dict" not in flags and dictionary.is_file():
        extra.append(f"-dict={dictionary}")
    if "-artifact_prefix" not in flags:
        artifacts = ROOT / "fuzz" / "artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        extra.append(f"-artifact_prefix={artifacts}/{name}-")
    return argv[:1] + extra + argv[1:]


def main(name: str, test_one_input: Callable[[bytes], None],
         seeds: Callable[[], Mapping[str, bytes]]) -> None:
    """Seed the corpus, then fuzz ``test_one_input`` until libFuzzer stops (it exits)."""
    import atheris

    atheris.Setup(_argv(name, seeds()), test_one_input)
    atheris.Fuzz()
