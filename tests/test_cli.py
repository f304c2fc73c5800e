"""The command line through typer's runner: exit codes, formats, errors and the step-table output."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from costscope.cli import app

runner = CliRunner()

CALLS = [
    {
        "timestamp": "2026-10-01T10:00:00Z",
        "trace_id": "t1",
        "agent": "planner",
        "tenant": "acme",
        "response": {
            "id": "msg_1",
            "type": "message",
            "model": "claude-sonnet-4-5-20250929",
            "usage": {
                "input_tokens": 25,
                "cache_creation_input_tokens": 12_593,
                "cache_read_input_tokens": 148_958,
                "output_tokens": 1_508,
            },
        },
    },
    {
        "timestamp": "2026-10-02T11:00:00Z",
        "trace_id": "t1",
        "agent": "coder",
        "tenant": "acme",
        "response": {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "gpt-4o",
            "usage": {
                "prompt_tokens": 2006,
                "completion_tokens": 300,
                "prompt_tokens_details": {"cached_tokens": 1920},
            },
        },
    },
    {
        "timestamp": "2026-10-02T12:00:00Z",
        "trace_id": "t2",
        "agent": "coder",
        "tenant": "globex",
        "response": {
            "id": "x1",
            "object": "chat.completion",
            "model": "house-llama-70b",
            "usage": {"prompt_tokens": 1000, "completion_tokens": 100},
        },
    },
]
# claude: 25*3 + 12593*3.75 + 148958*0.30 + 1508*15 = 114606.15 micro-USD; gpt-4o: 86*2.5 + 1920*1.25 + 300*10
CLAUDE_USD = (25 * 3 + 12_593 * 3.75 + 148_958 * 0.30 + 1_508 * 15) / 1e6
GPT4O_USD = (86 * 2.5 + 1920 * 1.25 + 300 * 10) / 1e6


@pytest.fixture
def calls_file(tmp_path: Path) -> Path:
    path = tmp_path / "calls.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in CALLS), encoding="utf-8")
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "80", "NO_COLOR": "1"})
    return result.exit_code, result.stdout, result.stderr


def test_json_follows_the_contract(calls_file: Path) -> None:
    code, out, err = run("analyze", str(calls_file), "--format", "json", "--by", "agent,tenant")
    assert code == 0, err
    report = json.loads(out)
    assert {"costscope_version", "inputs", "totals", "groups", "unpriced_models", "warnings"} <= set(report)
    totals = report["totals"]
    assert totals["calls"] == 3 and totals["priced_calls"] == 2
    assert totals["cost_usd"] == pytest.approx(CLAUDE_USD + GPT4O_USD, abs=1e-9)
    assert report["inputs"]["records_read"] == 3 and report["inputs"]["records_skipped"] == 0
    assert [g["key"] for g in report["groups"]][0] == {"agent": "planner", "tenant": "acme"}
    unpriced = report["unpriced_models"]
    assert unpriced == [
        {
            "provider": None,
            "model": "house-llama-70b",
            "calls": 1,
            "input_tokens": 1000,
            "output_tokens": 100,
            "hint": "add it to a price file (--prices)",
        }
    ]
    assert "house-llama-70b" in err and "not in the total" in err


def test_unpriced_model_becomes_priced_with_a_price_file(calls_file: Path, tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("version: 1\nmodels:\n  - model: house-llama-*\n    input: 0.6\n    output: 0.8\n", "utf-8")
    code, out, _ = run("analyze", str(calls_file), "-f", "json", "--prices", str(prices))
    assert code == 0
    report = json.loads(out)
    assert report["unpriced_models"] == []
    expected = CLAUDE_USD + GPT4O_USD + (1000 * 0.6 + 100 * 0.8) / 1e6
    assert report["totals"]["cost_usd"] == pytest.approx(expected, abs=1e-9)
    refs = [e["price_ref"] for e in report["prices"]["entries"]]
    assert any(ref.startswith("prices.yaml: house-llama-*") for ref in refs)


def test_missing_path_is_a_usage_error_without_traceback(tmp_path: Path) -> None:
    code, out, err = run("analyze", str(tmp_path / "nope.jsonl"))
    assert code == 2
    assert out == ""
    assert err.startswith("Error: no such file or directory")
    assert "Traceback" not in err


def test_malformed_line_is_reported_and_strict_fails(calls_file: Path) -> None:
    with calls_file.open("a", encoding="utf-8") as fh:
        fh.write('{"response": {"usage": {"prompt_tokens": -5}}}\n{not json\n')
    code, out, err = run("analyze", str(calls_file), "-f", "json")
    assert code == 0
    report = json.loads(out)
    assert report["inputs"]["records_skipped"] == 2
    assert f"{calls_file}:4: prompt_tokens is negative: -5" in err
    assert f"{calls_file}:5: malformed JSON" in err
    code, out, err = run("analyze", str(calls_file), "--strict")
    assert code == 2
    assert f"Error: {calls_file}:4: prompt_tokens is negative" in err


def test_unknown_group_key_and_format_in(calls_file: Path) -> None:
    code, _, err = run("analyze", str(calls_file), "--by", "colour")
    assert code == 2 and "cannot group by 'colour'" in err
    code, _, err = run("analyze", str(calls_file), "--format-in", "xml")
    assert code == 2 and "unknown input format 'xml'" in err and "known formats" in err


def test_output_parquet_reads_back_to_the_same_report(calls_file: Path, tmp_path: Path) -> None:
    steps = tmp_path / "steps.parquet"
    code, first, _ = run("analyze", str(calls_file), "-f", "json", "--output", str(steps))
    assert code == 0
    assert pq.read_table(steps).num_rows == 3
    code, second, _ = run("analyze", str(steps), "-f", "json")
    assert code == 0
    a, b = json.loads(first), json.loads(second)
    assert a["totals"] == b["totals"] and a["groups"] == b["groups"] and a["top_steps"] == b["top_steps"]
    assert b["inputs"]["formats"] == {"parquet": 1}


def test_filters_and_time_grouping(calls_file: Path) -> None:
    code, out, _ = run("analyze", str(calls_file), "-f", "json", "--since", "2026-10-02", "--by", "day")
    assert code == 0
    report = json.loads(out)
    assert report["totals"]["calls"] == 2 and report["inputs"]["filtered_out"] == 1
    assert [g["key"]["day"] for g in report["groups"]] == ["2026-10-02"]
    code, out, _ = run("analyze", str(calls_file), "-f", "json", "--model", "claude-*")
    assert json.loads(out)["totals"]["cost_usd"] == pytest.approx(CLAUDE_USD, abs=1e-9)


def test_csv_and_markdown(calls_file: Path) -> None:
    code, out, _ = run("analyze", str(calls_file), "-f", "csv", "--by", "model")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("model,calls,priced_calls,input_tokens")
    assert lines[1].startswith("claude-sonnet-4-5-20250929,1,1,161576,")
    assert lines[-1].startswith("house-llama-70b,1,0,1000,") and lines[-1].endswith(",,,,,,")
    code, out, _ = run("analyze", str(calls_file), "-f", "markdown")
    assert code == 0 and out.startswith("## costscope analysis") and "| house-llama-70b |" in out


def test_table_has_no_colour_codes_and_fits_80_columns(calls_file: Path) -> None:
    code, out, _ = run("analyze", str(calls_file))
    assert code == 0
    assert "\x1b[" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "—" in out  # the unpriced model shows a dash, never $0


def test_stdin_and_gzip(calls_file: Path, tmp_path: Path) -> None:
    import gzip

    gz = tmp_path / "calls.jsonl.gz"
    gz.write_bytes(gzip.compress(calls_file.read_bytes()))
    code, out, _ = run("analyze", str(gz), "-f", "json")
    assert code == 0 and json.loads(out)["totals"]["calls"] == 3
    result = runner.invoke(app, ["analyze", "-", "-f", "json"], input=calls_file.read_bytes())
    assert result.exit_code == 0 and json.loads(result.stdout)["totals"]["calls"] == 3


def test_version() -> None:
    code, out, _ = run("--version")
    assert code == 0 and out.startswith("costscope ")


def test_a_response_logged_twice_is_counted_once(calls_file: Path) -> None:
    with calls_file.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(CALLS[0]) + "\n")
    code, out, err = run("analyze", str(calls_file), "-f", "json")
    assert code == 0
    report = json.loads(out)
    assert report["totals"]["calls"] == 3
    assert report["inputs"]["duplicates_dropped"] == 1
    assert report["inputs"]["duplicate_examples"] == [f"{calls_file}:4"]
    assert "repeat a response id" in err


def test_claude_and_codex_default_locations(calls_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    monkeypatch.delenv("CODEX_HOME", raising=False)
    code, _, err = run("analyze", "--claude")
    assert code == 2 and "no Claude Code logs found in" in err and ".claude/projects" in err
    config = tmp_path / "claude-config"
    (config / "projects" / "demo").mkdir(parents=True)
    (config / "projects" / "demo" / "calls.jsonl").write_bytes(calls_file.read_bytes())
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(config))
    code, out, _ = run("analyze", "--claude", "-f", "json")
    assert code == 0 and json.loads(out)["totals"]["calls"] == 3
    code, _, err = run("analyze", "--codex")
    assert code == 2 and "no Codex CLI sessions found in" in err and "CODEX_HOME" in err


def test_no_input_is_a_usage_error() -> None:
    code, _, err = run("analyze")
    assert code == 2 and "Error: no input given" in err


def test_no_cache_gives_the_same_report(calls_file: Path) -> None:
    _, cached, _ = run("analyze", str(calls_file), "-f", "json")
    _, again, _ = run("analyze", str(calls_file), "-f", "json")
    _, fresh, _ = run("analyze", str(calls_file), "-f", "json", "--no-cache")
    assert cached == again == fresh
