"""What a user sees while k400ray runs: the grid's live view or plain lines, Ray's output kept
in a log file, progress bars with a count, and the MLflow UI's links and parent-run description.

The CLI side of the layers: it renders the events the tune layer produces
(:mod:`k400ray.tune.events`) and may import anything below it.
"""
