"""The `costscope` program's own process settings."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TRACE = Path(__file__).parent / "data" / "claude_code" / "projects"
SHOW_POOL = """
import atexit, sys
from costscope import launch

def show() -> None:  # after the command, which loaded pyarrow with the environment the program set
    import pyarrow
    print(pyarrow.default_memory_pool().backend_name)

atexit.register(show)
sys.argv = ["costscope", "analyze", sys.argv[1], "--no-cache", "-f", "json"]
launch.main()
"""


def _pool(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SHOW_POOL, str(TRACE)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


@pytest.mark.parametrize("chosen", [None, "mimalloc"])
def test_arrow_gets_the_system_allocator_unless_the_user_chose_one(chosen: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if chosen is not None:
        env["ARROW_DEFAULT_MEMORY_POOL"] = chosen
    assert _pool(env) == (chosen or "system")


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's allocator")
def test_freed_blocks_go_back_to_the_system_unless_the_user_tuned_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes

    from costscope.launch import return_freed_memory

    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    glibc = hasattr(ctypes.CDLL(None), "gnu_get_libc_version")
    assert return_freed_memory() is glibc
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert return_freed_memory() is False


PARSE_TWICE = """
import resource, sys
from pathlib import Path
from costscope import ingest, launch
from costscope.io import InputFile
if sys.argv[2] == "set":
    assert launch.return_freed_memory()
jobs = [(InputFile(str(p), p), None, False, None) for p in sorted(Path(sys.argv[1]).glob("*.jsonl"))]
ingest._parse_chunk(jobs[:5])
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
ingest._parse_chunk(jobs)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's allocator")
def test_the_allocator_setting_does_not_fault_in_each_block_a_parser_reads_anew(tmp_path: Path) -> None:
    """A parse reads each file into a 1 MiB block. With the mmap threshold fixed but the heap's top given back as
    soon as 128 KiB of it are free (glibc's trim threshold, no longer raised along), each block was faulted in anew:
    here about 8,500 page faults against 2,400 with glibc's defaults."""
    import ctypes

    if not hasattr(ctypes.CDLL(None), "gnu_get_libc_version"):
        pytest.skip("not glibc")
    for f in range(60):  # about 520 KB each, 31 MiB
        lines = []
        for i in range(300):
            text = "y" * (100 + (i * 37 + f) % 1900)
            lines.append(json.dumps({"type": "user", "sessionId": f"s{f}", "message": {"content": text}}))
            call = {"id": f"m{f}-{i}", "model": "claude-sonnet-4-5", "content": [{"type": "text", "text": text[:400]}]}
            call["usage"] = {"input_tokens": 10, "output_tokens": 20}
            stamp = "2026-01-01T00:00:01.000Z"
            lines.append(json.dumps({"type": "assistant", "sessionId": f"s{f}", "timestamp": stamp, "message": call}))
        (tmp_path / f"{f:02}.jsonl").write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}

    def faults(mode: str) -> int:
        run = subprocess.run([sys.executable, "-c", PARSE_TWICE, str(tmp_path), mode], env=env, capture_output=True)
        assert run.returncode == 0, run.stderr.decode()
        return int(run.stdout)

    assert faults("set") < faults("default") * 1.5 + 500


SAMPLES = Path(__file__).resolve().parents[1] / "sample_traces"
RUN_AND_TELL_PANDAS = """
import atexit, sys
from costscope import launch

atexit.register(lambda: sys.stderr.write(f"\\nimported: {[m for m in ('pandas', 'rich') if m in sys.modules]}\\n"))
sys.argv = ["costscope", *sys.argv[1:]]
launch.main()
"""


def _run(*args: str) -> tuple[str, bool]:
    """The program's stdout, and whether it imported pandas."""
    stdout, imported = _imports(*args)
    return stdout, "pandas" in imported


def _imports(*args: str) -> tuple[str, list[str]]:
    """The program's stdout, and which of pandas and rich it imported."""
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_TELL_PANDAS, *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode in (0, 1), done.stderr
    last = done.stderr.rstrip().splitlines()[-1]
    assert last.startswith("imported: ")
    return done.stdout, ast.literal_eval(last.removeprefix("imported: "))


@pytest.mark.parametrize("output_format", ["json", "csv"])
def test_a_json_or_csv_analyze_never_imports_rich(output_format: str) -> None:
    """rich draws the table and Markdown outputs (and the progress bar on a terminal): about 25 ms to import."""
    assert "rich" not in _imports("analyze", str(SAMPLES), "--no-cache", "-f", output_format)[1]
    assert "rich" in _imports("analyze", str(SAMPLES), "--no-cache", "-f", "table")[1]


