"""MLflow records of a grid: one parent run per experiment, one child run per trial.

``mlflow_log`` finds, creates and closes the runs; ``artifacts`` writes what a finished trial
leaves behind; ``epoch_callback`` is the Ray Train callback that logs each epoch's metrics.
What each run holds is described in ``docs/tracking.md``.
"""
