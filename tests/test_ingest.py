"""The incremental cache and parallel parsing change speed only: results are identical either way."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from costscope import ingest
from costscope.errors import CostscopeError, InputError
from costscope.io import InputFile, ReadError
from costscope.parse_cache import FileCache
from costscope.schema import PARSED_SCHEMA, STEP_SCHEMA, batch_from_rows, nulls, with_shared_nulls
from costscope.steps import load_steps, order_steps


def write_calls(path: Path, n: int, bad_line: bool = False) -> Path:
    lines = []
    for i in range(n):
        lines.append(
            json.dumps(
                {
                    "timestamp": f"2026-10-01T10:{i % 60:02d}:00Z",
                    "trace_id": f"{path.stem}-{i % 7}",
                    "response": {
                        "id": f"{path.stem}-r{i}",
                        "object": "chat.completion",
                        "model": "gpt-4o",
                        "usage": {"prompt_tokens": 100 + i, "completion_tokens": 10},
                    },
                }
            )
        )
    if bad_line:
        lines.insert(1, "{oops")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_second_run_is_served_from_the_cache_and_identical(tmp_path: Path) -> None:
    files = [str(write_calls(tmp_path / f"f{i}.jsonl", 50, bad_line=i == 1)) for i in range(3)]
    cache = tmp_path / "cache"
    cold = load_steps(files, cache_dir=cache)
    assert len(ingest.FileCache(cache)._index) == 3
    warm = load_steps(files, cache_dir=cache)
    assert warm.table.equals(cold.table)
    assert warm.skips.counts == cold.skips.counts and warm.skips.examples == cold.skips.examples
    assert warm.files == cold.files


def test_a_changed_file_is_parsed_again(tmp_path: Path) -> None:
    path = write_calls(tmp_path / "f.jsonl", 10)
    cache = tmp_path / "cache"
    assert load_steps([str(path)], cache_dir=cache).table.num_rows == 10
    write_calls(path, 12)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert load_steps([str(path)], cache_dir=cache).table.num_rows == 12


def test_strict_fails_on_a_cached_skip_too(tmp_path: Path) -> None:
    path = str(write_calls(tmp_path / "f.jsonl", 5, bad_line=True))
    cache = tmp_path / "cache"
    assert load_steps([path], cache_dir=cache).skips.total == 1
    with pytest.raises(InputError, match=r"f\.jsonl:2: malformed JSON"):
        load_steps([path], cache_dir=cache, strict=True)


def test_parallel_parsing_gives_the_same_result_in_input_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = [str(write_calls(tmp_path / f"f{i}.jsonl", 40 + i, bad_line=i % 2 == 0)) for i in range(5)]
    sequential = load_steps(files, workers=1)
    monkeypatch.setattr(ingest, "PARALLEL_MIN_BYTES", 0)
    parallel = load_steps(files, workers=2)
    assert parallel.table.equals(sequential.table)
    assert parallel.files == sequential.files
    assert parallel.skips.examples == sequential.skips.examples


def test_workers_hand_their_tables_over_in_files_they_leave_behind_none_of(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [str(write_calls(tmp_path / f"f{i}.jsonl", 30 + i)) for i in range(4)]
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setattr(ingest, "_spill_dir", lambda: str(spill))  # as where the system has no /dev/shm
    monkeypatch.setattr(ingest, "PARALLEL_MIN_BYTES", 0)
    parallel = load_steps(files, workers=2)
    assert parallel.table.equals(load_steps(files, workers=1).table)
    assert list(spill.iterdir()) == []


def test_a_chunk_that_cannot_be_spilled_comes_back_through_the_pipe(tmp_path: Path) -> None:
    path = write_calls(tmp_path / "f.jsonl", 9)
    jobs: list[ingest.Job] = [(InputFile(str(path), path), None, False, None)]
    table, _ = ingest._parse_chunk(jobs, spill=tmp_path / "no such directory")  # as when /dev/shm is full
    assert isinstance(table, pa.Table) and table.num_rows == 9
    spilled, _ = ingest._parse_chunk(jobs, spill=tmp_path)
    assert isinstance(spilled, Path) and ingest._unspill(spilled).equals(table) and not spilled.exists()


def test_errors_survive_the_trip_between_processes() -> None:
    error = pickle.loads(pickle.dumps(InputError("boom", hint="try this")))
    assert (error.message, error.hint) == ("boom", "try this")
    read = pickle.loads(pickle.dumps(ReadError("f.gz", 3, "cannot read further")))
    assert (read.source, read.line, read.reason) == ("f.gz", 3, "cannot read further")


def test_progress_reports_bytes(tmp_path: Path) -> None:
    files = [str(write_calls(tmp_path / f"f{i}.jsonl", 10)) for i in range(2)]
    seen: list[tuple[int, int]] = []
    load_steps(files, progress=lambda done, total: seen.append((done, total)))
    total = sum(Path(f).stat().st_size for f in files)
    # progress moves per chunk of files (about 8 MiB in one process), ending at the total
    assert seen[-1] == (total, total) and seen == sorted(seen)


def test_a_claude_session_is_parsed_again_when_its_subagents_change(tmp_path: Path) -> None:
    from costscope.parsers.claude_code import cache_dependencies

    session = tmp_path / "projects" / "demo" / "abc.jsonl"
    sub = tmp_path / "projects" / "demo" / "abc" / "subagents" / "agent-x.jsonl"
    assert cache_dependencies(session) == [session.parent / "abc" / "subagents"]
    assert cache_dependencies(sub) == [session]
    session.parent.mkdir(parents=True)
    write_calls(session, 3)
    store = ingest.FileCache(tmp_path / "cache")
    before = store.key(InputFile(str(session), session), None)
    sub.parent.mkdir(parents=True)
    sub.write_text("{}\n", encoding="utf-8")
    assert store.key(InputFile(str(session), session), None) != before


def test_entries_of_vanished_files_are_dropped(tmp_path: Path) -> None:
    keep = str(write_calls(tmp_path / "keep.jsonl", 5))
    gone = write_calls(tmp_path / "gone.jsonl", 5)
    cache = tmp_path / "cache"
    load_steps([keep, str(gone)], cache_dir=cache)
    gone.unlink()
    third = str(write_calls(tmp_path / "third.jsonl", 5))
    result = load_steps([keep, third], cache_dir=cache)
    assert result.table.num_rows == 10
    names = sorted(Path(m["path"]).name for m in ingest.FileCache(cache)._index.values())
    assert names == ["keep.jsonl", "third.jsonl"]


def test_cached_and_fresh_files_interleave_in_input_order(tmp_path: Path) -> None:
    paths = [write_calls(tmp_path / f"f{i}.jsonl", 20 + i) for i in range(4)]
    files = [str(p) for p in paths]
    cache = tmp_path / "cache"
    load_steps(files, cache_dir=cache)
    write_calls(paths[1], 7, bad_line=True)
    os.utime(paths[1], ns=(paths[1].stat().st_atime_ns, paths[1].stat().st_mtime_ns + 1_000_000))
    mixed = load_steps(files, cache_dir=cache)
    fresh = load_steps(files)
    assert mixed.table.equals(fresh.table)
    assert mixed.files == fresh.files and mixed.skips.examples == fresh.skips.examples


def test_a_big_file_parsed_in_parts_equals_one_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_calls(tmp_path / "big.jsonl", 500)
    with path.open("a", encoding="utf-8") as fh:  # damage in several parts: line numbers must stay exact
        fh.write("{oops\n" + json.dumps({"response": {"usage": {"prompt_tokens": -1}}}) + "\n")
    text = path.read_text(encoding="utf-8").splitlines()
    text.insert(137, "{broken")
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    whole = load_steps([str(path)], workers=1)
    monkeypatch.setattr(ingest, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(ingest, "SPLIT_MIN_BYTES", 0)
    split = load_steps([str(path)], workers=2)
    assert split.table.equals(whole.table)
    assert split.files == whole.files and split.skips.examples == whole.skips.examples
    assert split.skips.counts == whole.skips.counts and whole.skips.total == 3
    with pytest.raises(InputError, match=r"big\.jsonl:138: malformed JSON"):
        load_steps([str(path)], workers=2, strict=True)


def test_a_big_gzip_file_is_never_cut_at_compressed_offsets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = write_calls(tmp_path / "big.jsonl", 300)
    packed = tmp_path / "big.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes(), mtime=0))
    monkeypatch.setattr(ingest, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(ingest, "SPLIT_MIN_BYTES", 0)
    split = load_steps([str(packed)], workers=2)
    assert split.skips.total == 0
    assert split.table.num_rows == load_steps([str(plain)], workers=1).table.num_rows == 300


def _touch_later(path: Path, step_ns: int = 1_000_000) -> None:
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + step_ns))


def _cached_files(tmp_path: Path) -> tuple[list[Path], list[str], Path]:
    """16 files of 40 calls, parsed once into a fresh cache: (files, their names, the cache directory)."""
    files = [write_calls(tmp_path / f"f{i}.jsonl", 40) for i in range(16)]
    names = [str(f) for f in files]
    cache = tmp_path / "cache"
    load_steps(names, cache_dir=cache)
    return files, names, cache


def _store_files(cache: Path) -> dict[str, int]:
    return {p.name: p.stat().st_ino for p in cache.glob("parsed*.arrow")}


def test_a_few_changed_files_go_to_the_delta_and_the_base_stays(tmp_path: Path) -> None:
    files, names, cache = _cached_files(tmp_path)
    base = _store_files(cache)
    assert set(base) == {"parsed.arrow"}
    for n in (41, 42, 43):  # the active session grows, run after run
        write_calls(files[3], n)
        _touch_later(files[3])
        warm = load_steps(names, cache_dir=cache)
        assert warm.table.equals(load_steps(names).table)
        stores = _store_files(cache)
        assert stores["parsed.arrow"] == base["parsed.arrow"]  # not rewritten
        assert "parsed-delta.arrow" in stores
    store = ingest.FileCache(cache)
    assert len(store._index) == 16
    assert store._table is not None and store._table.num_rows == 16 * 40 + 43  # the old rows of f3 stay unused


def test_many_changed_files_rewrite_the_base_and_drop_the_delta(tmp_path: Path) -> None:
    files, names, cache = _cached_files(tmp_path)
    write_calls(files[0], 41)
    _touch_later(files[0])
    load_steps(names, cache_dir=cache)
    assert "parsed-delta.arrow" in _store_files(cache)
    for f in files[:4]:
        write_calls(f, 45)
        _touch_later(f, 2_000_000)
    warm = load_steps(names, cache_dir=cache)
    assert warm.table.equals(load_steps(names).table)
    assert set(_store_files(cache)) == {"parsed.arrow"}
    assert ingest.FileCache(cache)._table.num_rows == 4 * 45 + 12 * 40


def test_a_delta_of_another_base_is_ignored(tmp_path: Path) -> None:
    files, names, cache = _cached_files(tmp_path)
    write_calls(files[5], 41)
    _touch_later(files[5])
    load_steps(names, cache_dir=cache)
    delta = (cache / "parsed-delta.arrow").read_bytes()
    for f in files:  # a new base (every file changed), then the old delta put back beside it
        write_calls(f, 39)
        _touch_later(f, 3_000_000)
    load_steps(names, cache_dir=cache)
    (cache / "parsed-delta.arrow").write_bytes(delta)
    store = ingest.FileCache(cache)
    assert store._table is not None and store._table.num_rows == 16 * 39
    assert load_steps(names, cache_dir=cache).table.equals(load_steps(names).table)


def test_the_parse_cache_is_written_meanwhile_and_read_only_once_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_calls(tmp_path / "f.jsonl", 12)
    source = InputFile(str(path), path)
    cache = tmp_path / "cache"
    gate = threading.Event()
    save = FileCache.save

    def held_save(self: FileCache, *args: object) -> None:
        assert gate.wait(10)
        save(self, *args)

    monkeypatch.setattr(FileCache, "save", held_save)
    parsed = ingest.parse_files([source], format_in=None, strict=False, cache_dir=cache)
    assert parsed.saving is not None
    assert not (cache / FileCache.FILE).exists()  # still being written while the run goes on
    gate.set()
    store = FileCache(cache)  # waits for this process's save to the same directory
    key = store.key(source, None)
    assert key is not None
    hit = store.load(key, strict=False)
    assert hit is not None and hit.rows == 12


def test_a_failed_save_fails_the_run_that_waits_for_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_save(self: FileCache, *args: object) -> None:
        raise RuntimeError("a bug in the cache")

    monkeypatch.setattr(FileCache, "save", broken_save)
    with pytest.raises(RuntimeError, match="a bug in the cache"):
        load_steps([str(write_calls(tmp_path / "f.jsonl", 3))], cache_dir=tmp_path / "cache")


def test_the_store_keeps_chunks_with_their_own_dictionaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files parsed in several chunks (each with its dictionaries) and read back from the store give the same rows;
    the columns no file fills come back as nulls on the shared zeros, not on the stored file's pages."""
    files = [str(write_calls(tmp_path / f"f{i}.jsonl", 20 + i)) for i in range(4)]
    cache = tmp_path / "cache"
    sources = [InputFile(f, Path(f)) for f in files]
    monkeypatch.setattr(ingest, "SERIAL_CHUNK_BYTES", 1)  # a chunk per file
    parsed = ingest.parse_files(sources, format_in=None, strict=False, cache_dir=cache, workers=1)
    assert parsed.saving is not None
    parsed.saving.wait()
    store = ingest.FileCache(cache)
    assert store._table is not None and store._table.num_rows == parsed.table.num_rows == 86
    assert store._table.schema.equals(PARSED_SCHEMA)
    sources_of = [chunk.dictionary.to_pylist() for chunk in store._table["source"].chunks]
    assert len({tuple(d) for d in sources_of}) > 1  # chunks with dictionaries of their own
    assert order_steps(store._table).equals(order_steps(parsed.table))
    empty = [name for name in STEP_SCHEMA.names if store._table[name].null_count == 86]
    assert "reasoning_tokens" in empty or "tags" in empty
    zeros = nulls(1, pa.int64()).buffers()[1].address
    assert all(store._table[name].chunk(0).buffers()[0].address == zeros for name in empty)


