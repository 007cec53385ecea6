"""The JavaScript of the interactive page, read from the package's ``index.js`` and ``ui.js``.

The scripts are real ``.js`` files (package data, so linters and ``node --check`` see them); the page inlines
them so it stays one self-contained file.  ``INDEX_JS`` mirrors convforge's index rules
(``_indexing.conv_window`` / ``transpose_scatter``, the size formulas of ``shapes``, and the cell each padding
mode copies, which Python gets from ``pad``).  It runs unchanged in the browser and under node
(``module.exports``); tests run it with node on random layers and compare every frame with
:func:`convforge.draw.frames`, and the page itself re-checks the embedded Python frames when it loads.
``UI_JS`` is the page: controls, slider, grids, formulas.
"""
from __future__ import annotations

from importlib import resources

__all__ = ["INDEX_JS", "UI_JS", "read_script"]


def read_script(name: str) -> str:
    """The text of the packaged script ``name`` (``'index.js'`` or ``'ui.js'``)."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


INDEX_JS = read_script("index.js")
UI_JS = read_script("ui.js")
