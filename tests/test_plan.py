import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradlens.plan import (SCHEMA, ModuleSplit, PlanError, SharingPlan, diff, dumps, load_plan,
                           loads, new_plan, save_plan, validate)

MODULES = ["speech_encoder.encoder.layers.11.ffn2", "text_decoder.layers.3.cross_attention"]


def good() -> dict:
    """A valid plan as a dict, as read from a file, for the tests to plant faults in."""
    plan = new_plan("facebook/hf-seamless-m4t-medium", ["aeb", "bem", "est", "gle"], "runs/x")
    return plan.with_split(MODULES[0], [["aeb"], ["bem"], ["est", "gle"]],
                           {"excess_divergence": 0.31, "cca_mean": 0.22}, False).to_dict()


def faults_of(plan, known=MODULES) -> list[str]:
    with pytest.raises(PlanError) as err:
        validate(plan, known)
    return err.value.faults


def test_a_good_plan_validates_and_round_trips_through_its_type():
    plan = SharingPlan.from_dict(good(), MODULES)
    assert plan.to_dict() == good() and list(plan.to_dict()) == list(good())
    assert plan.modules[MODULES[0]].groups == (("aeb",), ("bem",), ("est", "gle"))


def test_a_plan_is_frozen_and_valid_by_construction():
    plan = SharingPlan.from_dict(good())
    with pytest.raises(TypeError):
        plan.modules["x"] = ModuleSplit([["aeb", "bem", "est", "gle"]])  # no item assignment
    with pytest.raises(TypeError):
        plan.modules[MODULES[0]].evidence["cca_mean"] = 1.0
    with pytest.raises(AttributeError):
        plan.model = "other"
    with pytest.raises(PlanError, match=r"; gle in no group"):
        plan.with_split(MODULES[1], [["aeb"], ["bem", "est"]])
    with pytest.raises(PlanError, match="is not a module of the model"):
        plan.with_split("nope", [["aeb", "bem"], ["est", "gle"]]).check(MODULES)
    import pickle

    assert pickle.loads(pickle.dumps(plan)) == plan  # Streamlit's cache pickles what it keeps


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p["modules"].update({"nope.module": {"groups": [["aeb", "bem", "est", "gle"]]}}),
     "module 'nope.module' is not a module of the model"),
    (lambda p: p["modules"][MODULES[0]].update(groups=[["aeb", "xxx"], ["bem"], ["est", "gle"]]),
     "unknown language(s) xxx (the plan's languages are aeb bem est gle)"),
    (lambda p: p["modules"][MODULES[0]].update(groups=[["aeb", "bem"], ["bem"], ["est", "gle"]]),
     "language(s) bem appear in more than one group"),
    (lambda p: p["modules"][MODULES[0]].update(groups=[["aeb"], ["est", "gle"]]),
     "groups do not partition the languages; bem in no group"),
    (lambda p: p.update(languages=["aeb", "aeb", "est"]), "'languages' repeats aeb"),
    (lambda p: p.update(colour="red"), "unknown key 'colour' at the top"),
    (lambda p: p["modules"][MODULES[0]].update(note="x"), "unknown key 'note'"),
    (lambda p: p.update(schema="gradlens.sharing-plan/0"), "schema is 'gradlens.sharing-plan/0'"),
    (lambda p: p.pop("model"), "missing key 'model'"),
    (lambda p: p["modules"][MODULES[0]].update(groups=[["aeb"], [], ["bem", "est", "gle"]]),
     "a group is empty"),
    (lambda p: p["modules"][MODULES[0]].update(edited="yes"), "'edited' must be true or false"),
])
def test_each_fault_has_its_own_message(mutate, message):
    plan = good()
    mutate(plan)
    assert any(message in f for f in faults_of(plan)), faults_of(plan)


def test_all_faults_are_reported_together():
    plan = good()
    plan["extra"] = 1
    plan["modules"]["nope"] = {"groups": []}
    assert len(faults_of(plan)) == 2


@pytest.mark.parametrize("fmt, name", [("json", "plan.json"), ("yaml", "plan.yaml")])
def test_round_trips_exactly(tmp_path, fmt, name):
    plan = good()
    typed = SharingPlan.from_dict(plan)
    assert loads(dumps(typed, fmt), fmt, MODULES) == typed
    path = save_plan(typed, tmp_path / name, MODULES)
    assert load_plan(path, MODULES) == typed
    assert load_plan(path).to_dict() == plan
    assert dumps(load_plan(path), fmt) == dumps(typed, fmt)
    bare = {k: v for k, v in plan.items()}
    bare["modules"] = {MODULES[0]: {"groups": plan["modules"][MODULES[0]]["groups"]}}
    assert SharingPlan.from_dict(bare).to_dict() == bare  # no evidence, no edited: none added


