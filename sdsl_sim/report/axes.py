"""Conventions every report figure shares, so a reader learns them once: model sizes read as 125M, 1.32B
or 70B (never 10^10 or 1316M), log axes carry plain numbers, speedup bars grow from the 1x line (a bar's
length is the gain), heatmaps of one quantity share one colour scale with its colour bar, and points
held at a limit (a capped running batch) are hollow."""

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ..models import params_label

PLAIN = FuncFormatter(lambda value, _: f"{value:g}")


PARAMS = FuncFormatter(lambda value, _: params_label(value))


def params_axis(axis, ticks=None) -> None:
    """Label an axis of parameter counts (plotted in parameters, log scale) with readable sizes: at
    `ticks` (e.g. the models drawn; the axis grows to show them all) if given, else at 1, 2 and 5 of
    every decade."""
    if ticks is None:
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    else:
        axis.set_ticks(sorted(set(ticks)))
    axis.set_major_formatter(PARAMS)
    axis.set_minor_formatter(NullFormatter())


def plain_log_axis(axis, subs=(1.0, 2.0, 5.0)) -> None:
    """A log axis ticked at `subs` of every decade and labelled 2, 5, 10 rather than 2 x 10^0."""
    axis.set_major_locator(LogLocator(subs=subs))
    axis.set_major_formatter(PLAIN)
    axis.set_minor_formatter(NullFormatter())


def batch_axis(ax, batches) -> None:
    """A log-2 x axis of batch sizes, ticked at the batches drawn."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(set(batches)))
    ax.xaxis.set_major_formatter(PLAIN)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("batch (sequences)")


def speedup_bars(ax, x, speedup, width, **style):
    """Speedup bars drawn from the 1x line (plain decoding), which is drawn too: the axis spans the
    speedups, not 0 to them, and a slowdown hangs below the line."""
    ax.axhline(1.0, color="grey", lw=1, zorder=0)
    return ax.bar(x, np.asarray(speedup, float) - 1.0, width, bottom=1.0, **style)


def points(ax, x, y, capped, color, marker="o", s=28, **style) -> None:
    """Scatter points, hollow where `capped` (the value is held at a limit, not the one asked for)."""
    x, y, capped = np.asarray(x), np.asarray(y), np.asarray(capped, bool)
    ax.scatter(x[~capped], y[~capped], color=color, marker=marker, s=s, **style)
    ax.scatter(x[capped], y[capped], facecolor="white", edgecolor=color, marker=marker, s=s, **style)


def capped_handle(label: str, marker: str = "o") -> Line2D:
    """The legend entry that explains hollow points."""
    return Line2D([], [], color="black", marker=marker, mfc="white", lw=0, label=label)


def colorbar(fig, axes, mappable, label: str):
    """One colour bar for a row of heatmaps drawn with the same norm and colour map."""
    return fig.colorbar(mappable, ax=list(axes), label=label, fraction=0.03, pad=0.02)
