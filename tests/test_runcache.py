"""The run cache: the `costscope` program replays a report whose inputs did not change, and only then."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from costscope import cli, launch, runcache

DATA = Path(__file__).parent / "data" / "claude_code"
OLD = time.time() - 3600


def _age(root: Path) -> None:
    """Give every path under `root` an old mtime (a fresh file is racy and is never recorded)."""
    for path in [root, *root.rglob("*")]:
        os.utime(path, (OLD, OLD))


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "logs"
    shutil.copytree(DATA, root)
    _age(root)
    monkeypatch.setenv("COSTSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    return root


def _run(argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[str, bool]:
    """(stdout, whether the run was replayed) of the program on `argv`."""
    ran: list[bool] = []
    real = cli.main

    def full_run() -> None:
        ran.append(True)
        real()

    monkeypatch.setattr(cli, "main", full_run)
    monkeypatch.setattr("sys.argv", ["costscope", *argv])
    with pytest.raises(SystemExit) as exit_:
        launch.main()
    assert exit_.value.code in (0, None)
    return capsys.readouterr().out, not ran


def _records(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / "runs").glob("*.json"))


def test_unchanged_inputs_are_replayed_byte_for_byte(tree, tmp_path, monkeypatch, capsys):
    argv = ["analyze", str(tree), "-f", "json", "--by", "agent"]
    first, replayed = _run(argv, monkeypatch, capsys)
    assert not replayed and json.loads(first)["totals"]["calls"] > 0
    again, replayed = _run(argv, monkeypatch, capsys)
    assert replayed
    assert again == first
    assert len(_records(tmp_path)) == 1


def test_other_arguments_are_another_run(tree, monkeypatch, capsys):
    _run(["analyze", str(tree), "-f", "json"], monkeypatch, capsys)
    _, replayed = _run(["analyze", str(tree), "-f", "csv"], monkeypatch, capsys)
    assert not replayed


@pytest.mark.parametrize("change", ["append", "add", "remove"])
def test_a_changed_input_runs_again(tree, monkeypatch, capsys, change):
    argv = ["analyze", str(tree), "-f", "json"]
    first, _ = _run(argv, monkeypatch, capsys)
    log = next(tree.rglob("*.jsonl"))
    if change == "append":
        with log.open("a") as fh:
            fh.write("\n")
        os.utime(log, (OLD + 10, OLD + 10))  # even with an old mtime: the size changed
    elif change == "add":
        shutil.copy(log, log.with_name("copy-" + log.name))
    else:
        log.unlink()
    again, replayed = _run(argv, monkeypatch, capsys)
    assert not replayed
    if change == "append":
        assert again == first  # a blank line changes nothing, but it had to be read to know


def test_a_file_written_during_the_run_is_not_recorded(tree, tmp_path, monkeypatch, capsys):
    os.utime(next(tree.rglob("*.jsonl")))  # modified just now: it may still be being written
    _run(["analyze", str(tree), "-f", "json"], monkeypatch, capsys)
    assert _records(tmp_path) == []


@pytest.mark.parametrize("extra", [["--no-cache"], ["--output", "steps.parquet"]])
def test_runs_that_must_not_be_replayed_are_not_recorded(tree, tmp_path, monkeypatch, capsys, extra):
    monkeypatch.chdir(tmp_path)
    _run(["analyze", str(tree), "-f", "json", *extra], monkeypatch, capsys)
    assert _records(tmp_path) == []


def test_a_failed_run_is_not_recorded(tree, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["costscope", "analyze", str(tree / "missing.jsonl")])
    with pytest.raises(SystemExit) as exit_:
        launch.main()
    assert exit_.value.code == 2
    assert _records(tmp_path) == []


def test_the_price_file_is_a_dependency(tree, tmp_path, monkeypatch, capsys):
    prices = tmp_path / "prices.yaml"
    prices.write_text("version: 1\nmodels: []\n")
    os.utime(prices, (OLD, OLD))
    argv = ["analyze", str(tree), "-f", "json", "--prices", str(prices)]
    _run(argv, monkeypatch, capsys)
    assert _run(argv, monkeypatch, capsys)[1]
    os.utime(prices, (OLD + 10, OLD + 10))
    assert not _run(argv, monkeypatch, capsys)[1]


def test_records_beyond_the_limit_are_pruned(tree, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runcache, "KEEP_RUNS", 2)
    for top in ("1", "2", "3"):
        _run(["analyze", str(tree), "-f", "json", "--top", top], monkeypatch, capsys)
    assert len(_records(tmp_path)) == 2


def test_the_key_covers_the_environment_but_not_shell_bookkeeping(monkeypatch):
    key = runcache.run_key(["analyze", "x"])
    monkeypatch.setenv("OLDPWD", "/somewhere/else")
    assert runcache.run_key(["analyze", "x"]) == key
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", "/other")
    assert runcache.run_key(["analyze", "x"]) != key


def test_a_replay_into_a_closed_pipe_exits_quietly(tree, monkeypatch, capsys):
    argv = ["analyze", str(tree), "-f", "json"]
    _run(argv, monkeypatch, capsys)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone, as after `| head`
    with os.fdopen(write_end, "w") as closed:
        monkeypatch.setattr("sys.stdout", closed)
        monkeypatch.setattr("sys.argv", ["costscope", *argv])
        with pytest.raises(SystemExit) as exit_:
            launch.main()
    assert exit_.value.code == 1
