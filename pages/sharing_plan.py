"""Sharing plan: the proposed plan in an editable table, checked on every edit, diffed against
the proposal, costed against the budget, saved into the run and downloaded."""

import pandas as pd
import streamlit as st

from gradlens import ui
from gradlens.modules import module_label
from gradlens.analysis.allocation import evidence_fields, propose_plan
from gradlens.analysis.stability import agreement_text
from gradlens.paths import PLAN_FILE
from gradlens.plan import (EVIDENCE_COLUMNS, PlanError, SharingPlan, diff, dumps, format_groups,
                           load_plan, plan_csv, plan_from_rows, plan_rows, save_plan,
                           without_group_figures)
from gradlens.report import moving_model_caveat

st.header("Sharing plan")
run = ui.current_run()
if run is None or not ui.needs_steps(run, 2, "A proposed plan (divergence needs odd and even steps)"):
    st.stop()
meta = ui.meta(run)
modules = meta.modules
if caveat := moving_model_caveat(meta.train_steps_between):
    st.warning(caveat)
total = sum(meta.n_params.values())
evidence = ui.evidence(run)

budget = ui.budget_slider("plan_budget")
proposed = propose_plan(evidence, budget, total, meta.model, meta.languages, str(run))
saved_path = run / PLAN_FILE
work = st.session_state["plan_work"].get(str(run))
base = st.session_state["plan_base"].get(str(run), proposed)  # what the table started from
version = st.session_state.setdefault("plan_version", 0)


def start_from(plan: SharingPlan, origin: SharingPlan) -> None:
    st.session_state["plan_work"][str(run)] = plan
    st.session_state["plan_base"][str(run)] = origin
    st.session_state["plan_version"] = version + 1


if work is None:
    work = proposed
    if saved_path.exists():
        try:
            work = load_plan(saved_path, modules)
            st.caption(f"Editing the plan saved in `{saved_path}`.")
        except PlanError as exc:
            st.error(f"The saved plan cannot be used: {exc}. Starting from the proposed plan.")
    st.session_state["plan_work"][str(run)] = work
    st.session_state["plan_base"][str(run)] = base = proposed
agreement = ui.plan_agreement(run)
if agreement is None:
    st.caption("Would another probe of this model propose the same plan? Probe it again with "
               "other seeds, then `python -m gradlens plan RUN --against RUN2 RUN3` reports how "
               "well the plans agree, here and in the run's `plan-agreement.json`.")
else:
    st.info(f"Against {len(agreement['runs']) - 1} other probe(s) of this model (saved by "
            f"`gradlens plan --against`): {agreement_text(agreement)}.")
pending = st.session_state.get(f"plan_editor_{version}") or {}
edited = bool(diff(base, work)) or any(pending.get(k) for k in ("edited_rows", "added_rows",
                                                                 "deleted_rows"))
if not edited and diff(base, proposed):
    start_from(proposed, proposed)  # nothing edited: the table follows the budget
    st.rerun()
if edited and diff(base, proposed):
    st.info(f"The table holds your edits, made on the plan proposed at another budget; at "
            f"{budget:.0%} the proposal splits {len(proposed.modules)} module(s).")
    if st.button(f"Re-propose at {budget:.0%} (drops your edits)", key="plan_repropose"):
        start_from(proposed, proposed)
        st.rerun()
if st.button("Start again from the proposed plan", key="plan_reset"):
    start_from(proposed, proposed)
    st.rerun()

st.caption("One row per module that is not shared by all languages. Groups: languages split by "
           "spaces, groups by `|` (e.g. `spa ita | deu rus`), or picked below. Add a row to split "
           "a module, delete a row to share it again, edit the groups to merge or split them.")
table = pd.DataFrame(plan_rows(work), columns=["module", "groups", *EVIDENCE_COLUMNS, "edited"])
edited = st.data_editor(
    table, key=f"plan_editor_{version}", num_rows="dynamic", hide_index=True, width="stretch",
    column_config={
        "module": st.column_config.SelectboxColumn("module", options=modules, required=True),
        "groups": st.column_config.TextColumn("groups", required=True),
        **{c: st.column_config.NumberColumn(c, disabled=True, format="%.3f")
           for c in EVIDENCE_COLUMNS if c not in ("split_gain", "group_support", "extra_params")},
        "group_support": st.column_config.NumberColumn(
            "group support", disabled=True, format="%.2f",
            help="bootstrap support of the least supported group: the share of trees from "
                 "resampled steps in which it is a clade. Below 0.70 the languages differ but "
                 "how to group them is uncertain. Empty for edited groups (not measured)"),
        "split_gain": st.column_config.NumberColumn(  # in squared-gradient units: any scale
            "split gain", disabled=True, format="%.3g",
            help="what the split buys to first order: the between-group energy of the languages' "
                 "mean gradients, measured on steps the groups were not chosen on (on the same "
                 "steps it counts noise as gain; docs/methods.md). The budget goes to the "
                 "largest lower bound per parameter. Empty for edited groups (not measured)"),
        "extra_params": st.column_config.NumberColumn("extra params", disabled=True),
        "edited": st.column_config.CheckboxColumn("edited", disabled=True)})
