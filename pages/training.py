"""Training: start a job from the current sharing plan and follow it to its BLEU/chrF."""

import streamlit as st

from gradlens import ui

st.header("Training")
run = ui.current_run()
if run is not None:
    plan = run / "plan.json"
    st.info("Training from a plan is not in this version yet. Missing: the plan-routed "
            "SeamlessM4T (one copy of a module per language group), the training loop with "
            "MGCM projection and BLEU/chrF evaluation, and the job registry with its local and "
            "Ray backends. What is ready: the plan itself — "
            + (f"this run has one saved at `{plan}`." if plan.exists()
               else "save one on the Sharing plan page."))
