"""The offline site's MathJax: a local MathJax 2.7, and the part of it the pages need, copied into the site.

`find_mathjax` looks for ``--mathjax DIR`` (a MathJax 2.7 folder with ``MathJax.js``), else the
``jupyter_server_mathjax`` package, else Debian's ``libjs-mathjax`` (``/usr/share/javascript/mathjax``);
`copy_mathjax` copies what the pages load (about 1.5 MB of a ~50 MB folder) into ``_site/_static/mathjax``.
The pages ask MathJax for a font the local copy ships (jupyter-server-mathjax has STIX-Web only, so
its default "TeX" font would 404: ``jax/output/HTML-CSS/fonts/TeX/fontdata.js``, ``MathJax_AMS-Regular.otf``).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Optional

__all__ = ["STATIC_MATHJAX", "find_mathjax", "mathjax_config", "mathjax_web_font", "copy_mathjax"]

#: where the site keeps its MathJax, relative to the site's folder
STATIC_MATHJAX = "_static/mathjax"


def find_mathjax(explicit: Optional[Path] = None) -> Optional[Path]:
    """A local MathJax 2.7 folder (containing MathJax.js), or None."""
    candidates: list[Path] = []
    if explicit is not None:
        candidates.append(Path(explicit))
    # the package's folder, found without importing it (its import loads jupyter_server: ~1 s)
    spec = importlib.util.find_spec("jupyter_server_mathjax")
    if spec is not None and spec.submodule_search_locations:
        candidates.append(Path(list(spec.submodule_search_locations)[0]) / "static")
    candidates.append(Path("/usr/share/javascript/mathjax"))
    for c in candidates:
        if (c / "MathJax.js").is_file():
            return c
    if explicit is not None:
        raise FileNotFoundError(f"--mathjax {explicit}: no MathJax.js in that folder")
    return None


# What the pages need of MathJax 2.7: about 1.5 MB instead of the ~50 MB of a full MathJax folder.
# The first configuration the local MathJax ships is used: Debian's libjs-mathjax has CommonHTML
# output (TeX-AMS_CHTML-full); the jupyter-server-mathjax package only HTML-CSS/SVG output.
_MATHJAX_COMMON = ("MathJax.js", "config/Safe.js", "extensions", "jax/input/TeX", "jax/element/mml",
                   "localization/en")
_MATHJAX_CONFIGS = (
    ("TeX-AMS_CHTML-full", ("jax/output/CommonHTML", "fonts/HTML-CSS/TeX/woff")),
    ("TeX-AMS-MML_HTMLorMML-full", ("jax/input/MathML", "jax/output/HTML-CSS")),
)
# HTML-CSS output: its web font and the folders that font needs. MathJax's default is "TeX"
# (jax/output/HTML-CSS/fonts/TeX/fontdata.js + fonts/HTML-CSS/TeX/…); jupyter-server-mathjax ships
# only "STIX-Web", the font the classic Jupyter notebook configures, so the pages ask for that one
# (with no local-font and no image-font fallback: nothing is requested that the site lacks).
_HTML_CSS_FONTS = (
    ("TeX", ("jax/output/HTML-CSS/fonts/TeX/fontdata.js", "fonts/HTML-CSS/TeX/woff")),
    ("STIX-Web", ("jax/output/HTML-CSS/fonts/STIX-Web/fontdata.js", "fonts/HTML-CSS/STIX-Web/woff")),
)


def mathjax_web_font(src: Path) -> Optional[tuple[str, tuple[str, ...]]]:
    """The HTML-CSS web font that the local MathJax `src` ships whole (font data and font files),
    and those parts; None when it ships none (or uses CommonHTML output, which needs no choice)."""
    if mathjax_config(src)[0] != "TeX-AMS-MML_HTMLorMML-full":
        return None
    for font, parts in _HTML_CSS_FONTS:
        if all((src / part).exists() for part in parts):
            return font, parts
    return None


def mathjax_config(src: Path) -> tuple[str, tuple[str, ...]]:
    """The MathJax configuration to use from the local folder `src`, and the parts it needs."""
    for name, parts in _MATHJAX_CONFIGS:
        if (src / "config" / f"{name}.js").is_file():
            return name, (f"config/{name}.js", *_MATHJAX_COMMON, *parts)
    raise FileNotFoundError(f"{src}: none of the MathJax configurations {[n for n, _ in _MATHJAX_CONFIGS]}")


def _font_config(font: Optional[str]) -> str:
    """The page's MathJax configuration of the HTML-CSS font (empty: MathJax's defaults)."""
    if font is None or font == "TeX":
        return ""
    config = {"HTML-CSS": {"availableFonts": [], "preferredFont": None, "webFont": font, "imageFont": None}}
    return f'<script type="text/x-mathjax-config">MathJax.Hub.Config({json.dumps(config)});</script>'


def copy_mathjax(src: Path, out: Path) -> tuple[str, str]:
    """Copy what the pages need of the local MathJax `src` into `out`; (its URL, the font config)."""
    dest = out / STATIC_MATHJAX
    if dest.exists():
        shutil.rmtree(dest)
    config, parts = mathjax_config(src)
    font = mathjax_web_font(src)
    for part in (*parts, *(font[1] if font else ())):
        path = src / part
        if path.is_dir():
            shutil.copytree(path, dest / part, dirs_exist_ok=True)
        elif path.is_file():
            (dest / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / part)
    return f"{STATIC_MATHJAX}/MathJax.js?config={config},Safe", _font_config(font[0] if font else None)