rows = edited.to_dict("records")
plan, faults = plan_from_rows(rows, work, proposed, modules,
                              {e.module: evidence_fields(e) for e in evidence}, meta.n_params)
checks = pd.DataFrame({"module": [r.get("module") for r in rows],
                       "check": ["; ".join(f) if f else "ok" for f in faults]})
st.dataframe(checks, hide_index=True, width="stretch", key="plan_checks")
bad = [f for row in faults for f in row]
for fault in bad:
    st.error(fault)
faulty = {r.get("module") for r, f in zip(rows, faults) if f}
if not bad and diff(work, plan):  # a valid edit: the table is redrawn from it, so that its
    start_from(plan, base)        # figures (gain, support, cost) are the new groups' own
    st.rerun()


def group_picker() -> None:
    """Languages picked into groups for one module, instead of typed: applied to the table."""
    langs = meta.languages
    key = st.selectbox("Module", modules, key="plan_pick_module", format_func=module_label,
                       index=modules.index(next(iter(plan.modules), modules[0])))
    current = [list(g) for g in (plan.modules[key].groups if key in plan.modules else [langs])]
    n = int(st.number_input("Groups", 1, len(langs), max(2, len(current)), key="plan_pick_n"))
    cols = st.columns(n)
    picks = [cols[g].multiselect(f"Group {g + 1}", langs,
                                 default=current[g] if g < len(current) else [],
                                 key=f"plan_pick_{key}_{n}_{g}") for g in range(n)]
    left_out = [x for x in langs if not any(x in p for p in picks)]
    if left_out:
        st.caption(f"Not in a group yet: {' '.join(left_out)}")
    if st.button("Apply to the table", key="plan_pick_apply"):
        groups = [p for p in picks if p]
        try:
            if len(groups) <= 1 and not left_out:  # one group: shared by all again
                new = plan.with_modules({k: e for k, e in plan.modules.items() if k != key})
            else:
                figures = next(evidence_fields(e) for e in evidence if e.module == key)
                new = plan.with_split(key, groups, {
                    **without_group_figures(figures),
                    "extra_params": (len(groups) - 1) * meta.n_params[key]}, True)
            new.check(modules)
        except PlanError as exc:
            st.error("The picked groups: " + "; ".join(exc.faults))
            return
        start_from(new, base)
        st.rerun()


with st.expander("Pick languages into groups", expanded=False):
    group_picker()

cost = plan.extra_parameters(meta.n_params)
allowed = int(budget * total)
over = cost > allowed
c1, c2, c3 = st.columns(3)
c1.metric("Modules split", len(plan.modules))
c2.metric("Extra parameters", f"{cost:,}")
c2.caption(f"{cost / total:.1%} of the model")
c3.metric("Budget", f"{allowed:,}")
c3.caption(f"{budget:.0%} of the model")
st.progress(min(cost / allowed, 1.0) if allowed else (1.0 if cost else 0.0),
            text="over the budget" if over else "within the budget")
if over:
    st.error(f"Over the budget by {cost - allowed:,} parameters ({cost / total:.1%} of the model "
             f"against {budget:.0%}). Share a module again, merge groups, or raise the budget.")
    over_ok = st.checkbox("Save it over the budget anyway", key="plan_over_ok")
else:
    over_ok = True

changes = [c for c in diff(base, plan) if c.module not in faulty]
st.subheader("Your changes to the proposed plan")
if changes:
    st.dataframe(pd.DataFrame([{"module": c.module, "change": c.change,
                                "proposed": format_groups(c.before) if c.before else "shared",
                                "now": format_groups(c.after) if c.after else "shared"}
                               for c in changes]), hide_index=True, width="stretch",
                 key="plan_diff")
else:
    st.caption("No change from the proposed plan.")
if faulty:
    st.caption("Rows with faults are left out of the changes until they check out: "
               + ", ".join(str(m) for m in sorted(faulty, key=str)) + ".")

row = st.container(horizontal=True)
if row.button("Save into the run", key="plan_save", type="primary",
              disabled=bool(bad) or not over_ok):
    save_plan(plan, saved_path, modules)
    st.session_state["plan_work"][str(run)] = plan
    st.success(f"Saved {saved_path}")
for fmt, mime in (("json", "application/json"), ("yaml", "application/yaml")):
    row.download_button(fmt.upper(), data=dumps(plan, fmt), file_name=f"plan.{fmt}", mime=mime,
                        key=f"plan_dl_{fmt}", disabled=bool(bad), on_click="ignore")
row.download_button("CSV", data=plan_csv(plan), file_name="plan.csv", mime="text/csv",
                    key="plan_dl_csv", disabled=bool(bad), on_click="ignore")
if bad:
    st.caption("Saving and downloads wait until every row checks out.")
elif not over_ok:
    st.caption("Saving waits until the plan fits the budget, or you tick the box above.")