@pytest.mark.parametrize("output_format", ["json", "table", "markdown", "csv"])
def test_an_analyze_without_findings_never_imports_pandas(output_format: str) -> None:
    """pyarrow would import pandas at its first conversion (0.2-0.3 s, 35 MiB) only to ask whether the values are
    pandas objects; the report is the same without it."""
    from typer.testing import CliRunner

    from costscope.cli import app

    stdout, imported = _run("analyze", str(SAMPLES), "--no-cache", "-f", output_format, "--by", "model,agent,day")
    assert not imported
    in_process = CliRunner().invoke(
        app, ["analyze", str(SAMPLES), "--no-cache", "-f", output_format, "--by", "model,agent,day"]
    )
    assert "pandas" in sys.modules  # this test process has it: the two runs differ in that alone
    assert stdout == in_process.stdout


def test_findings_still_import_pandas() -> None:
    stdout, imported = _run("analyze", str(SAMPLES), "--no-cache", "-f", "json", "--findings")
    assert imported and '"findings"' in stdout


def test_which_runs_are_pandas_free(tmp_path: Path) -> None:
    from costscope.launch import pandas_free
    from costscope.schema import DATASET_MANIFEST

    assert pandas_free(["analyze", "x", "-f", "json"])
    (tmp_path / DATASET_MANIFEST).write_text("{}")
    assert not pandas_free(["analyze", str(tmp_path), "-f", "json"])  # a dataset: its engine imports pandas
    assert not pandas_free(["analyze", "x", "--findings"])
    assert not pandas_free(["analyze", "x", "--engine", "dask"])
    assert not pandas_free(["analyze", "x", "--engine=local"])
    assert not pandas_free(["simulate", "x", "--policy", "p.yaml"])
    assert not pandas_free([])


SKIP_PROBE = """
import sys
from costscope.nopandas import skip_pandas_probe

assert skip_pandas_probe()
import pyarrow as pa

assert pa.array(["a", None]).to_pylist() == ["a", None] and "pandas" not in sys.modules
import pandas as pd  # still importable, and pyarrow's pandas conversions work

frame = pd.DataFrame({"x": [1.0, float("nan")]})
assert pa.Table.from_pandas(frame, preserve_index=False).column("x").null_count == 1
assert pa.table({"x": [1, 2]}).to_pandas()["x"].tolist() == [1, 2]
assert not skip_pandas_probe()  # pandas is imported now: nothing to skip
print("ok")
"""


def test_skipping_the_pandas_probe_keeps_pandas_usable() -> None:
    done = subprocess.run([sys.executable, "-c", SKIP_PROBE], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr


EXIT_NOW = """
import atexit, sys, threading, time
from pathlib import Path
from costscope import launch

out = Path(sys.argv[1])
atexit.register(lambda: out.with_suffix(".atexit").write_text("ran"))
if sys.argv[2] == "thread":  # a thread still writing: the exit waits for it
    threading.Thread(target=lambda: (time.sleep(0.3), out.write_text("written"))).start()
sys.stdout.write("buffered, not yet flushed")
launch.exit_now({"0": 0, "3": 3, "none": None, "text": "a message"}.get(sys.argv[2], 0))
"""


@pytest.mark.parametrize(("how", "code"), [("0", 0), ("3", 3), ("none", 0), ("text", 1), ("thread", 0)])
def test_the_program_ends_without_teardown_but_with_all_an_exit_does(tmp_path: Path, how: str, code: int) -> None:
    """`exit_now` skips the interpreter's teardown (0.12 s of a cold analyze): the atexit functions still run, the
    buffered output is flushed, the code is kept; a message is printed, a running thread is waited for."""
    out = tmp_path / "out.txt"
    done = subprocess.run([sys.executable, "-c", EXIT_NOW, str(out), how], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (code, "buffered, not yet flushed")
    assert out.with_suffix(".atexit").read_text() == "ran"
    assert ("a message" in done.stderr) == (how == "text")
    assert out.exists() == (how == "thread")


def test_the_program_keeps_the_exit_code_and_output_of_the_command_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from costscope.cli import app

    for args in (["analyze", str(SAMPLES), "--no-cache", "-f", "csv"], ["analyze", str(tmp_path / "missing")]):
        program = subprocess.run([sys.executable, "-m", "costscope", *args], capture_output=True, text=True)
        in_process = CliRunner().invoke(app, args)
        assert (program.returncode, program.stdout) == (in_process.exit_code, in_process.stdout)
