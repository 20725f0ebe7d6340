"""k400ray: Ray-distributed ablation grids for Kinetics-400 action recognition.

Layers, lowest first (a module never imports a layer above its own; tests/test_layers.py checks):
``data`` -> ``models`` -> ``presets`` -> ``engine`` -> ``tracking`` -> ``tune`` -> ``report`` -> ``console`` -> ``cli``.
``presets`` is ``presets.py`` and ``preset_summary.py``; ``cli`` is the ``cli/`` package and
``__main__.py``. ``bench`` sits beside ``tune`` and uses layers up to
``engine``. ``runtime.py`` (starting Ray), ``text_table.py`` and ``contracts.py`` (the metric
keys, trial statuses and MLflow tags that processes and commands exchange) import nothing of
k400ray and serve every layer.
"""

__version__ = "0.1.0"
