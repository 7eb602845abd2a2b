"""Training from a sharing plan: the plan-routed model, MGCM projection, the loop, jobs."""