def test_file_errors_name_the_file(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(PlanError, match=r"bad\.json: not valid JSON"):
        load_plan(tmp_path / "bad.json")
    with pytest.raises(PlanError, match=r"none\.json: file not found"):
        load_plan(tmp_path / "none.json")


def test_diff_lists_changes_per_module():
    a = SharingPlan.from_dict(good())
    b = (a.with_split(MODULES[0], [["aeb", "bem"], ["est", "gle"]])
         .with_split(MODULES[1], [["aeb", "bem", "est"], ["gle"]]))
    changes = {c.module: c.change for c in diff(a, b)}
    assert changes == {MODULES[0]: "regrouped", MODULES[1]: "added"}
    assert [c.change for c in diff(b, new_plan("m", ["aeb", "bem", "est", "gle"]))] == ["removed", "removed"]
    c = a.with_split(MODULES[0], [["gle", "est"], ["bem"], ["aeb"]])  # the same partition
    assert diff(a, c) == []


def test_extra_parameters():
    assert SharingPlan.from_dict(good()).extra_parameters({MODULES[0]: 1000, MODULES[1]: 5}) == 2000


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    json_values,
    st.fixed_dictionaries({"schema": st.just(SCHEMA), "model": json_values, "languages": json_values,
                           "modules": json_values}),
    st.fixed_dictionaries({"schema": st.just(SCHEMA), "model": st.just("m"),
                           "languages": st.lists(st.sampled_from(["a", "b", "c"]), max_size=4),
                           "modules": st.dictionaries(st.sampled_from(MODULES + ["x"]), json_values,
                                                      max_size=3)})))
def test_malformed_plans_give_a_clear_error_never_a_traceback(plan):
    try:
        validate(plan, MODULES)
    except PlanError as err:
        assert err.faults and all(isinstance(f, str) and f for f in err.faults)
    text = json.dumps(plan)
    try:
        loads(text, "json", MODULES)
    except PlanError:
        pass


def test_groups_text_round_trips_and_keeps_empty_groups_for_the_validator():
    from gradlens.plan import format_groups, parse_groups

    assert parse_groups("spa ita | deu,rus") == [["spa", "ita"], ["deu", "rus"]]
    assert format_groups([["spa", "ita"], ["deu", "rus"]]) == "spa ita | deu rus"
    assert parse_groups("spa || deu") == [["spa"], [], ["deu"]]
    assert parse_groups("  ") == []


def test_table_rows_become_a_plan_with_a_fault_per_bad_row():
    from gradlens.plan import plan_csv, plan_from_rows, plan_rows

    proposed = new_plan("tiny", ["spa", "ita", "deu"]).with_split(
        "m1", [["spa", "ita"], ["deu"]], {"excess_divergence": 2.0}, False)
    rows = plan_rows(proposed)
    assert rows[0]["groups"] == "spa ita | deu" and rows[0]["excess_divergence"] == 2.0
    rows += [{"module": "m2", "groups": "spa | ita deu"},          # added: edited, evidence given
             {"module": "m1", "groups": "spa ita deu"},            # listed twice
             {"module": "m3", "groups": "spa | ita"},              # deu in no group
             {"module": "nope", "groups": "spa | ita deu"},        # unknown module
             {"module": None, "groups": "spa"}]                    # no module picked
    plan, faults = plan_from_rows(rows, proposed, proposed, ["m1", "m2", "m3"],
                                  {"m2": {"excess_divergence": 1.5}})
    assert faults[0] == [] and faults[1] == []
    assert any("listed twice" in f for f in faults[2])
    assert any("; deu in no group" in f for f in faults[3])
    assert faults[4] == ["module 'nope' is not a module of the model"]
    assert faults[5] == ["pick a module for this row"]
    assert list(plan.modules) == ["m1", "m2"]
    assert plan.modules["m1"].edited is False
    assert plan.modules["m2"] == ModuleSplit([["spa"], ["ita", "deu"]], {"excess_divergence": 1.5},
                                             True)
    plan.check(["m1", "m2", "m3"])
    csv_text = plan_csv(plan).splitlines()
    assert csv_text[0] == "module,groups,excess_divergence,edited"
    assert csv_text[2] == "m2,spa | ita deu,1.5,True"


def test_decisions_must_be_reasons_by_module():
    plan = new_plan("tiny", ["spa", "ita"]).to_dict()
    plan["decisions"] = {"m1": "kept shared: no divergence beyond noise"}
    assert SharingPlan.from_dict(plan).decisions == plan["decisions"]
    plan["decisions"] = {"m1": 0.3}
    with pytest.raises(PlanError, match="'decisions' must map module names"):
        SharingPlan.from_dict(plan)


