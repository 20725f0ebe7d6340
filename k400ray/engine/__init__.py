"""Training and evaluation of one trial (preset x augmentation x seed) under Ray Train."""
