"""Self-contained HTML report pages, their index and the calculator (`sdsl-sim report ... --format html`).

Every file works offline: scripts, styles and images are inlined (PNGs as data: URIs), and the only links
are relative ones to files in the same output folder (a page's CSV and parquet data, the index, the
calculator). A page is its markdown converted here (the subset the study pages use: headings,
paragraphs, pipe tables, lists, images, links, bold, italic, inline code) with every figure drawn as an
interactive chart from `figspec.figure_spec` and its PNG kept beside it.

    write_page(page, out_dir)   OUT/NAME/index.html; call it before Page.save, which closes the figures
    write_calculator(out_dir)   OUT/calculator.html: the closed form in the browser (assets/calculator.js)
    write_index(out_dir)        OUT/index.html: the pages whose HTML is in OUT, and the calculator
"""

import base64
import html
import importlib.resources
import json
import re
from pathlib import Path

from .figspec import figure_spec

CALCULATOR = "calculator.html"
INDEX = "index.html"
PAGE = "index.html"  # a page's HTML sits beside its data: OUT/NAME/index.html


def write_page(page, out_dir) -> Path:
    """Write `page` as OUT/NAME/index.html: its markdown as HTML, each figure as a chart and its PNG."""
    out = Path(out_dir) / page.name
    out.mkdir(parents=True, exist_ok=True)
    figures = {stem: _figure_html(stem, page.png(stem), fig) for stem, fig in page.figures.items()}
    body = f"<h1>{_inline(page.title)}</h1>\n" + "\n".join(markdown_html(block, figures) for block in page.blocks)
    path = out / PAGE
    path.write_text(_document(page.title, body, scripts=("chart.js",), up="../"), encoding="utf-8")
    return path


def write_calculator(out_dir) -> Path:
    """Write OUT/calculator.html, its constants taken from the Python model so both compute the same."""
    from ..analytic import ALPHA_LAW, LINEAR_LAW_M0_PARAMS, LINEAR_LAW_MU, PERPLEXITY_LAW
    from ..analytic import nstar
    from ..units import DEFAULT_TRAIN_TOKENS, MAX_GAMMA

    constants = {
        "perplexity_law": vars(PERPLEXITY_LAW), "alpha_law": vars(ALPHA_LAW),
        "linear_law": {"mu": LINEAR_LAW_MU, "m0_params": LINEAR_LAW_M0_PARAMS},
        # analytic.n_star's search: the bracket of N / M, its log-spaced scan and the bounded search's tolerance
        "n_star_search": {"low_fraction": nstar.SEARCH_LOW_FRACTION, "high_fraction": nstar.SEARCH_HIGH_FRACTION,
                          "grid_points": nstar.SEARCH_GRID_POINTS, "xatol": nstar.SEARCH_XATOL},
        "max_gamma": MAX_GAMMA,
        "defaults": {"alpha": 0.65, "target_params": 70e9, "draft_params": 277e6, "gamma": "opt",
                     "train_tokens": DEFAULT_TRAIN_TOKENS},
    }
    body = _asset("calculator.html").replace("{{constants}}", _script_json(constants))
    path = Path(out_dir) / CALCULATOR
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    # Alone (`report calculator`) it has no index to go back to: its bar links only to files that exist.
    index = (Path(out_dir) / INDEX).is_file()
    path.write_text(_document("Speculative decoding calculator", body, scripts=("chart.js", "calculator.js"), up="",
                              index=index), encoding="utf-8")
    return path


def write_index(out_dir) -> Path:
    """Write OUT/index.html listing, in `report all` order, the pages whose HTML is in OUT."""
    from . import PAGES

    out = Path(out_dir)
    items = []
    for name, module in PAGES.items():
        if (out / name / PAGE).is_file():
            title = importlib.import_module(f"{__package__}.{module}").TITLE
            items.append(f'<li><a href="{name}/{PAGE}">{_inline(title)}</a></li>')
    body = ("<h1>sdsl-sim reports</h1>\n"
            f'<p>The <a href="{CALCULATOR}">calculator</a>: the Lambert-W optimum, Leviathan\'s speedup and N* '
            "for your alpha and sizes.</p>\n"
            f"<ul class=\"pages\">\n{chr(10).join(items)}\n</ul>")
    path = out / INDEX
    path.write_text(_document("sdsl-sim reports", body, scripts=(), up=""), encoding="utf-8")
    return path


# ---------------------------------------------------------------- markdown

_RULE = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")
_ITEM = re.compile(r"^\s*([-*]|\d+\.)\s+")
_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)\s]+)\)$")


