"""``convforge draw``: the command line of :mod:`convforge.draw`."""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

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
    p.add_argument("--channels", default="groups", metavar="groups|all|C[,C...]",
                   help="output channels to animate: the first of each group (default), all, or a list")
    p.add_argument("--ms", type=int, default=700, help="GIF milliseconds per frame (default 700)")
    return p


def _ints(text: str, what: str):
    try:
        return tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{what} must be comma-separated integers such as 1,1,5,5, got {text!r}") from None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``convforge draw``; returns the exit status (0 ok, 2 bad arguments or layer)."""
    from . import draw
    from .._spec import parse_layer
    parser = _parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        layer = parse_layer(args.layer)
        shape = _ints(args.input, "--input")
        frame = args.frame
        if frame is not None and frame != "all":
            frame = _ints(frame, "--frame")[0]
        channels = args.channels
        if channels not in ("groups", "all"):
            channels = list(_ints(channels, "--channels"))
        kw = dict(values=args.values, seed=args.seed, view=args.view, channels=channels)
        if args.out.lower().endswith(".gif"):
            kw["ms_per_frame"] = args.ms
        path = draw(layer, shape, args.out, frame=frame, **kw)
    except (ValueError, TypeError, ImportError) as exc:
        print(f"convforge draw: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0
