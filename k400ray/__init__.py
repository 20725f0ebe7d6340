"""k400ray: Ray-distributed ablation grids for Kinetics-400 action recognition.

Layers, lowest first (a module never imports a layer above its own):
``data`` -> ``models`` -> ``presets`` -> ``engine`` -> ``tune`` -> ``tracking``/``report`` -> ``cli``.
"""

__version__ = "0.1.0"
