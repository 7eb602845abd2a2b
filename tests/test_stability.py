"""Agreement of plans proposed from separate probes: Jaccard of the split modules, adjusted Rand
index of the groups."""

import pytest

from gradlens.analysis.stability import plan_agreement
from gradlens.plan import new_plan

LANGS = ["spa", "ita", "deu", "rus"]


def plan(**splits):
    p = new_plan("tiny", LANGS)
    for module, groups in splits.items():
        p = p.with_split(module.replace("_", "."), groups)
    return p


def test_identical_plans_agree_fully_and_other_groups_score_by_their_rand_index():
    a = plan(m_1=[["spa", "ita"], ["deu", "rus"]], m_2=[["spa"], ["ita", "deu", "rus"]])
    same = plan_agreement([a, a])
    assert same.mean_jaccard == 1.0 and same.mean_ari == 1.0
    b = plan(m_1=[["spa", "deu"], ["ita", "rus"]], m_3=[["spa", "ita"], ["deu", "rus"]])
    other = plan_agreement([a, b])
    (pair,) = other.pairs
    assert pair.jaccard == pytest.approx(1 / 3) and pair.both == ["m.1"]
    assert pair.ari["m.1"] < 0  # a crossed partition agrees less than chance
    assert "Jaccard 0.33" in other.summary()


def test_plans_that_split_nothing_agree_and_say_there_are_no_groups_to_compare():
    nothing = plan_agreement([plan(), plan(), plan()])
    assert nothing.mean_jaccard == 1.0 and nothing.mean_ari is None and len(nothing.pairs) == 3
    assert "cannot be compared" in nothing.summary()


def test_plans_of_other_languages_or_a_single_plan_are_refused():
    with pytest.raises(ValueError, match="at least two"):
        plan_agreement([plan()])
    with pytest.raises(ValueError, match="do not compare"):
        plan_agreement([plan(), new_plan("tiny", ["spa", "ita"])])