def test_with_shared_nulls_changes_no_value() -> None:
    table = pa.table({"a": pa.array([None, None], pa.int64()), "b": pa.array(["x", None])})
    shared = with_shared_nulls(table)
    assert shared.equals(table)
    assert shared["a"].chunk(0).buffers()[1].address == nulls(1, pa.int64()).buffers()[1].address
    assert shared["b"].chunk(0).buffers()[1].address == table["b"].chunk(0).buffers()[1].address


@pytest.mark.parametrize("workers", [1, 2])
def test_meanwhile_runs_once_while_the_files_are_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    files = [str(write_calls(tmp_path / f"f{i}.jsonl", 30)) for i in range(4)]
    monkeypatch.setattr(ingest, "PARALLEL_MIN_BYTES", 0)
    calls: list[int] = []
    cache = tmp_path / "cache"
    first = load_steps(files, workers=workers, cache_dir=cache, meanwhile=lambda: calls.append(1))
    assert calls == [1]
    again = load_steps(files, workers=workers, cache_dir=cache, meanwhile=lambda: calls.append(2))  # all cached
    assert calls == [1, 2]
    assert again.table.equals(first.table)


def test_the_built_in_prices_load_while_the_files_are_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from costscope import api
    from costscope.pricing import PriceBook

    order: list[str] = []
    real_parse, real_book = ingest.parse_files, PriceBook.from_file

    def parse_files(*args: object, **kwargs: object) -> ingest.Parsed:
        order.append("parse")
        return real_parse(*args, **kwargs)  # type: ignore[arg-type]

    def from_file(path: str | None) -> PriceBook:
        order.append(f"book {path}")
        return real_book(path)

    monkeypatch.setattr("costscope.steps.parse_files", parse_files)
    monkeypatch.setattr(PriceBook, "from_file", staticmethod(from_file))
    monkeypatch.setattr(PriceBook, "preload", staticmethod(lambda: order.append("preload")))
    files = [str(write_calls(tmp_path / "f.jsonl", 10))]
    priced = api.load_priced_steps(files)
    assert order == ["book None", "parse", "preload"] and priced.pricing.table.num_rows == 10
    order.clear()
    with pytest.raises(CostscopeError):  # a price file's mistakes are told first, before any parsing
        api.load_priced_steps(files, api.AnalyzeOptions(prices=str(tmp_path / "missing.yaml")))
    assert order == [f"book {tmp_path / 'missing.yaml'}"]


