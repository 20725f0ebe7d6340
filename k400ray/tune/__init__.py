"""The ablation grid: a validated YAML spec expanded into trials, scheduled by Ray Tune."""
