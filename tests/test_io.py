"""Finding and opening inputs: directories, globs, missing paths, gzip and stdin."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import orjson
import pytest

from costscope import load_steps
from costscope.errors import InputError
from costscope.io import InputFile, expand_paths, iter_lines

CALL = {
    "object": "chat.completion",
    "model": "gpt-4o",
    "usage": {"prompt_tokens": 100, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 64}},
}
LINE = orjson.dumps(CALL) + b"\n"


def touch(path: Path, data: bytes = LINE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_directory_is_scanned_recursively_sorted_and_non_trace_files_are_ignored(tmp_path: Path) -> None:
    root = tmp_path / "traces"
    touch(root / "b.jsonl")
    touch(root / "a.ndjson")
    touch(root / "sub" / "deeper" / "c.json")
    touch(root / "sub" / "d.jsonl.gz", gzip.compress(LINE))
    touch(root / "z.log")
    touch(root / "notes.txt", b"hello\n")
    touch(root / "sub" / "image.png", b"\x89PNG")
    touch(root / ".hidden.jsonl")
    expanded = expand_paths([str(root)])
    names = [Path(f.name).relative_to(root).as_posix() for f in expanded.files]
    assert names == ["a.ndjson", "b.jsonl", "sub/d.jsonl.gz", "sub/deeper/c.json", "z.log"]
    assert all(f.path is not None for f in expanded.files)
    ignored = sorted(Path(p).relative_to(root).as_posix() for p in expanded.ignored)
    assert "notes.txt" in ignored
    assert "sub/image.png" in ignored
    assert ".hidden.jsonl" not in names


def test_directory_order_is_stable_across_calls(tmp_path: Path) -> None:
    for name in ["m.jsonl", "a.jsonl", "k/b.jsonl", "k.jsonl"]:
        touch(tmp_path / name)
    first = [f.name for f in expand_paths([str(tmp_path)]).files]
    second = [f.name for f in expand_paths([str(tmp_path)]).files]
    assert first == second
    assert len(first) == 4


def test_glob_pattern(tmp_path: Path) -> None:
    touch(tmp_path / "run-2.jsonl")
    touch(tmp_path / "run-1.jsonl")
    touch(tmp_path / "other.jsonl")
    touch(tmp_path / "deep" / "run-3.jsonl")
    expanded = expand_paths([str(tmp_path / "run-*.jsonl")])
    assert [Path(f.name).name for f in expanded.files] == ["run-1.jsonl", "run-2.jsonl"]
    recursive = expand_paths([str(tmp_path / "**" / "run-*.jsonl")])
    assert sorted(Path(f.name).name for f in recursive.files) == ["run-1.jsonl", "run-2.jsonl", "run-3.jsonl"]


def test_glob_matching_nothing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no file matches"):
        expand_paths([str(tmp_path / "*.jsonl")])


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(InputError) as info:
        expand_paths([str(missing)])
    assert str(missing) in str(info.value)
    assert info.value.hint is not None


def test_directory_without_trace_files_is_an_error(tmp_path: Path) -> None:
    touch(tmp_path / "readme.md", b"# hi\n")
    with pytest.raises(InputError, match="no trace files"):
        expand_paths([str(tmp_path)])


def test_the_same_file_given_twice_is_read_once(tmp_path: Path) -> None:
    path = touch(tmp_path / "a.jsonl")
    expanded = expand_paths([str(path), str(tmp_path), str(tmp_path / "*.jsonl")])
    assert len(expanded.files) == 1


def test_explicit_file_with_any_ending_is_read(tmp_path: Path) -> None:
    path = touch(tmp_path / "calls.txt")
    result = load_steps([str(path)])
    assert result.table.num_rows == 1


def test_gzip_is_read_transparently(tmp_path: Path) -> None:
    path = touch(tmp_path / "calls.jsonl.gz", gzip.compress(LINE * 3))
    result = load_steps([str(path)])
    assert result.table.num_rows == 3
    assert result.table["input_tokens"].to_pylist() == [100, 100, 100]
    assert result.table["cache_read_tokens"].to_pylist() == [64, 64, 64]
    assert result.files[0].format == "openai"
    assert result.table["line"].to_pylist() == [1, 2, 3]


def test_gzip_detected_by_magic_bytes_not_name(tmp_path: Path) -> None:
    path = touch(tmp_path / "calls.jsonl", gzip.compress(LINE))
    assert load_steps([str(path)]).table.num_rows == 1


def test_truncated_gzip_is_a_counted_skip_or_a_strict_error(tmp_path: Path) -> None:
    data = gzip.compress(LINE * 200)
    path = touch(tmp_path / "broken.jsonl.gz", data[: len(data) // 2])
    result = load_steps([str(path)])
    assert result.skips.total == 1 and "broken.jsonl.gz" in result.skips.examples[0]
    with pytest.raises(InputError, match="broken.jsonl.gz"):
        load_steps([str(path)], strict=True)


def test_stdin_dash() -> None:
    expanded = expand_paths(["-"], stdin=io.BytesIO(LINE + LINE))
    (source,) = expanded.files
    assert source.name == "<stdin>"
    assert source.path is None
    assert [n for n, _ in iter_lines(source)] == [1, 2]


def test_stdin_is_loaded_and_named(tmp_path: Path) -> None:
    result = load_steps(["-"], stdin=io.BytesIO(LINE + b"{broken\n"))
    assert result.table.num_rows == 1
    assert result.table["source"].to_pylist() == ["<stdin>"]
    assert result.skips.examples[0].startswith("<stdin>:2: ")


def test_gzipped_stdin() -> None:
    result = load_steps(["-"], stdin=io.BytesIO(gzip.compress(LINE * 2)))
    assert result.table.num_rows == 2


def test_iter_lines_skips_blank_lines_but_keeps_numbering(tmp_path: Path) -> None:
    path = touch(tmp_path / "a.jsonl", LINE + b"\n   \n" + LINE)
    assert [n for n, _ in iter_lines(InputFile(name=str(path), path=path))] == [1, 4]


def test_empty_file_is_reported_not_failed(tmp_path: Path) -> None:
    touch(tmp_path / "empty.jsonl", b"")
    touch(tmp_path / "full.jsonl")
    result = load_steps([str(tmp_path)])
    assert result.table.num_rows == 1
    formats = {Path(f.name).name: f.format for f in result.files}
    assert formats == {"empty.jsonl": "empty", "full.jsonl": "openai"}
    assert result.notes.get("empty files") == 1


def test_unrecognized_format_suggests_format_in(tmp_path: Path) -> None:
    path = touch(tmp_path / "x.jsonl", b'{"hello": "world"}\n')
    with pytest.raises(InputError) as info:
        load_steps([str(path)])
    assert "x.jsonl" in str(info.value)
    assert info.value.hint is not None and "--format-in" in info.value.hint


def test_open_missing_file_is_an_input_error(tmp_path: Path) -> None:
    source = InputFile(name="gone.jsonl", path=tmp_path / "gone.jsonl")
    with pytest.raises(InputError, match="gone.jsonl"):
        source.prefix()
