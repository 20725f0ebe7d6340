"""Benchmarks (``k400ray bench data|train|index``): how close each stage comes to its hardware limit.

For video training the usual bottleneck is decoding, so each benchmark measures a stage next to
the limit it cannot beat, in the same run and with the same processes:

- ``data``: decoder alone (one process per core) vs the Ray Data pipeline vs a torch DataLoader;
- ``train``: step time split into data wait and compute, stall fraction, memory, and on a GPU the
  ratio to the compute-bound limit from the model's FLOPs;
- ``index``: videos probed per second per core, and memory while indexing 240k rows.

Layering: ``bench`` sits above ``data``, ``models``, ``presets`` and ``engine`` (it imports them,
they never import it). Results and how to read them: ``docs/benchmarks.md``.
"""
