"""The replay engine: forks, alone vs joint runs, added and dropped calls, the projected table, policy files."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from simkit import call, cost, replay, segment, table

from costscope.errors import ConfigError
from costscope.pricing import PriceBook
from costscope.simulate import engine
from costscope.simulate.engine import make_template, run_policies, simulate_scenario
from costscope.simulate.policy_file import Scenario, load_policy_file, resolve_key, with_value
from costscope.simulate.session import Sweep

BOOK = PriceBook.from_file(None)
# gpt-4.1: $2 / MTok input, $8 / MTok output (genai-prices 0.2.3)
IN, OUT = 2 / 1e6, 8 / 1e6


def _halve_output(config: object, r: engine.Replay) -> None:
    live = r.live
    r.calls.loc[live, "output_tokens"] = r.calls.loc[live, "output_tokens"] / 2


def _drop_second(config: object, r: engine.Replay) -> None:
    r.drop(np.arange(len(r.calls)) == 1, "dropper")


def _add_summary(config: object, r: engine.Replay) -> None:
    rows = pd.DataFrame({"origin": [0], "input_tokens": [500.0], "output_tokens": [50.0], "operation": ["summarize"]})
    r.add_calls(rows, "adder")


FAKES = {
    "halver": SimpleNamespace(NAME="halver", apply=_halve_output),
    "dropper": SimpleNamespace(NAME="dropper", apply=_drop_second),
    "adder": SimpleNamespace(NAME="adder", apply=_add_summary),
}


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, module in FAKES.items():
        monkeypatch.setitem(engine.BY_NAME, name, module)


def _scenario(*names: str) -> Scenario:
    return Scenario("test", None, tuple((n, None) for n in names), "test.yaml", {"version": 1})


def _template(rows: list[dict]) -> engine.Replay:
    return make_template(table(rows, BOOK), BOOK)


def test_no_policy_replays_the_record_unchanged() -> None:
    rows = [call(), call(start=5, model="gpt-4.1-mini", output_tokens=7)]
    result = simulate_scenario(_template(rows), _scenario())
    assert [r["technique"] for r in result.rows] == ["joint"]
    assert cost(result.joint.table) == cost(table(rows, BOOK))
    assert result.rows[0]["saved_usd"] == 0.0


def test_alone_and_joint_runs(fakes: None) -> None:
    rows = [call(), call(start=5)]
    result = simulate_scenario(_template(rows), _scenario("halver", "dropper"))
    assert [r["technique"] for r in result.rows] == ["halver", "dropper", "joint"]
    halver, dropper, joint = (r["cost_after_usd"] for r in result.rows)
    one = 1000 * IN + 100 * OUT
    assert halver == pytest.approx(2 * (1000 * IN + 50 * OUT))
    assert dropper == pytest.approx(one)
    assert joint == pytest.approx(1000 * IN + 50 * OUT)
    saved_alone = (2 * one - halver) + (2 * one - dropper)
    assert 2 * one - joint != pytest.approx(saved_alone)  # the joint saving is not the sum of the parts
    assert result.rows[1]["calls_not_made"] == {"dropper": 1}
    assert cost(result.joint.table) == pytest.approx(joint)


def test_added_calls_are_priced_and_get_their_own_identity(fakes: None) -> None:
    rows = [call(record_id="resp-1")]
    run = run_policies(_template(rows), _scenario("adder"), "adder")
    assert run.table.num_rows == 2
    assert cost(run.table) == pytest.approx(1000 * IN + 100 * OUT + 500 * IN + 50 * OUT)
    assert run.table["record_id"].to_pylist() == ["resp-1", "resp-1#adder1"]
    assert run.table["operation"].to_pylist() == [None, "summarize"]
    assert run.calls_added == {"adder": 1}


def test_forks_do_not_share_state(fakes: None) -> None:
    template = _template([call()])
    run_policies(template, _scenario("halver"), "halver")
    assert template.calls["output_tokens"].tolist() == [100.0]
    assert cost(run_policies(template, _scenario(), "joint").table) == pytest.approx(1000 * IN + 100 * OUT)


def test_sync_content_rescales_input_and_cache_fields() -> None:
    # recount 500 + 500 = 1000 tokens; reported 1200 input (scale 1.2), 600 of it read from cache
    r = replay(
        [
            call(
                input_tokens=1200,
                cache_read_tokens=600,
                segments=[segment("system", "s", 500), segment("tool_result", "r", 500, tool="grep")],
            )
        ]
    )
    seg = r.segments()
    seg.loc[seg["kind"] == "tool_result", "kept"] = 100.0
    removed = r.sync_content()
    assert removed.tolist() == pytest.approx([480.0])  # 400 recounted tokens x 1.2
    assert r.calls["input_tokens"].tolist() == pytest.approx([720.0])
    assert r.calls["cache_read_tokens"].tolist() == pytest.approx([360.0])  # same 60% share
    assert r.calls["content_changed"].tolist() == [True]
    assert r.projected()["segments"].to_pylist() == [None]


def test_sweep_parses_yaml_scalars() -> None:
    assert Sweep.parse("threshold=0.85, 0.9,0.95") == Sweep("threshold", (0.85, 0.9, 0.95))
    assert Sweep.parse("ttl=5m,1h").values == ("5m", "1h")
    with pytest.raises(ConfigError, match="expected key=value1"):
        Sweep.parse("threshold")


def test_resolve_key_finds_a_unique_setting() -> None:
    raw = {"version": 1, "a": {"threshold": 1, "rules": [{"to": "x"}]}, "b": {"ttl": "5m"}}
    assert resolve_key(raw, "threshold") == ["a", "threshold"]
    assert resolve_key(raw, "a.rules.0.to") == ["a", "rules", "0", "to"]
    with pytest.raises(ConfigError, match="no setting named 'nope'"):
        resolve_key(raw, "nope")
    raw["b"]["threshold"] = 2
    with pytest.raises(ConfigError, match="ambiguous"):
        resolve_key(raw, "threshold")


def test_with_value_revalidates(tmp_path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nname: mine\n", encoding="utf-8")
    scenario = load_policy_file(path)
    assert scenario.name == "mine" and scenario.policies == ()
    with pytest.raises(ConfigError, match="with name=3"):
        with_value(scenario, "name", 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 2\n", "p.yaml:1: policy file: version: Input should be 1"),
        ("version: 1\nroutng: {}\n", "p.yaml:2: policy file: routng: unknown key (did you mean 'routing'?)"),
        ("name: x\n", "p.yaml:1: policy file: version: Field required"),
        ("version: 1\nname: [1\n", "p.yaml:3: invalid YAML in policy file"),
        ("", "p.yaml: the policy file is empty"),
    ],
)
def test_invalid_policy_files_name_file_line_and_key(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_policy_file(path)
    assert err.value.message.startswith(f"{path}{message.removeprefix('p.yaml')}")
