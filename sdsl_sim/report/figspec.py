"""A matplotlib Figure as a JSON chart spec: what the HTML pages draw interactively (assets/chart.js).

The spec is read from the very Figure objects the PNGs are rendered from, so an HTML chart shows the
same data as its PNG: lines (with markers and dashes), scatter points, error bars, filled bands, bars,
spans, heatmap cells and every text matplotlib placed. Coordinates of data marks stay in data units
(the browser maps them through the axes' limits and scales, so hovering can report them); texts are
placed where matplotlib drew them, in points from the top left of the figure's tight bounding box.

Series: a mark belongs to the legend entry that names it (its own label, its container's label, or
failing both the one legend entry of its colour; seaborn draws hue groups unlabelled and labels proxy
handles), so clicking an entry toggles every mark of that group in every panel.
"""

import re

import numpy as np
from matplotlib import rcParams
from matplotlib.collections import LineCollection, PathCollection, PolyCollection, QuadMesh
from matplotlib.colors import to_hex, to_rgba
from matplotlib.lines import Line2D
from matplotlib.markers import MarkerStyle
from matplotlib.patches import Patch, Rectangle
from matplotlib.path import Path as MplPath
from matplotlib.spines import Spine

_PAD_PT = 4.0  # room around the tight bounding box, so that strokes on its edge are not cut


def figure_spec(fig) -> dict:
    """The chart spec of `fig`: {"box", "axes": [...], "texts": [...], "legend": [...]} (see module doc)."""
    fig.canvas.draw()  # lays out texts and resolves colours (heatmap cells, ticks) as the PNG has them
    renderer = fig.canvas.get_renderer()
    place = _Placer(fig, fig.get_tightbbox(renderer), renderer)
    own = {id(ax): _legend_entries([ax.get_legend()]) for ax in fig.axes}
    shared = _legend_entries(fig.legends) + [e for ax in fig.axes for e in own[id(ax)]]
    axes = [_axes_spec(ax, place, own[id(ax)], shared) for ax in fig.axes if ax.get_visible() and ax.axison]
    used = {m["k"] for a in axes for m in a["marks"]} - {None}
    swatch = dict(reversed(shared))  # a label's first legend handle gives its swatch
    keys = list(dict.fromkeys([k for k, _ in shared] + [m["k"] for a in axes for m in a["marks"] if m["k"]]))
    # An entry no mark belongs to (a style key such as "dashed: baseline") is shown, but toggles nothing.
    return {"box": place.box, "axes": axes, "texts": [t for t in map(place.text, fig.texts) if t],
            "legend": [{"key": k, "toggles": k in used, **(swatch.get(k) or _mark_swatch(k, axes))} for k in keys]}


