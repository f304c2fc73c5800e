"""SWE-agent and mini-swe-agent trajectories: calls rebuilt from history and recounted offline, demos
sent but never billed as output, the model_stats roll-up kept as a claim, counted skips, fuzzed documents."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costscope import analyze, load_priced_steps, load_steps
from costscope.io import InputFile
from costscope.parsers import detect, swe_agent
from costscope.parsers.swe_agent import Recount, SweAgentParser, model_name
from costscope.tokens import tokenizer_for

DATA = Path(__file__).parent / "data" / "swe_agent"
TINY = DATA / "tinyrepo__fix-3.traj"
MINI = DATA / "tinyrepo__mini-1.traj.json"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
REAL = SHARED / "swe_agent" / "6e44b9__sweagenttestrepo-1c2844.traj"


@pytest.fixture(autouse=True)
def _cl100k(monkeypatch: pytest.MonkeyPatch) -> None:
    """The literal counts below are cl100k's; pin it where an o200k file happens to be cached."""
    if tokenizer_for("gpt-4o").name != "cl100k_base":
        monkeypatch.setattr(swe_agent, "tokenizer_for", lambda model: tokenizer_for(None))


def rows(path: Path | str, **kwargs: Any) -> list[dict[str, Any]]:
    return load_steps([str(path)], **kwargs).table.to_pylist()


def of_kind(table_rows: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in table_rows if r["kind"] == kind]


