"""``convforge draw``: the command line of :mod:`convforge.draw`."""
from __future__ import annotations

import argparse
import re
import sys
from typing import Optional, Sequence

from .._spec import parse_layer, shorten
from ._frames import frames
from ._write import draw

GIF_DEFAULT_FRAMES = 64
GIF_SECONDS_PER_FRAME, GIF_KB_PER_FRAME = 0.07, 10   # measured on small layers: for the note before a long GIF

USAGE_EXAMPLES = """examples:
  convforge draw "Conv2d(1, 1, 3, stride=2, padding=1)" --input 1,1,5,5 --out conv.svg
  convforge draw "Conv2d(1, 1, 3, padding=1, padding_mode='reflect')" --input 1,1,4,4 --out pad.png --values
  convforge draw "ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1)" --input 1,1,3,3 \\
      --out up.gif --view scatter
  convforge draw "Conv2d(4, 4, 3, groups=2)" --input 1,4,5,5 --out page.html
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="convforge draw", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=USAGE_EXAMPLES,
        description="Draw how a convolution layer moves over its input: SVG, PNG, animated GIF, or an "
                    "interactive offline HTML page (format from the --out extension).")
    p.add_argument("layer", help='layer spec, e.g. "Conv2d(1, 1, 3, stride=2, padding=1)"')
    p.add_argument("--input", required=True, metavar="N,C,*S",
                   help="input shape, channels first, e.g. 1,1,5,5 (the batch may be left out)")
    p.add_argument("--out", default="conv.svg", help="output file: .svg, .png, .gif or .html (default conv.svg)")
    p.add_argument("--values", action="store_true",
                   help="show numbers (small integers) in the cells and the products and their sum in the formula")
    p.add_argument("--seed", type=int, default=0, help="seed of the --values numbers (default 0)")
    p.add_argument("--view", choices=("conv", "scatter"), default=None,
                   help="transposed layers: 'conv' (stride-expanded input, flipped kernel; default) or 'scatter'")
    p.add_argument("--frame", default=None, metavar="N|all",
                   help="frame to draw in .svg/.png (default 0); 'all' makes an animated SVG")
    p.add_argument("--channels", default=None, metavar="groups|all|C[,C...]",
                   help="output channels to animate: the first of each group (default; a .gif with more than "
                        f"{GIF_DEFAULT_FRAMES} frames that way shows channel 0 only), all, or a list")
    p.add_argument("--ms", type=int, default=700, help="GIF milliseconds per frame (default 700)")
    return p


def _ints(text: str, what: str):
    parts = [v.strip() for v in text.replace("x", ",").split(",") if v.strip()]
    if not parts or not all(re.fullmatch(r"-?\d{1,18}", v) for v in parts):
        raise ValueError(f"{what} must be comma-separated integers such as 1,1,5,5, got {shorten(text)}")
    return tuple(int(v) for v in parts)


def _gif_channels(layer, shape, view, channels):
    """The channels a GIF animates, said on stderr before a long one starts.

    By default the first channel of each group, unless that makes more than GIF_DEFAULT_FRAMES frames: then
    output channel 0 only.  A GIF costs about 0.07 s and 10 KB a frame (one palette, changed rectangles only).
    """
    count = lambda chosen: len(frames(layer, shape, view=view, channels=chosen))
    if channels is None:
        every_group = count("groups")
        if every_group <= GIF_DEFAULT_FRAMES:
            return "groups"
        print(f"convforge draw: note: the first channel of every group makes {every_group} frames; drawing output "
              f"channel 0 only ({count([0])} frames). Pass --channels groups for all {every_group}, or "
              f"--channels C,...", file=sys.stderr)
        return [0]
    n = count(channels)
    if n > GIF_DEFAULT_FRAMES:
        print(f"convforge draw: note: {n} frames: about {max(1, round(n * GIF_SECONDS_PER_FRAME))} s and "
              f"{max(1, round(n * GIF_KB_PER_FRAME / 1024))} MB", file=sys.stderr)
    return channels


def _frame(text: Optional[str]):
    if text is None or text.strip() == "all":
        return text and "all"
    if not re.fullmatch(r"\s*\d{1,9}\s*", text):
        raise ValueError(f"--frame must be a frame number (0, 1, ...) or 'all', got {text!r}")
    return int(text)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``convforge draw``; returns the exit status (0 ok, 1 the file could not be written, 2 bad arguments or
    layer)."""
    parser = _parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        layer = parse_layer(args.layer)
        shape = _ints(args.input, "--input")
        frame = _frame(args.frame)
        channels = args.channels
        if channels not in (None, "groups", "all"):
            channels = list(_ints(channels, "--channels"))
        kw = dict(values=args.values, seed=args.seed, view=args.view)
        if args.out.lower().endswith(".gif"):
            kw["ms_per_frame"] = args.ms
            channels = _gif_channels(layer, shape, args.view, channels)
        kw["channels"] = "groups" if channels is None else channels
        path = draw(layer, shape, args.out, frame=frame, **kw)
    except (ValueError, TypeError, ImportError) as exc:
        print(f"convforge draw: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"convforge draw: error: cannot write {args.out!r}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0
