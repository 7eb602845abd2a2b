"""A job's metrics read back: its pace and the time left."""

import pytest

from gradlens.metrics import last_step, pace


def test_pace_is_the_recent_steps_per_second_and_the_time_left_at_it():
    records = [{"kind": "train", "step": s, "seconds": 2.0 if s <= 10 else 0.5}
               for s in range(1, 31)]
    records.append({"kind": "eval", "step": 30, "split": "dev", "language": "all", "chrf": 1.0})
    rate, left = pace(records, total=100)
    assert last_step(records) == 30
    assert rate == pytest.approx(2.0)  # the last 20 steps, not the slow start
    assert left == pytest.approx(70 / 2.0)
    assert pace([], total=100) is None


def _eval(step, split, chrf, lang="all", n=16):
    return {"kind": "eval", "step": step, "split": split, "language": lang, "bleu": chrf / 2,
            "chrf": chrf, "n": n}


def test_the_starting_model_is_the_baseline_never_a_jobs_result():
    from gradlens.metrics import fell_below_start, final_scores, start_scores

    records = [_eval(0, "test", 40.0), _eval(0, "test", 41.0, "spa")]
    assert final_scores(records) == {}                    # nothing trained has been scored yet
    assert start_scores(records)["all"] == {"bleu": 20.0, "chrf": 40.0, "n": 16}
    assert fell_below_start(records) is None
    records += [_eval(100, "test", 36.0), _eval(200, "test", 34.9)]
    assert final_scores(records)["all"]["chrf"] == 34.9
    assert fell_below_start(records) == (40.0, 34.9)      # more than 5 points under the start
    records.append(_eval(300, "test", 35.5))
    assert fell_below_start(records) is None              # within 5 points: not flagged


def test_a_score_over_few_utterances_comes_with_a_wide_interval():
    import sacrebleu

    from gradlens.significance import utterance_interval

    refs = [f"the number {i} and {i + 1}" for i in range(64)]
    hyps = [r if i % 3 else r.replace("and", "or") for i, r in enumerate(refs)]
    whole = utterance_interval(hyps, refs, "chrf", draws=300)
    assert whole.mean == sacrebleu.corpus_chrf(hyps, [refs]).score and whole.n == 64
    assert whole.low < whole.mean < whole.high
    few = utterance_interval(hyps[:8], refs[:8], "chrf", draws=300)
    assert few.high - few.low > whole.high - whole.low   # 8 utterances say less than 64
