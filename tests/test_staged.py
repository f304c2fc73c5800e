"""`analyze --staged`: trace files analyzed in memory bounded by chunk sizes (`costscope.staged`) give the report of
the in-memory analyze, whatever the buckets and processes."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from costscope import api, staged
from costscope.api import AnalyzeOptions
from costscope.cli import app
from costscope.errors import ConfigError, InputError
from costscope.io import expand_paths
from costscope.render import RENDERERS
from costscope.schema import empty_table
from costscope.staging import Stage, bucket_steps
from costscope.steps import Filters

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SAMPLES = str(ROOT / "sample_traces")
CLAUDE = str(DATA / "claude_code" / "projects")
PRICES = ROOT / "sample_traces" / "prices.yaml"
runner = CliRunner()


DEFAULT = AnalyzeOptions()


def in_memory(paths: list[str], options: AnalyzeOptions = DEFAULT) -> str:
    steps = api.load_priced_steps(paths, options)
    return RENDERERS["json"](api.build_report(steps, options), 100)


def staged_json(paths: list[str], options: AnalyzeOptions = DEFAULT, **limits: int) -> str:
    report, _ = staged.analyze(expand_paths(paths), options, **limits)
    return RENDERERS["json"](report, 100)


@pytest.mark.parametrize(
    ("paths", "options"),
    [
        ([SAMPLES], AnalyzeOptions(by=("model", "agent", "tenant", "day"), top=7)),
        ([SAMPLES], AnalyzeOptions(by=("trace",), top=3, filters=Filters(since="2026-10-20", models=("claude-*",)))),
        (
            [SAMPLES],
            AnalyzeOptions(prices=str(ROOT / "sample_traces" / "prices.yaml"), filters=Filters(agents=("coder",))),
        ),
        ([CLAUDE], AnalyzeOptions(by=("agent", "trace"))),  # a response logged in two files, subagent files
        ([str(DATA)], AnalyzeOptions(by=("model", "tenant"))),  # every format in one run
    ],
)
@pytest.mark.parametrize(("workers", "buckets"), [(1, 1), (1, 7), (2, 5)])
def test_the_staged_report_is_the_in_memory_one(
    paths: list[str], options: AnalyzeOptions, workers: int, buckets: int
) -> None:
    want = in_memory(paths, options)
    bucket_bytes = -(-staged.total_bytes(expand_paths(paths)) // buckets)
    assert staged_json(paths, options, workers=workers, bucket_bytes=bucket_bytes) == want
    assert orjson.loads(want)["totals"]["calls"] > 0


def test_duplicates_across_files_are_dropped_and_told_as_in_memory() -> None:
    got = orjson.loads(staged_json([CLAUDE], workers=2, bucket_bytes=1024))
    assert got["inputs"]["duplicates_dropped"] > 0
    assert got["inputs"]["duplicate_examples"] == orjson.loads(in_memory([CLAUDE]))["inputs"]["duplicate_examples"]


def test_skipped_records_are_counted_and_strict_fails(jsonl_file: Callable[..., str], tmp_path: Path) -> None:
    good = (DATA / "calls" / "mixed_gateway.jsonl").read_text(encoding="utf-8")
    path = jsonl_file(['{"truncated": ', *good.splitlines(), "not json"], name="logs/calls.jsonl")
    got = orjson.loads(staged_json([path], workers=2, bucket_bytes=512))
    assert got["inputs"]["records_skipped"] == 2 and f"{path}:1" in got["inputs"]["skipped_examples"][0]
    assert got == orjson.loads(in_memory([path]))
    with pytest.raises(InputError, match=r"calls\.jsonl:1"):
        staged.analyze(expand_paths([path]), AnalyzeOptions(strict=True), workers=2)


def test_no_trace_in_a_known_format_fails_as_in_memory(tmp_path: Path) -> None:
    (tmp_path / "notes.jsonl").write_text('{"hello": "world"}\n', encoding="utf-8")
    with pytest.raises(InputError) as memory:
        api.load_priced_steps([str(tmp_path)], AnalyzeOptions())
    with pytest.raises(InputError) as staged_error:
        staged.analyze(expand_paths([str(tmp_path)]), AnalyzeOptions())
    assert str(staged_error.value) == str(memory.value)


def test_inputs_without_calls(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    got = staged_json([str(tmp_path)])
    assert got == in_memory([str(tmp_path)]) and orjson.loads(got)["totals"]["calls"] == 0


def test_the_staging_directory_goes_away(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, jsonl_file: Callable[..., str]
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    staged_json([SAMPLES], workers=2, bucket_bytes=1 << 20)
    assert os.listdir(temp) == []
    bad = jsonl_file(["not json"], name="bad/calls.jsonl")
    shutil.copy(DATA / "calls" / "mixed_gateway.jsonl", Path(bad).parent / "good.jsonl")
    with pytest.raises(InputError):
        staged.analyze(expand_paths([str(Path(bad).parent)]), AnalyzeOptions(strict=True), workers=2)
    assert os.listdir(temp) == []


def test_when_analyze_stages(monkeypatch: pytest.MonkeyPatch) -> None:
    samples = expand_paths([SAMPLES])
    size = staged.total_bytes(samples)
    sizes = [(f.path.stat().st_size, f.path.name.endswith(".gz")) for f in samples.files if f.path is not None]
    assert size == sum(n * 8 if gz else n for n, gz in sizes) and any(gz for _, gz in sizes)
    monkeypatch.setattr(staged, "STAGED_FROM_BYTES", size)
    assert staged.chosen(samples, AnalyzeOptions())
    assert not staged.chosen(samples, AnalyzeOptions(staged=False))
    assert not staged.chosen(samples, AnalyzeOptions(), rows_needed="--output")  # the whole table is needed
    monkeypatch.setattr(staged, "STAGED_FROM_BYTES", size + 1)
    assert not staged.chosen(samples, AnalyzeOptions())
    assert staged.chosen(samples, AnalyzeOptions(staged=True))
    with pytest.raises(ConfigError, match="--findings needs every row"):
        staged.chosen(samples, AnalyzeOptions(staged=True), rows_needed="--findings")
    stdin = expand_paths(["-"], stdin=io.BytesIO(b""))
    assert not staged.chosen(stdin, AnalyzeOptions())
    with pytest.raises(ConfigError, match="stdin"):
        staged.chosen(stdin, AnalyzeOptions(staged=True))


def test_a_gzip_file_counts_eight_times_its_size(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl.gz").write_bytes(b"\x1f\x8b" + b"\x00" * 98)
    assert staged.total_bytes(expand_paths([str(tmp_path)])) == 800


def test_api_analyze_stages_from_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = staged.analyze

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(staged, "analyze", spy)
    want = RENDERERS["json"](api.analyze([SAMPLES]), 100)
    assert calls == []
    monkeypatch.setattr(staged, "STAGED_FROM_BYTES", 1)
    assert RENDERERS["json"](api.analyze([SAMPLES]), 100) == want and calls == [1]


def test_the_command_line(tmp_path: Path) -> None:
    memory = runner.invoke(app, ["analyze", SAMPLES, "-f", "json", "--no-cache", "--in-memory"])
    staged_run = runner.invoke(app, ["analyze", SAMPLES, "-f", "json", "--no-cache", "--staged"])
    assert memory.exit_code == staged_run.exit_code == 0
    assert staged_run.stdout == memory.stdout and staged_run.stderr == memory.stderr
    refused = runner.invoke(app, ["analyze", SAMPLES, "--staged", "-o", str(tmp_path / "steps.parquet")])
    assert refused.exit_code == 2 and "--output needs every row in memory" in refused.stderr
    assert not (tmp_path / "steps.parquet").exists()


def test_each_bucket_gets_the_duplicates_of_its_own_rows(tmp_path: Path) -> None:
    def rows(traces: list[str], records: list[str | None], seconds: list[int]) -> pa.Table:
        n = len(traces)
        data: dict[str, list[object]] = {name: [None] * n for name in empty_table().schema.names}
        data |= {"trace_id": list(traces), "record_id": list(records), "kind": ["llm"] * n}
        data |= {"source": ["f.jsonl"] * n, "line": list(range(1, n + 1)), "usage_source": ["reported"] * n}
        data["start"] = [datetime(2026, 10, 1, tzinfo=UTC) + timedelta(seconds=s) for s in seconds]
        return pa.Table.from_pydict(data, schema=empty_table().schema)

    stage = Stage(tmp_path / "rows", 4, overlaps=False)
    stage.add(rows(["a", "b", "c", "d"], ["r1", "r2", "r3", None], [5, 1, 2, 3]))
    stage.add(rows(["e", "f", "a"], ["r1", "r2", "r9"], [1, 9, 4]))  # r1 again and earlier: the first read goes
    dropped = stage.dropped()
    assert len(dropped) == 4 and stage.trace_hashes == stage.record_hashes == []
    assert sorted(np.concatenate(dropped).tolist()) == [0, 5]  # r1 read first (later start), r2 read second
    kept: list[str | None] = []
    for bucket, seqs in enumerate(dropped):
        table, examples = bucket_steps(stage.directory, bucket, seqs)
        assert [seq for seq, _ in examples] == seqs.tolist()  # every drop happens in the bucket holding the row
        kept += table["record_id"].to_pylist() if table is not None else []
    assert sorted(kept, key=str) == sorted(["r1", "r2", "r3", None, "r9"], key=str)


def test_many_duplicates_are_all_counted_and_the_first_read_listed(tmp_path: Path) -> None:
    lines = (ROOT / "sample_traces" / "multi_tenant.jsonl").read_text(encoding="utf-8").splitlines()[:40]
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")  # every response again
    want = in_memory([str(tmp_path)])
    dropped = orjson.loads(want)["inputs"]["duplicates_dropped"]
    assert dropped > staged.DUPLICATE_EXAMPLES
    bucket_bytes = -(-staged.total_bytes(expand_paths([str(tmp_path)])) // 6)
    assert staged_json([str(tmp_path)], workers=2, bucket_bytes=bucket_bytes) == want
