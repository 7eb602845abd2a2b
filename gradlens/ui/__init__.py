"""Everything the Streamlit pages share, in three parts: ``state`` (session state, the runs, the
run picked), ``cache`` (what is read from runs, cached per run and modification time, and the
bounded in-memory evidence store) and ``widgets`` (downloads, timing), plus ``jobs`` (the
training jobs as the app reads them). Pages call ``ui.<name>`` and draw; they hold no math.
"""

from gradlens.paths import runs_dir
from gradlens.store import RunError
from gradlens.ui.cache import (clustering, drift, evidence, grouping, meta, module_evidence,
                               prefetch_trees, shown_if_damaged, strongest_unit, summary, typology,
                               warm_first_visit)
from gradlens.ui.jobs import (follow_jobs, job, job_records, jobs, test_intervals,
                              training_pace)
from gradlens.ui.state import (budget_slider, current_run, init_state, models_used, needs_steps,
                               plan_agreement, run_paths)
from gradlens.ui.widgets import downloads, png_available, span, timing

__all__ = ["RunError", "budget_slider", "clustering", "current_run", "downloads", "drift",
           "evidence", "follow_jobs", "grouping", "init_state", "job", "job_records", "jobs", "meta",
           "models_used", "module_evidence", "needs_steps", "plan_agreement", "png_available",
           "prefetch_trees", "run_paths", "runs_dir", "shown_if_damaged", "span",
           "strongest_unit", "summary", "test_intervals", "timing", "training_pace", "typology",
           "warm_first_visit"]