def test_the_library_imports_genai_prices_and_pydantic_only_when_it_needs_them() -> None:
    """They take about 0.2 s to import: an analyze imports them while its inputs are parsed (`PriceBook.preload`)."""
    script = (
        "import sys, costscope.api as api\n"
        "from costscope.pricing import PriceBook\n"
        "book = PriceBook.from_file(None)\n"
        "print(sorted({'genai_prices', 'pydantic'} & set(sys.modules)))\n"
        "PriceBook.preload()\n"
        "print(sorted({'genai_prices', 'pydantic'} & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "['genai_prices', 'pydantic']"]


DATA = Path(__file__).parent / "data"


def _detected(source: InputFile, *, quick: bool) -> str:
    from costscope.parsers import QUICK_SNIFF_BYTES, detect

    try:
        if quick:
            return detect(source, source.prefix(QUICK_SNIFF_BYTES), quick=True).name
        return detect(source).name
    except InputError as error:
        return type(error).__name__


@pytest.mark.parametrize("path", sorted(p for p in DATA.rglob("*") if p.is_file()), ids=lambda p: p.name)
def test_a_short_prefix_detects_what_the_full_one_does(path: Path) -> None:
    data = path.read_bytes()
    lines = data.split(b"\n")
    variants = {
        "as is": data,
        "blank lines first": b"\n" * 6 + data,
        "a long second line": b"\n".join([lines[0], b'{"x": "' + b"y" * 20_000 + b'"}', *lines[1:]]),
        "a damaged first line": b"{oops\n" + data,
        "a first line past the short prefix": b'{"type": "' + b"z" * 9_000 + b'"}\n' + data,
    }
    for how, content in variants.items():
        source = InputFile(f"{path.name} ({how})", None, content)
        assert _detected(source, quick=True) == _detected(source, quick=False), how


def test_a_claude_code_session_is_known_from_its_first_lines() -> None:
    from costscope.parsers import _quick_detect

    sessions = [p for p in (DATA / "claude_code").rglob("*.jsonl") if p.read_bytes().count(b"\n") >= 5]
    assert sessions
    for path in sessions:
        found = _quick_detect(path.read_bytes()[:8192])
        assert found is not None and found.name == "claude-code", path.name


class _Held:
    def __init__(self, n: int, first: int = 0) -> None:
        self.lines = list(range(first, first + n))
        self.asked: list[list[tuple[int, int]]] = []

    def batch(self, ranges: list[tuple[int, int]]) -> pa.RecordBatch:
        self.asked.append(ranges)
        lines = [line for start, stop in ranges for line in self.lines[start:stop]]
        return batch_from_rows([{"source": "f", "line": line, "kind": "llm"} for line in lines])


def test_slices_of_held_rows_come_in_the_order_of_the_pieces() -> None:
    from costscope.parsers.base import Slice, table_of

    held, other = _Held(10), _Held(3, first=100)
    pieces: list[Any] = [
        Slice(held, 0, 2),
        Slice(held, 2, 4),  # contiguous with the last: one range
        Slice(held, 7, 9),
        [{"source": "g", "line": 50, "kind": "tool"}],  # a piece of another kind in between
        Slice(held, 4, 5),
        Slice(other, 0, 3),
        Slice(held, 5, 6),
    ]
    table = table_of(pieces)
    assert table.column("line").to_pylist() == [0, 1, 2, 3, 7, 8, 50, 4, 100, 101, 102, 5]
    assert held.asked == [[(0, 4), (7, 9), (4, 6)]] and other.asked == [[(0, 3)]]  # one batch each
    assert table_of([]).num_rows == 0


def _claude_line(session: str, n: int, agent: str | None = None) -> str:
    record = {
        "type": "assistant",
        "sessionId": session,
        "requestId": f"req_{session}_{n}",
        "timestamp": f"2026-03-01T10:00:{n:02d}.000Z",
        "message": {
            "id": f"msg_{session}_{n}",
            "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "tool_use", "id": f"toolu_{session}_{n}", "name": "Bash", "input": {}}],
            "usage": {
                "input_tokens": 1,
                "output_tokens": 2,
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 0,
            },
        },
    }
    if agent is not None:
        record.update(agentId=agent, isSidechain=True)
    return json.dumps(record) + "\n"


def _claude_tree(root: Path) -> list[Path]:
    project = root / "projects" / "-home-dev-x"
    (project / "s1" / "subagents").mkdir(parents=True)
    (project / "s1" / "subagents" / "agent-a1.jsonl").write_text("".join(_claude_line("s1", n, "a1") for n in range(3)))
    (project / "s1.jsonl").write_text("".join(_claude_line("s1", n) for n in range(10, 14)))
    (project / "s2.jsonl").write_text("".join(_claude_line("s2", n) for n in range(2)))
    return sorted(project.rglob("*.jsonl"))


def test_held_rows_past_the_text_limit_start_a_new_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Arrow's string offsets hold 2 GiB: held rows start anew before that (here after every file)."""
    from costscope.parsers import claude_fast

    files = _claude_tree(tmp_path)
    jobs = [(InputFile(str(p), p), None, False, None) for p in files]
    one, _ = ingest._parse_chunk(jobs)
    monkeypatch.setattr(claude_fast, "EPOCH_TEXT_BYTES", 0)
    several, _ = ingest._parse_chunk(jobs)
    assert several.equals(one)
    if claude_fast._scan is not None:
        assert several.column("line").num_chunks == 3


def test_a_chunk_of_claude_code_files_comes_back_as_one_batch(tmp_path: Path) -> None:
    """Sessions are parsed before their subagent files, which come first in input order: the rows of the chunk
    still make one batch, in input order."""
    from costscope.parsers import claude_fast

    files = _claude_tree(tmp_path)
    assert files[0].name == "agent-a1.jsonl"  # input order: the subagent file first
    table, results = ingest._parse_chunk([(InputFile(str(p), p), None, False, None) for p in files])
    assert [r.rows for r in results] == [6, 8, 4] and table.num_rows == 18
    assert table.column("source").to_pylist() == [
        str(p) for p, n in zip(files, [6, 8, 4], strict=True) for _ in range(n)
    ]
    if claude_fast._scan is not None:
        assert table.column("line").num_chunks == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_parsing_in_chunks_gives_the_rows_and_results_of_one_chunk_in_order(tmp_path: Path, workers: int) -> None:
    """`parse_in_chunks` (convert's parsing: bounded chunks, at most 2 × workers in flight) yields consecutive runs
    of the jobs, whose rows and results are those of parsing every job at once."""
    paths = [write_calls(tmp_path / f"f{i}.jsonl", 3 + i) for i in range(7)]
    paths += _claude_tree(tmp_path / "claude")
    jobs: list[ingest.Job] = [(InputFile(str(p), p), None, False, None) for p in paths]
    sizes = [p.stat().st_size for p in paths]
    whole, whole_results = ingest._parse_chunk(jobs)
    chunks = list(ingest.parse_in_chunks(jobs, sizes, workers, chunk_bytes=max(sizes) + 1))
    assert len(chunks) > 2 and [i for chunk, _, _ in chunks for i in chunk] == list(range(len(jobs)))
    assert _plain(pa.concat_tables([table for _, table, _ in chunks])).equals(_plain(whole))
    results = [r for _, _, chunk_results in chunks for r in chunk_results]
    assert [(r.name, r.format, r.records, r.rows, r.notes) for r in results] == [
        (r.name, r.format, r.records, r.rows, r.notes) for r in whole_results
    ]


def _plain(table: pa.Table) -> pa.Table:
    """The table with its dictionary-encoded columns decoded (each chunk's own dictionaries make `equals` differ)."""
    from costscope.schema import decoded

    return pa.Table.from_arrays([decoded(c) for c in table.columns], names=table.column_names)