def test_odd_plan_files_get_named_errors_and_big_plans_validate(tmp_path):
    with pytest.raises(PlanError, match="is a directory, not a plan file"):
        load_plan(tmp_path)
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(PlanError, match=r"bin.json: not UTF-8 text \(byte 0\)"):
        load_plan(tmp_path / "bin.json")
    many = [f"l{i:05d}" for i in range(20_000)]
    plan = {"schema": SCHEMA, "model": "tiny", "languages": many + ["l00007"],
            "modules": {"m": {"groups": [many[:10_000], many[10_000:]]}}}
    with pytest.raises(PlanError, match=r"'languages' repeats l00007$"):
        validate(plan)  # counted once (Counter), not 20,000 list scans of 20,000


def test_an_edited_row_exports_what_its_groups_cost_now():
    from gradlens.plan import plan_csv, plan_from_rows

    proposed = new_plan("tiny", ["spa", "ita", "deu", "rus"]).with_split(
        "m1", [["spa", "ita"], ["deu", "rus"]], {"extra_params": 128}, False)
    rows = [{"module": "m1", "groups": "spa | ita | deu | rus"}]       # 4 groups: 3 copies more
    plan, faults = plan_from_rows(rows, proposed, proposed, ["m1"], n_params={"m1": 128})
    assert faults == [[]] and plan.modules["m1"].evidence["extra_params"] == 384
    assert "384" in plan_csv(plan)
    assert proposed.modules["m1"].evidence["extra_params"] == 128  # the proposal untouched


def test_a_yaml_with_anchors_gives_a_short_named_error(tmp_path):
    """273 bytes of nested anchors once produced a 226-million-character message."""
    levels = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, cur in zip("abcdef", "bcdefg"):
        levels.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(levels) + "\n")
    with pytest.raises(PlanError) as err:
        load_plan(bomb)
    assert str(bomb) in str(err.value) and len(str(err.value)) < 2000


def test_an_edited_row_drops_the_figures_of_the_proposed_groups():
    """What a split gains and how well its groups are supported were measured for the proposed
    groups: once a person edits them, those figures are unknown, not carried over."""
    from gradlens.plan import GROUP_FIGURES, plan_from_rows

    figures = {"excess_divergence": 0.2, "split_gain": 3.0, "group_support": 0.9,
               "extra_params": 128}
    proposed = new_plan("tiny", ["spa", "ita", "deu", "rus"]).with_split(
        "m1", [["spa", "ita"], ["deu", "rus"]], figures, False)
    same = [{"module": "m1", "groups": "spa ita | deu rus"}]
    plan, _ = plan_from_rows(same, proposed, proposed, ["m1"])
    assert plan.modules["m1"].evidence["group_support"] == 0.9
    moved = [{"module": "m1", "groups": "spa deu | ita rus"}]
    plan, _ = plan_from_rows(moved, proposed, proposed, ["m1"])
    ev = plan.modules["m1"].evidence
    assert all(ev.get(k) is None for k in GROUP_FIGURES) and ev["excess_divergence"] == 0.2


def test_the_table_refuses_a_one_group_split_and_the_decisions_say_what_the_person_did():
    from gradlens.plan import plan_from_rows

    proposed = new_plan("tiny", ["spa", "ita", "deu"]).with_split(
        "m1", [["spa", "ita"], ["deu"]], {"excess_divergence": 2.0}, False).with_split(
        "m2", [["spa"], ["ita", "deu"]], {}, False)
    proposed = dataclasses.replace(proposed, decisions={
        "m1": "split into 2 groups (q = 0.01)", "m2": "split into 2 groups (q = 0.02)",
        "m3": "kept shared: no divergence beyond noise (q = 0.4)"})
    rows = [{"module": "m1", "groups": "spa ita | deu"},      # as proposed
            {"module": "m3", "groups": "spa | ita | deu"},    # split by hand
            {"module": "m2", "groups": "spa ita deu"}]        # one group: no split
    plan, faults = plan_from_rows(rows, proposed, proposed, ["m1", "m2", "m3"])
    assert faults[2] == ["module 'm2': one group holding every language is no split; delete "
                         "the row to share the module"]
    assert plan.decisions["m1"] == "split into 2 groups (q = 0.01)"
    assert plan.decisions["m3"] == ("split by hand into 3 groups (the analysis: kept shared: no "
                                    "divergence beyond noise (q = 0.4))")
    assert plan.decisions["m2"] == "kept shared by hand (the analysis: split into 2 groups (q = 0.02))"
    # edited again from the saved plan: the analysis's words are kept, not nested
    again, _ = plan_from_rows([{"module": "m3", "groups": "spa | ita deu"}], plan, proposed,
                              ["m1", "m2", "m3"])
    assert again.decisions["m3"] == ("split by hand into 2 groups (the analysis: kept shared: no "
                                     "divergence beyond noise (q = 0.4))")