class _Placer:
    """Maps display pixels to points from the top left of the padded tight bounding box."""

    def __init__(self, fig, tight_in, renderer):
        self.scale, self.renderer = 72.0 / fig.dpi, renderer
        self.left_pt, self.top_pt = float(tight_in.x0) * 72 - _PAD_PT, float(tight_in.y1) * 72 + _PAD_PT
        self.box = [round(float(tight_in.width) * 72 + 2 * _PAD_PT, 2), round(float(tight_in.height) * 72 + 2 * _PAD_PT, 2)]

    def point(self, x_px, y_px):
        return [round(float(x_px) * self.scale - self.left_pt, 2), round(self.top_pt - float(y_px) * self.scale, 2)]

    def rect(self, bbox):
        x0, y1 = self.point(bbox.x0, bbox.y0)
        x1, y0 = self.point(bbox.x1, bbox.y1)
        return [x0, y0, round(x1 - x0, 2), round(y1 - y0, 2)]

    def text(self, t):
        """A visible, non-empty Text as {"s", "x", "y", "size", "c", "rot", "bold"} at its drawn centre."""
        if not (t.get_visible() and t.get_text().strip()):
            return None
        box = t.get_window_extent(self.renderer)
        x, y = self.point((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)
        return {"s": _plain(t.get_text()), "x": x, "y": y, "size": round(float(t.get_fontsize()), 2), "c": _hex(t.get_color()),
                "rot": round(float(t.get_rotation()), 1), "bold": t.get_fontweight() in ("bold", "semibold", "heavy", 700, 600)}


def _axes_spec(ax, place, own_legend, shared_legend) -> dict:
    labels = {id(a): c.get_label() for c in ax.containers for a in _flatten(c) if not c.get_label().startswith("_")}

    def key(artist, colour=None, style=None):
        """The artist's legend entry: its label, its container's, or the one entry of its colour, told
        apart by `style` (a line's dash, a marker's shape) where entries share it; this axes' legend
        first, as a panel's own legend knows its groups best. Reference lines and spans pass no colour:
        a grey y = 1 line is no group."""
        label = artist.get_label()
        if label and not label.startswith("_"):
            return label
        if id(artist) in labels:
            return labels[id(artist)]
        for entries in (own_legend, shared_legend):
            same = list(dict.fromkeys(name for name, swatch in entries if colour and swatch["c"] == colour))
            fitting = list(dict.fromkeys(name for name, swatch in entries if name in same and _fits(swatch, style)))
            if same:
                return same[0] if len(same) == 1 else fitting[0] if len(fitting) == 1 else None
        return None

    marks = []
    for artist in sorted(ax.get_children(), key=lambda a: a.get_zorder()):  # sorted() is stable: draw order
        if artist.get_visible():
            marks += _marks(ax, artist, key)
    texts = [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts,
             *_tick_labels(ax.xaxis), *_tick_labels(ax.yaxis)]
    return {"box": place.rect(ax.get_window_extent(place.renderer)), "bg": _hex(ax.get_facecolor()),
            "frame": _hex(ax.spines["left"].get_edgecolor()) if any(s.get_visible() for s in ax.spines.values()) else None,
            "x": _axis_spec(ax.xaxis, ax.get_xlim()), "y": _axis_spec(ax.yaxis, ax.get_ylim()),
            "xlabel": _plain(ax.get_xlabel()), "ylabel": _plain(ax.get_ylabel()), "title": _plain(ax.get_title()),
            "marks": marks, "texts": [t for t in map(place.text, texts) if t]}


def _axis_spec(axis, lim) -> dict:
    """Scale, limits, major tick positions with their labels, and the grid lines' colour (None: no grid)."""
    low, high = sorted(lim)
    ticks = [[_round(v), _plain(t.get_text())] for v, t in zip(axis.get_majorticklocs(), axis.get_majorticklabels())
             if low <= v <= high]
    lines = [line for line in axis.get_gridlines() if line.get_visible()]
    return {"scale": "log" if axis.get_scale() == "log" else "linear", "lim": _round(list(lim)),
            "ticks": ticks, "grid": _hex(lines[0].get_color()) if lines else None}


def _tick_labels(axis):
    """The tick labels matplotlib drew: major ones, and minor ones where a log axis labels them."""
    low, high = sorted(axis.get_view_interval())
    pairs = [*zip(axis.get_majorticklocs(), axis.get_majorticklabels()),
             *zip(axis.get_minorticklocs(), axis.get_minorticklabels())]
    return [t for v, t in pairs if low <= v <= high]


def _marks(ax, artist, key) -> list[dict]:
    """The chart marks of one artist of `ax`; [] for artists the spec does not carry (legends, spines)."""
    data = artist.get_transform() is ax.transData if hasattr(artist, "get_transform") else False
    if isinstance(artist, Line2D):
        return _line(ax, artist, key)
    if isinstance(artist, QuadMesh):
        return [_cells(ax, artist)]
    if isinstance(artist, PathCollection) and artist.get_offset_transform() is ax.transData:
        return _points(artist, key)
    if isinstance(artist, LineCollection) and data:
        colour = _colour(artist.get_colors())
        segments = [np.asarray(s).tolist() for s in artist.get_segments() if len(s)]
        return [{"t": "segs", "k": key(artist, colour), "segs": _round(segments), "c": colour,
                 "o": _alpha(artist.get_colors()), "w": float(artist.get_linewidths()[0])}] if segments else []
    if isinstance(artist, PolyCollection) and data:
        colour = _colour(artist.get_facecolors())
        polygons = [p.vertices.tolist() for p in artist.get_paths() if len(p.vertices)]
        return [{"t": "poly", "k": key(artist, colour), "pts": _round(polygons), "c": colour,
                 "o": _alpha(artist.get_facecolors())}] if polygons else []
    if isinstance(artist, Patch) and not isinstance(artist, Spine) and artist is not ax.patch:
        return _patch(ax, artist, key)
    return []


def _line(ax, line, key) -> list[dict]:
    xy = np.asarray(line.get_xydata(), dtype=float)
    if not len(xy):
        return []  # seaborn's empty legend proxies
    colour, transform = _hex(line.get_color()), line.get_transform()
    if line.get_linestyle() in ("None", "none", "") and not _no_marker(line.get_marker()):
        colour = _hex(line.get_markeredgecolor())  # caplines and marker-only lines show their markers' colour
    drawn = line.get_linestyle() not in ("None", "none", "") and line.get_linewidth() > 0
    style = {"c": colour, "o": _opacity(line.get_color(), line.get_alpha()), "w": float(line.get_linewidth()) if drawn else 0.0,
             "dash": _dash(line.get_linestyle(), line.get_linewidth()), **_marker_style(line)}
    if transform is ax.transData:
        look = ("dash", style["dash"]) if style["w"] > 0 else ("marker", style["m"])
        return [{"t": "line", "k": key(line, colour, look), "xy": _round(xy.tolist()), **style}]
    if transform is ax.get_yaxis_transform():  # axhline: x in axes fraction, y in data
        return [{"t": "hline", "k": key(line), "v": _round(xy[0, 1]), **style}]
    if transform is ax.get_xaxis_transform():
        return [{"t": "vline", "k": key(line), "v": _round(xy[0, 0]), **style}]
    return []


def _marker_style(line) -> dict:
    marker = MarkerStyle(line.get_marker(), fillstyle=line.get_fillstyle())
    if _no_marker(line.get_marker()) or not len(marker.get_path().vertices):
        return {"m": None}
    face = line.get_markerfacecolor()
    filled = marker.is_filled() and to_rgba(face)[3] > 0  # "none" is transparent
    return {"m": _svg_path(marker.get_path().transformed(marker.get_transform())), "ms": float(line.get_markersize()),
            "mf": _hex(face) if filled else None, "me": _hex(line.get_markeredgecolor()),
            "mw": float(line.get_markeredgewidth()), "mo": _opacity(line.get_markeredgecolor(), line.get_alpha())}


def _no_marker(marker) -> bool:
    return marker is None or (isinstance(marker, str) and marker in ("None", "none", "", " "))


def _points(coll, key) -> list[dict]:
    """A scatter collection as one mark per (face, edge) colour pair: seaborn's hue groups share one."""
    offsets = np.asarray(coll.get_offsets(), dtype=float)
    if not len(offsets):
        return []
    n = len(offsets)
    faces, edges = _per_point(coll.get_facecolors(), n), _per_point(coll.get_edgecolors(), n)
    paths = coll.get_paths()
    sizes = np.broadcast_to(np.sqrt(coll.get_sizes()) if len(coll.get_sizes()) else np.sqrt(rcParams["lines.markersize"] ** 2), n)
    shapes = [_svg_path(p) for p in paths]
    groups = {}
    for i in range(n):
        groups.setdefault((faces[i], edges[i], shapes[i % len(shapes)]), []).append(i)
    marks = []
    for (face, edge, shape), idx in groups.items():
        hollow = not face or (face[0] == "#ffffff" and edge)  # a hollow marker is known by its edge
        colour = edge[0] if hollow and edge else face[0]
        marks.append({"t": "points", "k": key(coll, colour, ("marker", shape)), "xy": _round(offsets[idx].tolist()),
                      "shape": [shape] * len(idx), "sz": [round(float(sizes[i]), 2) for i in idx],
                      "fc": face[0] if face else None, "fo": face[1] if face else 1.0,
                      "ec": edge[0] if edge else None, "eo": edge[1] if edge else 1.0,
                      "w": float(coll.get_linewidths()[0]) if len(coll.get_linewidths()) else 1.0})
    return marks


def _per_point(colours, n) -> list:
    """Per-point (hex, opacity) pairs, or None where a collection draws no face (or no edge)."""
    colours = np.asarray(colours)
    if not len(colours):
        return [None] * n
    return [(to_hex(c), round(float(c[3]), 3)) if c[3] > 0 else None for c in np.broadcast_to(colours, (n, 4))]


def _patch(ax, patch, key) -> list[dict]:
    """Bars and other data rectangles, data polygons, and axhspan/axvspan bands."""
    face, frame = patch.get_facecolor(), patch.get_data_transform()
    colour = _hex(face if face[3] > 0 else patch.get_edgecolor())  # a hollow bar is known by its edge
    style = {"c": _hex(face), "o": round(float(patch.get_facecolor()[3]), 3), "ec": _hex(patch.get_edgecolor()),
             "eo": round(float(patch.get_edgecolor()[3]), 3), "w": float(patch.get_linewidth())}
    corners = patch.get_path().transformed(patch.get_patch_transform()).vertices  # in the data frame
    k = key(patch, colour)
    if frame is ax.transData and isinstance(patch, Rectangle):
        x0, x1 = sorted((patch.get_x(), patch.get_x() + patch.get_width()))
        y0, y1 = sorted((patch.get_y(), patch.get_y() + patch.get_height()))
        # the value a bar shows is where it ends: its height above 0, or a speedup bar's top above 1
        return [{"t": "rect", "k": k, "r": _round([x0, y0, x1, y1]), "name": _nearest_tick(ax.xaxis, (x0 + x1) / 2),
                 "v": _round(patch.get_y() + patch.get_height()), **style}]
    if frame is ax.transData:
        return [{"t": "poly", "k": k, "pts": _round([corners.tolist()]), **style}]
    if frame is ax.get_yaxis_transform():  # axhspan: x in axes fraction, y in data
        return [{"t": "hspan", "k": key(patch), "r": _round([corners[:, 1].min(), corners[:, 1].max()]), **style}]
    if frame is ax.get_xaxis_transform():
        return [{"t": "vspan", "k": key(patch), "r": _round([corners[:, 0].min(), corners[:, 0].max()]), **style}]
    return []


def _cells(ax, mesh) -> dict:
    """A heatmap (seaborn draws a QuadMesh) as cells [x0, y0, x1, y1, colour, value] with row/column names."""
    corners = mesh.get_coordinates()
    values = np.ma.filled(np.ma.asarray(mesh.get_array(), dtype=float), np.nan).ravel()
    colours = mesh.get_facecolors()
    cells = []
    for i in range(corners.shape[0] - 1):
        for j in range(corners.shape[1] - 1):
            n = i * (corners.shape[1] - 1) + j
            (x0, y0), (x1, y1) = corners[i, j], corners[i + 1, j + 1]
            value = values[n] if n < len(values) else np.nan
            cells.append([*_round([x0, y0, x1, y1]), to_hex(colours[n % len(colours)]),
                          _round(value),
                          _nearest_tick(ax.xaxis, (x0 + x1) / 2), _nearest_tick(ax.yaxis, (y0 + y1) / 2)])
    return {"t": "cells", "k": None, "cells": cells}


def _nearest_tick(axis, value) -> str:
    """The label of the major tick nearest `value` (a bar's category, a heatmap cell's row or column)."""
    ticks = [(abs(v - value), _plain(t.get_text())) for v, t in zip(axis.get_majorticklocs(), axis.get_majorticklabels())]
    return min(ticks)[1] if ticks else ""


def _fits(swatch, style) -> bool:
    """Whether a legend swatch draws `style`: ("dash", pattern or None) for a line, ("marker", path)."""
    if style is None:
        return False
    kind, value = style
    return swatch["line"] and swatch["dash"] == value if kind == "dash" else swatch["m"] == value


def _legend_entries(legends) -> list[tuple[str, dict]]:
    """(label, swatch) of every visible entry of these legends (None for an axes without one), in order."""
    entries = []
    for legend in legends:
        if legend is None:
            continue
        for handle, text in zip(legend.legend_handles, legend.get_texts()):
            label = text.get_text()
            if label and handle is not None and handle.get_visible() and (swatch := _handle_swatch(handle)):
                entries.append((label, swatch))
    return entries


def _handle_swatch(handle) -> dict | None:
    if isinstance(handle, Line2D):
        marker = _marker_style(handle)
        if marker["m"] is None and (handle.get_linestyle() in ("None", "none", "") or handle.get_linewidth() == 0):
            return None  # seaborn's subtitle entries (hue and style names) draw nothing
        colour = marker.get("mf") or marker.get("me") if handle.get_linestyle() in ("None", "none", "") else _hex(handle.get_color())
        return {"c": colour, "dash": _dash(handle.get_linestyle(), handle.get_linewidth()),
                "line": handle.get_linestyle() not in ("None", "none", ""), "m": marker["m"],
                "mf": marker.get("mf"), "me": marker.get("me")}
    if isinstance(handle, PathCollection):
        face = _colour(handle.get_facecolors())
        return {"c": face or _colour(handle.get_edgecolors()), "line": False, "dash": None,
                "m": _svg_path(handle.get_paths()[0]) if handle.get_paths() else None, "mf": face,
                "me": _colour(handle.get_edgecolors())}
    if isinstance(handle, Patch):
        face = handle.get_facecolor()
        return {"c": _hex(face if face[3] > 0 else handle.get_edgecolor()), "line": False, "dash": None, "m": None, "mf": None, "me": None,
                "box": True}
    return None


def _mark_swatch(key, axes) -> dict:
    mark = next(m for a in axes for m in a["marks"] if m["k"] == key)
    return {"c": mark.get("c") or mark.get("fc") or mark.get("ec"), "line": mark["t"] in ("line", "hline", "vline", "segs"),
            "dash": mark.get("dash"), "m": mark.get("m"), "mf": mark.get("mf"), "me": mark.get("me"),
            "box": mark["t"] in ("rect", "poly", "hspan", "vspan")}


def _svg_path(path) -> str:
    """A marker path (unit size, y up) as SVG path data (y down)."""
    parts = []
    for vertices, code in path.iter_segments(simplify=False, curves=True):
        v = [f"{x:.3g} {-y:.3g}" for x, y in np.asarray(vertices).reshape(-1, 2)]
        letter = {MplPath.MOVETO: "M", MplPath.LINETO: "L", MplPath.CURVE3: "Q", MplPath.CURVE4: "C"}.get(code)
        parts.append("Z" if code == MplPath.CLOSEPOLY else f"{letter}{' '.join(v)}")
    return "".join(parts)


def _dash(linestyle, linewidth) -> str | None:
    """SVG stroke-dasharray of a named matplotlib line style (rcParams' patterns, scaled by the width)."""
    pattern = {"--": "dashed", "dashed": "dashed", ":": "dotted", "dotted": "dotted", "-.": "dashdot",
               "dashdot": "dashdot"}.get(linestyle)
    if pattern is None:
        return None
    scale = linewidth if rcParams["lines.scale_dashes"] else 1.0
    return ",".join(f"{d * scale:.3g}" for d in rcParams[f"lines.{pattern}_pattern"])


def _flatten(container):
    for item in container:
        if isinstance(item, (list, tuple)):
            yield from _flatten(item)
        elif item is not None:
            yield item


def _hex(colour) -> str:
    return to_hex(to_rgba(colour))


def _opacity(colour, alpha) -> float:
    return round(float(to_rgba(colour, alpha)[3]), 3)


def _colour(colours) -> str | None:
    return to_hex(colours[0]) if len(colours) else None


def _alpha(colours) -> float:
    return round(float(colours[0][3]), 3) if len(colours) else 1.0


def _round(values):
    """Data values to 12 significant digits (the JSON stays small, every printed value exact); NaN, a gap
    in a line, as null (JSON has no NaN)."""
    if isinstance(values, (list, tuple)):
        return [_round(v) for v in values]
    return float(f"{values:.12g}") if np.isfinite(values) else None


_SUPERSCRIPT = str.maketrans("0123456789-−", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁻")


def _plain(text: str) -> str:
    """Mathtext tick labels such as $\\mathdefault{10^{9}}$ as plain text (10⁹); other text as it is."""
    if "$" not in text:
        return text
    out = text.replace("$", "").replace("\\mathdefault", "").replace("\\times", "×").replace("\\cdot", "·")
    out = re.sub(r"\^\{([^}]*)\}", lambda m: m.group(1).translate(_SUPERSCRIPT), out)
    return out.replace("{", "").replace("}", "").replace("\\", "")
