"""PNG and animated GIF through Pillow (the optional extra ``viz``), drawing the same scenes as the SVG."""
from __future__ import annotations

from functools import lru_cache
from typing import List, Sequence

from ._scene import Line, Rect, Scene, Text

INSTALL_HINT = "pip install convforge[viz]"


def _pillow():
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError as exc:
        raise ImportError(f"PNG and GIF output need Pillow, which is not installed; install it with "
                          f"`{INSTALL_HINT}` (or write .svg / .html, which need nothing)") from exc
    return Image, ImageDraw, ImageFont


@lru_cache(maxsize=64)
def _font(size: float, bold: bool):
    _, _, ImageFont = _pillow()
    names = ("DejaVuSansMono-Bold.ttf", "DejaVuSansMono.ttf") if bold else ("DejaVuSansMono.ttf",)
    for name in names:
        for path in (name, "/usr/share/fonts/truetype/dejavu/" + name):
            try:
                return ImageFont.truetype(path, max(int(round(size)), 6))
            except OSError:
                continue
    try:
        return ImageFont.load_default(size=size)
    except TypeError:   # Pillow < 10.1: fixed bitmap font
        return ImageFont.load_default()


def render(scene: Scene, scale: float = 1.0):
    """A ``PIL.Image`` of ``scene`` (``scale`` multiplies every coordinate, e.g. 2 for sharp text)."""
    Image, ImageDraw, _ = _pillow()
    img = Image.new("RGB", (int(scene.width * scale), int(scene.height * scale)), scene.background)
    draw = ImageDraw.Draw(img)
    z = scale
    for it in scene.items:
        if isinstance(it, Rect):
            box = [it.x * z, it.y * z, (it.x + it.w) * z, (it.y + it.h) * z]
            fill = None if it.fill == "none" else it.fill
            draw.rectangle(box, fill=fill)
            if it.stroke and it.stroke != "none":
                if it.dash:
                    _dashed_rect(draw, box, it.stroke, max(1, int(it.stroke_width * z)))
                else:
                    draw.rectangle(box, outline=it.stroke, width=max(1, int(round(it.stroke_width * z))))
            if it.cross:
                draw.line([box[0], box[1], box[2], box[3]], fill="#c0392b", width=max(1, int(z)))
                draw.line([box[2], box[1], box[0], box[3]], fill="#c0392b", width=max(1, int(z)))
        elif isinstance(it, Text):
            font = _font(it.size * z, it.bold)
            anchor = {"start": "ls", "middle": "ms", "end": "rs"}[it.anchor]
            draw.text((it.x * z, it.y * z), it.text, fill=it.fill, font=font, anchor=anchor)
        elif isinstance(it, Line):
            draw.line([it.x1 * z, it.y1 * z, it.x2 * z, it.y2 * z], fill=it.stroke, width=max(1, int(it.width * z)))
    return img


def _dashed_rect(draw, box, color, width, dash=4, gap=3):
    x0, y0, x1, y1 = box
    for (ax, ay, bx, by) in ((x0, y0, x1, y0), (x1, y0, x1, y1), (x1, y1, x0, y1), (x0, y1, x0, y0)):
        length = max(abs(bx - ax), abs(by - ay))
        t = 0.0
        while t < length:
            e = min(t + dash, length)
            draw.line([ax + (bx - ax) * t / length, ay + (by - ay) * t / length,
                       ax + (bx - ax) * e / length, ay + (by - ay) * e / length], fill=color, width=width)
            t += dash + gap


def write_png(scene: Scene, path, scale: float = 1.5) -> None:
    render(scene, scale).save(path, format="PNG")


def write_gif(scenes: Sequence[Scene], path, scale: float = 1.0, ms_per_frame: int = 700) -> None:
    """An animated GIF looping over ``scenes`` (all padded to the largest size).

    One palette for the whole animation (taken once from a few sample frames, not quantised per frame) and
    no disposal, so that each frame after the first stores only the rectangle that changed.
    """
    Image, _, _ = _pillow()
    width = max(s.width for s in scenes)
    height = max(s.height for s in scenes)
    frame = lambda s: render(Scene(width, height, s.items, s.background), scale)
    palette = _shared_palette(Image, [frame(s) for s in scenes[::max(1, len(scenes) // 6)][:6]])
    images: List = [frame(s).quantize(palette=palette, dither=Image.Dither.NONE) for s in scenes]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0,
                   disposal=1, optimize=True)


def _shared_palette(Image, samples, colors: int = 96):
    """A palette image fitted to the sample frames stacked into one picture."""
    w, h = samples[0].size
    sheet = Image.new("RGB", (w, h * len(samples)))
    for k, f in enumerate(samples):
        sheet.paste(f, (0, k * h))
    return sheet.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
