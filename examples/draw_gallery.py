"""Draw every case convforge.draw covers into ./draw_gallery/ (PNG if Pillow is installed, else SVG), plus one
animated GIF and the interactive page.

    python examples/draw_gallery.py [out_dir]
"""
import os
import sys

from convforge import draw, nn

CASES = {
    "plain": (nn.Conv2d(1, 1, 3), (1, 1, 5, 5), {}),
    "padded_strided": (nn.Conv2d(1, 1, 3, stride=2, padding=1), (1, 1, 5, 5), {}),
    "reflect": (nn.Conv2d(1, 1, 3, padding=2, padding_mode="reflect"), (1, 1, 4, 4), {}),
    "replicate": (nn.Conv2d(1, 1, 3, padding=2, padding_mode="replicate"), (1, 1, 4, 4), {}),
    "circular": (nn.Conv2d(1, 1, 3, padding=2, padding_mode="circular"), (1, 1, 4, 4), {}),
    "dilated": (nn.Conv2d(1, 1, 3, dilation=2), (1, 1, 6, 6), {}),
    "transposed_conv_view": (nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1), (1, 1, 3, 3),
                             {"view": "conv"}),
    "transposed_scatter_view": (nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1),
                                (1, 1, 3, 3), {"view": "scatter"}),
    "grouped": (nn.Conv2d(4, 4, 3, groups=2, padding=1), (1, 4, 3, 3), {}),
    "depthwise": (nn.Conv2d(3, 3, 3, groups=3), (1, 3, 4, 4), {}),
    "conv1d": (nn.Conv1d(1, 1, 3, stride=2, padding=1), (1, 1, 8), {}),
    "conv3d": (nn.Conv3d(1, 1, 2, padding=(1, 0, 0)), (1, 1, 3, 3, 3), {}),
}


def main(out_dir="draw_gallery"):
    os.makedirs(out_dir, exist_ok=True)
    try:
        import PIL  # noqa: F401
        ext = "png"
    except ImportError:
        ext = "svg"
    for name, (layer, shape, kw) in CASES.items():
        fs = draw.frames(layer, shape, values=True, **kw)
        path = draw.draw(fs, None, os.path.join(out_dir, f"{name}.{ext}"), frame=len(fs) // 2)
        print(f"{path}: {len(fs)} frames")
    if ext == "png":
        print(draw.draw(nn.ConvTranspose1d(1, 1, 3, stride=2, padding=1, output_padding=1), (1, 1, 4),
                        os.path.join(out_dir, "transposed_1d.gif"), view="scatter", values=True))
    print(draw.draw(nn.Conv2d(2, 2, 3, stride=2, padding=1, groups=2), (1, 2, 5, 5),
                    os.path.join(out_dir, "page.html")))


if __name__ == "__main__":
    main(*sys.argv[1:])
