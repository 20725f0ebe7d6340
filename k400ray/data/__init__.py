"""Everything between a video file and a uint8 clip tensor: index, sampling, decode, transforms,
and the Ray Data pipeline that streams them."""