def doc_of(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(path.read_bytes())
    return loaded


def write(tmp_path: Path, doc: Any, name: str = "case__x-1.traj") -> str:
    path = tmp_path / name
    path.write_bytes(doc if isinstance(doc, bytes) else orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    return str(path)


# --- SWE-agent: recount from history ----------------------------------------------------------------------

# cl100k counts of the tiny trajectory's history (content + tool-call name and arguments):
# 1 system 17 | 2 demo user 25 | 3 demo assistant 1 | 4 issue 20 | 5 assistant 17 | 6 tool 13
# 7 assistant 41 | 8 tool 3 ; trajectory step 3 ("...so I will submit.") 11, not in history.


def test_each_assistant_turn_is_a_call_that_resends_everything_before_it() -> None:
    result = load_steps([str(TINY)])
    calls = of_kind(result.table.to_pylist(), "llm")
    # call 1: 17 + 25 + 1 + 20 = 63 (the demo is sent, but is no call); call 2: 63 + 17 + 13 = 93;
    # call 3 (the submit step missing from history): 93 + 41 + 3 = 137
    assert [(c["line"], c["input_tokens"], c["output_tokens"]) for c in calls] == [
        (5, 63, 17),
        (7, 93, 41),
        (11, 137, 11),
    ]
    assert {c["usage_source"] for c in calls} == {"recounted"}
    assert all(c["cache_read_tokens"] is None and c["cache_write_tokens"] is None for c in calls)  # unknown
    assert [dict(c["tags"])["recount"] for c in calls] == ["history", "history", "trajectory step missing from history"]
    assert dict(calls[0]["tags"])["tokenizer"] == "cl100k_base (approximate)"
    assert result.files[0].records == 8 + 3 + 1  # history messages, trajectory steps, model_stats
    assert result.skips.total == 0


def test_gzipped_trajectory_reads_the_same_with_the_same_trace(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "tinyrepo__fix-3.traj.gz"
    path.write_bytes(gzip.compress(TINY.read_bytes()))
    plain, zipped = rows(TINY), rows(path)
    assert [r["input_tokens"] for r in zipped] == [r["input_tokens"] for r in plain]
    assert {r["trace_id"] for r in zipped} == {"tinyrepo__fix-3"}


def test_model_from_replay_config_string_is_split_for_pricing() -> None:
    calls = of_kind(rows(TINY), "llm")
    assert {(c["provider"], c["model"]) for c in calls} == {("openai", "gpt-4o")}
    assert dict(calls[0]["tags"])["model_logged"] == "openai/gpt-4o"


def test_hand_priced_dollars_of_the_recount() -> None:
    # gpt-4o $2.50 in / $10 out: input 63 + 93 + 137 = 293 -> 732.5; output 17 + 41 + 11 = 69 -> 690
    # total 1422.5 micro-dollars = $0.0014225 (no cache split is known, so all input is priced uncached)
    calls = [r for r in load_priced_steps([str(TINY)]).table.to_pylist() if r["kind"] == "llm"]
    assert sum(c["cost_total"] for c in calls) == pytest.approx(0.0014225)


def test_model_stats_is_one_rollup_claim_with_the_reported_counts() -> None:
    (rollup,) = of_kind(rows(TINY), "rollup")
    assert rollup["reported_cost_usd"] == pytest.approx(0.00106)
    assert rollup["line"] == 12 and rollup["input_tokens"] is None
    tags = dict(rollup["tags"])
    assert (tags["tokens_sent"], tags["tokens_received"], tags["api_calls"]) == ("320", "26", "3")
    reported = analyze([str(TINY)]).reported
    assert reported["rollups_reported_usd"] == pytest.approx(0.00106)
    assert reported["rollups_computed_usd"] == pytest.approx(0.0014225)
    assert reported["calls_with_reported_cost"] == 0


def test_identity_is_the_instance_id_and_swe_agent() -> None:
    table_rows = rows(TINY)
    assert {(r["trace_id"], r["agent"], r["format"]) for r in table_rows} == {
        ("tinyrepo__fix-3", "swe-agent", "swe-agent")
    }


def test_replay_config_as_an_object_and_a_bare_model_name(tmp_path: Path) -> None:
    doc = doc_of(TINY)
    doc["replay_config"] = {"agent": {"model": {"name": "gpt-4o"}}}
    calls = of_kind(rows(write(tmp_path, doc)), "llm")
    assert {(c["provider"], c["model"]) for c in calls} == {("openai", "gpt-4o")}
    assert "model_logged" not in dict(calls[0]["tags"])


def test_pre_1_0_trajectory_has_no_model_and_stays_unpriced(tmp_path: Path) -> None:
    doc = doc_of(TINY)
    del doc["replay_config"]  # 0.x keeps the model only in its directory name (gpt4__...): not guessed
    priced = load_priced_steps([write(tmp_path, doc)])
    calls = [r for r in priced.table.to_pylist() if r["kind"] == "llm"]
    assert len(calls) == 3 and {c["model"] for c in calls} == {None}
    assert all(c["cost_total"] is None for c in calls)
    assert priced.pricing.unpriced[0].calls == 3


def test_multi_agent_history_keeps_one_prefix_per_agent(tmp_path: Path) -> None:
    doc = doc_of(TINY)
    doc["trajectory"] = doc["trajectory"][:2]
    doc["history"].append({"role": "system", "content": "Review the patch.", "agent": "reviewer"})
    doc["history"].append({"role": "assistant", "content": "Looks right.", "agent": "reviewer"})
    calls = of_kind(rows(write(tmp_path, doc)), "llm")
    reviewer = calls[-1]
    count = tokenizer_for(None).count
    assert reviewer["input_tokens"] == count("Review the patch.")  # not the main agent's history
    assert reviewer["output_tokens"] == count("Looks right.")


def test_thinking_is_output_of_its_turn_only(tmp_path: Path) -> None:
    doc = doc_of(TINY)
    doc["history"][4]["thinking_blocks"] = [{"type": "thinking", "thinking": "cat cat cat cat", "signature": "x"}]
    calls = of_kind(rows(write(tmp_path, doc)), "llm")
    assert [(c["input_tokens"], c["output_tokens"]) for c in calls] == [(63, 17 + 4), (93, 41), (137, 11)]


def test_every_trajectory_step_in_history_adds_no_extra_call(tmp_path: Path) -> None:
    doc = doc_of(TINY)
    doc["trajectory"] = doc["trajectory"][:2]
    assert len(of_kind(rows(write(tmp_path, doc)), "llm")) == 2


def test_history_worded_unlike_the_trajectory_cannot_double_count(tmp_path: Path) -> None:
    doc = doc_of(TINY)
    for step in doc["trajectory"]:
        step["response"] = "DISCUSSION\n" + step["response"]
    # only steps beyond the 2 assistant turns can be missing from history
    assert len(of_kind(rows(write(tmp_path, doc)), "llm")) == 3


def test_trajectory_query_gives_the_exact_messages_of_each_call(tmp_path: Path) -> None:
    doc = doc_of(TINY)
    sent = [{"role": "system", "content": "alpha beta"}, {"role": "user", "content": "gamma"}]
    for step in doc["trajectory"]:
        step["query"] = sent  # what a history processor left of the history
    calls = of_kind(rows(write(tmp_path, doc)), "llm")
    count = tokenizer_for(None).count
    assert [c["input_tokens"] for c in calls] == [count("alpha beta") + count("gamma")] * 3
    assert [c["output_tokens"] for c in calls] == [17, 41, 11]  # turns found in history keep their tool calls
    assert [c["line"] for c in calls] == [9, 10, 11]
    assert {dict(c["tags"])["recount"] for c in calls} == {"trajectory query"}


def test_each_distinct_text_is_tokenized_once() -> None:
    calls: list[list[str]] = []
    tokenizer = tokenizer_for(None)

    class Spy:
        name, label = tokenizer.name, tokenizer.label

        def count_batch(self, texts: list[str]) -> list[int]:
            calls.append(list(texts))
            return tokenizer.count_batch(texts)

    recount = Recount(Spy())  # type: ignore[arg-type]
    recount.prepare(["same words", "other words", "same words", ""])
    assert recount("same words") == tokenizer.count("same words")
    recount.prepare(["same words"])
    assert calls == [["same words", "other words"]]


# --- mini-swe-agent ---------------------------------------------------------------------------------------


def test_mini_reported_usage_where_logged_and_recount_elsewhere() -> None:
    result = load_steps([str(MINI)])
    first, second = of_kind(result.table.to_pylist(), "llm")
    assert (first["record_id"], first["usage_source"]) == ("chatcmpl-mini-0001", "reported")
    assert (first["input_tokens"], first["cache_write_tokens"], first["cache_read_tokens"]) == (1200, 1100, 0)
    assert first["start"] is not None
    # cl100k: system 13 + task 14 + first answer 39 + shell output 15 = 81 in; second answer 30 out
    assert (second["usage_source"], second["input_tokens"], second["output_tokens"]) == ("recounted", 81, 30)
    assert {(c["provider"], c["model"], c["agent"]) for c in (first, second)} == {
        ("anthropic", "claude-3-5-sonnet-20241022", "mini-swe-agent")
    }
    assert {r["trace_id"] for r in result.table.to_pylist()} == {"tinyrepo__mini-1"}
    assert result.files[0].records == 6 + 1


def test_mini_hand_priced_dollars_and_rollup() -> None:
    # reported call: uncached 100*3 + write 1100*3.75 + out 60*15 = 300 + 4125 + 900 = 5325 -> $0.005325
    # recounted call: 81*3 + 30*15 = 243 + 450 = 693 -> $0.000693 ; total $0.006018 vs claimed $0.0061
    priced = load_priced_steps([str(MINI)]).table.to_pylist()
    assert sum(r["cost_total"] for r in priced if r["kind"] == "llm") == pytest.approx(0.006018)
    (rollup,) = of_kind(priced, "rollup")
    assert rollup["reported_cost_usd"] == pytest.approx(0.0061)
    assert dict(rollup["tags"])["api_calls"] == "2"


def test_mini_instance_id_names_the_trace(tmp_path: Path) -> None:
    doc = doc_of(MINI)
    doc["instance_id"] = "astropy__astropy-12907"
    assert {r["trace_id"] for r in rows(write(tmp_path, doc, "whatever.traj.json"))} == {"astropy__astropy-12907"}


def test_model_name_sources() -> None:
    assert model_name({"replay_config": '{"agent": {"model": {"name": "gpt-4o"}}}'}) == "gpt-4o"
    assert model_name({"replay_config": "{not json"}) is None
    assert model_name({"info": {"config": {"model": {"model_name": "openai/gpt-4.1"}}}}) == "openai/gpt-4.1"
    retry = {"agent": {"type": "retry", "agent_configs": [{"model": {"name": "claude-3-5-sonnet-20241022"}}]}}
    assert model_name({"replay_config": retry}) == "claude-3-5-sonnet-20241022"
    assert model_name({"environment": "swe_main"}) is None


# --- bad records ------------------------------------------------------------------------------------------


def test_bad_records_are_counted_skips(tmp_path: Path) -> None:
    doc = doc_of(TINY)
    doc["history"][5] = ["not", "a", "message"]
    doc["history"][7] = {"role": "tool", "content": 12}
    doc["trajectory"].insert(0, "not a step")
    doc["info"]["model_stats"]["instance_cost"] = "a lot"
    path = write(tmp_path, doc)
    result = load_steps([path])
    assert result.files[0].records == 8 + 4 + 1
    assert result.skips.counts == {
        "message is not a JSON object, got list": 1,
        "message content is neither text nor a list of parts": 1,
        "trajectory step is not a JSON object, got str": 1,
        "info.model_stats.instance_cost is not a non-negative number": 1,
    }
    where = [e.removeprefix(path + ":").split(":")[0] for e in result.skips.examples]
    assert where == ["6", "8", "9", "13"]
    assert of_kind(result.table.to_pylist(), "rollup") == []


def test_a_file_that_is_not_json_is_one_counted_skip(tmp_path: Path) -> None:
    result = load_steps([write(tmp_path, TINY.read_bytes()[:900])])
    assert result.files[0].format == "swe-agent"
    assert (result.files[0].records, result.skips.total, result.table.num_rows) == (1, 1, 0)


def test_forced_on_an_array_is_one_counted_skip(tmp_path: Path) -> None:
    result = load_steps([write(tmp_path, [1, 2])], format_in="swe-agent")
    assert result.skips.counts == {"expected a JSON object, got list": 1}


def test_history_missing_gives_only_the_rollup(tmp_path: Path) -> None:
    doc = doc_of(TINY)
    del doc["history"]
    result = load_steps([write(tmp_path, doc)])
    assert [r["kind"] for r in result.table.to_pylist()] == ["rollup"]
    assert result.notes["swe-agent trajectories without history (calls not rebuilt)"] == 1


# --- sniffing ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    [
        TINY.read_bytes()[:300],  # pretty-printed: only environment and the start of trajectory
        b'{"environment": "swe_main", "trajectory": [{"action": "ls", "observation": "a.py"',
        b'{"trajectory": [], "history": [], "info": {}}',
        MINI.read_bytes()[:200],  # info (model_stats) comes first
        b'{"messages": [], "trajectory_format": "mini-swe-agent-1.1"}',
    ],
)
def test_sniff_accepts_trajectories(prefix: bytes) -> None:
    assert SweAgentParser().sniff(prefix)


@pytest.mark.parametrize(
    "prefix",
    [
        b'{"id": "chatcmpl-1", "object": "chat.completion", "usage": {"prompt_tokens": 1}}\n',
        b'{"type": "session_meta", "payload": {"trajectory": "x"}}\n',
        b'{"trajectory": "a string", "history": []}',
        b'[{"source": "user", "action": "message"}]',
        b"",
    ],
)
def test_sniff_rejects_other_documents(prefix: bytes) -> None:
    assert not SweAgentParser().sniff(prefix)


def test_registry_detects_both_flavours() -> None:
    for path in (TINY, MINI):
        assert detect(InputFile(name=str(path), path=path)).name == "swe-agent"


# --- the real trajectory (shared fixtures, skipped when absent) ------------------------------------------


@pytest.mark.skipif(not REAL.exists(), reason="shared fixtures not present")
def test_real_trajectory_recount_against_reported_aggregates() -> None:
    # Reported: instance_cost $0.01952, tokens_sent 7,141, tokens_received 243, api_calls 5, gpt-4o.
    # Recount (cl100k): 4 history turns + the submit step missing from history = 5 calls, as reported;
    # input 1,126 + 1,262 + 1,436 + 1,671 + 1,774 = 7,269 (+1.8% on tokens_sent);
    # output 336 (tokens_received counts message content only, 244 here; tool-call arguments add 92).
    # 7269*2.50 + 336*10 = 18172.5 + 3360 = 21532.5 -> $0.0215325 (+10.3% on the claim)
    priced = load_priced_steps([str(REAL)])
    table_rows = priced.table.to_pylist()
    calls = of_kind(table_rows, "llm")
    assert len(calls) == 5
    assert [c["input_tokens"] for c in calls] == [1126, 1262, 1436, 1671, 1774]
    assert sum(c["output_tokens"] for c in calls) == 336
    assert sum(c["cost_total"] for c in calls) == pytest.approx(0.0215325)
    (rollup,) = of_kind(table_rows, "rollup")
    assert rollup["reported_cost_usd"] == pytest.approx(0.01952)
    tags = dict(rollup["tags"])
    assert (tags["tokens_sent"], tags["tokens_received"], tags["api_calls"]) == ("7141", "243", "5")
    assert {(c["model"], c["trace_id"]) for c in calls} == {("gpt-4o", "6e44b9__sweagenttestrepo-1c2844")}
    assert priced.load.skips.total == 0


# --- fuzzing ----------------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*prefix, index))
    return out


def _expected_records(doc: Any) -> int:
    if not isinstance(doc, dict):
        return 1
    mini = isinstance(doc.get("messages"), list) and not isinstance(doc.get("history"), list)
    mini = mini or str(doc.get("trajectory_format") or "").startswith("mini-swe-agent")
    key = "messages" if mini else "history"
    count = len(doc[key]) if isinstance(doc.get(key), list) else 0
    count += len(doc["trajectory"]) if isinstance(doc.get("trajectory"), list) else 0
    info = doc.get("info")
    return count + (1 if isinstance(info, dict) and info.get("model_stats") is not None else 0)


BASES = [doc_of(TINY), doc_of(MINI)]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(BASES),
    edits=st.lists(
        st.tuples(st.integers(min_value=0, max_value=10_000), JSON_VALUES, st.booleans()), min_size=1, max_size=4
    ),
    cut=st.none() | st.integers(min_value=0, max_value=4000),
)
def test_mutated_trajectories_never_raise_only_skip(
    base: dict[str, Any], edits: list[tuple[int, Any, bool]], cut: int | None
) -> None:
    doc: Any = copy.deepcopy(base)
    for index, replacement, delete in edits:
        paths = _paths(doc)
        path = paths[index % len(paths)]
        if not path:
            doc = replacement
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if delete:
            del parent[path[-1]]
        else:
            parent[path[-1]] = replacement
    data = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    if cut is not None:
        data = data[:cut]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz__case-1.traj"
        path.write_bytes(data)
        result = load_steps([str(path)], format_in="swe-agent")
    table_rows = result.table.to_pylist()
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        assert result.files[0].records == _expected_records(parsed)
    elif data.strip():
        assert (result.files[0].records, result.skips.total, len(table_rows)) == (1, 1, 0)
    for r in table_rows:
        assert r["kind"] in {"llm", "rollup"}
        if r["kind"] == "llm" and r["usage_source"] == "recounted":
            assert r["input_tokens"] >= 0 and r["output_tokens"] >= 0