def markdown_html(text: str, figures: dict[str, str] | None = None) -> str:
    """Our pages' markdown as HTML. An image line whose file is a figure stem (`stem.png`) becomes that
    figure's HTML from `figures`; any other image becomes its alt text (no file is linked)."""
    figures, lines, out, i = figures or {}, text.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("```"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines))
            out.append(f"<pre><code>{html.escape(chr(10).join(lines[i + 1:end]))}</code></pre>")
            i = end + 1
        elif m := re.match(r"^(#{1,6})\s+(.*)$", line):
            level = len(m.group(1))
            out.append(f'<h{level} id="{_slug(m.group(2))}">{_inline(m.group(2))}</h{level}>')
            i += 1
        elif line.startswith("|") and i + 1 < len(lines) and _RULE.match(lines[i + 1]):
            end = next((j for j in range(i + 2, len(lines)) if not lines[j].startswith("|")), len(lines))
            out.append(_table(lines[i], lines[i + 2:end]))
            i = end
        elif _ITEM.match(line):
            end, items = i, []
            while end < len(lines) and lines[end].strip() and (_ITEM.match(lines[end]) or items):
                if _ITEM.match(lines[end]):
                    items.append(_ITEM.sub("", lines[end], count=1))
                else:
                    items[-1] += " " + lines[end].strip()  # a continuation line of the item above
                end += 1
            tag = "ol" if _ITEM.match(line).group(1)[0].isdigit() else "ul"
            out.append(f"<{tag}>" + "".join(f"<li>{_inline(item)}</li>" for item in items) + f"</{tag}>")
            i = end
        elif m := _IMAGE.match(line.strip()):
            stem = m.group(2).removesuffix(".png")
            out.append(figures.get(stem) or f"<p>[{_inline(m.group(1))}]</p>")
            i += 1
        else:
            end = next((j for j in range(i, len(lines)) if not lines[j].strip() or _starts_block(lines, j, i)), len(lines))
            out.append(_paragraph(" ".join(s.strip() for s in lines[i:end])))
            i = end
    return "\n".join(out)


def _paragraph(text: str) -> str:
    """A paragraph; one wholly in *...* is a figure caption, italic as a whole, so that an N* inside
    it stays an asterisk."""
    if re.fullmatch(r"\*[^*].*[^*]\*", text):
        return f'<p class="caption"><em>{_inline(text[1:-1], italic=False)}</em></p>'
    return f"<p>{_inline(text)}</p>"


def _starts_block(lines, j, first) -> bool:
    """Whether line j (after a paragraph's first line) opens a heading, table or list instead."""
    line = lines[j]
    return j > first and (line.startswith("#") or line.startswith("```") or bool(_ITEM.match(line))
                          or (line.startswith("|") and j + 1 < len(lines) and bool(_RULE.match(lines[j + 1]))))


def _table(header: str, rows: list[str]) -> str:
    """A pipe table. Cells are split at ' | ', as Page.table writes them, so a column name such as
    'median |error| %' stays one cell."""
    def cells(row):
        return [c.strip() for c in row.strip().removeprefix("|").removesuffix("|").split(" | ")]

    names = cells(header)
    head = "".join(f"<th>{_inline(c)}</th>" for c in names)
    body = []
    for row in rows:
        values = (cells(row) + [""] * len(names))[:len(names)]
        body.append("<tr>" + "".join(f'<td{_numeric(c)}>{_inline(c)}</td>' for c in values) + "</tr>")
    return f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _numeric(cell: str) -> str:
    return ' class="num"' if re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?%?", cell) else ""


def _inline(text: str, italic: bool = True) -> str:
    """Inline markdown: `code` first (its content is literal), then links, **bold** and *italic*."""
    codes = []

    def keep(m):
        codes.append(f"<code>{html.escape(m.group(1))}</code>")
        return f"\0{len(codes) - 1}\0"

    out = html.escape(re.sub(r"`([^`]+)`", keep, text), quote=False)
    out = re.sub(r"!?\[([^\]]+)\]\(([^)\s]+)\)", _link, out)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    if italic:
        out = re.sub(r"(?<![\w*])\*(?![\s*])(.+?)(?<![\s*])\*(?![\w*])", r"<em>\1</em>", out)
    return re.sub(r"\0(\d+)\0", lambda m: codes[int(m.group(1))], out)


def _link(m) -> str:
    """A relative link stays a link (a page's README.md becomes its index.html); a link that leaves the
    output folder (a scheme, //host or /path) is shown as text, as the page must make no request."""
    label, target = m.group(1), m.group(2)
    if m.group(0).startswith("!") or re.match(r"^([a-zA-Z][\w+.-]*:|/)", target):
        return label if m.group(0).startswith("!") else f"{label} ({target})"
    target = re.sub(r"(^|/)README\.md(?=$|#)", r"\1" + PAGE, target)
    return f'<a href="{target.replace(chr(34), "&quot;")}">{label}</a>'


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# ---------------------------------------------------------------- assembly

def _figure_html(stem: str, png: bytes, fig) -> str:
    """A figure as its chart spec (drawn by chart.js) with its PNG (the file Page.save writes)."""
    spec = figure_spec(fig)
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure class="chart-figure" id="figure-{_slug(stem)}">\n'
            f'<script type="application/json" class="chart-spec">{_script_json(spec)}</script>\n'
            f'<details class="png"><summary>static figure (PNG)</summary>'
            f'<img alt="{html.escape(stem)}" src="data:image/png;base64,{data}"></details>\n</figure>')


def _document(title: str, body: str, scripts: tuple[str, ...], up: str, index: bool = True) -> str:
    links = ([f'<a href="{up}{INDEX}">all reports</a>'] if index else []) + [f'<a href="{up}{CALCULATOR}">calculator</a>']
    nav = f'<nav>{" ".join(links)}</nav>'
    code = "".join(f"<script>\n{_asset(name)}</script>\n" for name in scripts)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>\n{_asset('style.css')}</style>\n</head>\n"
            f"<body>\n{nav}\n<main>\n{body}\n</main>\n{code}</body>\n</html>\n")


def _asset(name: str) -> str:
    return importlib.resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def _script_json(value) -> str:
    """JSON to sit inside a <script> element: no NaN (JSON has none) and no '</' that would end it."""
    return json.dumps(value, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")
