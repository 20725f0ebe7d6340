"""What every command shares: the one-line error contract and argument parsing helpers."""

from __future__ import annotations

import typer


def fail(message: str, code: int = 2) -> None:
    """One line on stderr, non-zero exit: the contract for every bad input."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def parse_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` of an H.264 video (even, >= 16), or a one-line error."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        fail(f"--size must look like WIDTHxHEIGHT (e.g. 340x256), got {text!r}")
    if w < 16 or h < 16 or w % 2 or h % 2:
        fail(f"--size {text}: width and height must be even and >= 16 (H.264 yuv420p)")
    return w, h
