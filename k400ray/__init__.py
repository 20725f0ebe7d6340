"""k400ray: Ray-distributed ablation grids for Kinetics-400 action recognition.

Layers, lowest first (a module never imports a layer above its own; tests/test_layers.py checks):
``data`` -> ``models`` -> ``presets`` -> ``engine`` -> ``tracking`` -> ``tune`` -> ``report`` -> ``console`` -> ``cli``.
``presets`` is ``presets.py`` and ``preset_summary.py``; ``cli`` is the ``cli/`` package and
``__main__.py``. ``bench`` sits beside ``tune`` and uses layers up to
``engine``. ``runtime.py`` (starting Ray), ``ray_private.py`` (every use of Ray's private API),
``text_table.py`` and ``contracts.py`` (the metric keys, trial statuses and MLflow tags that
processes and commands exchange) sit below every layer and serve them all; of k400ray,
``runtime.py`` imports ``ray_private.py`` only, the other three nothing.
"""

__version__ = "0.1.0"
