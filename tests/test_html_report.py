"""HTML reports and the calculator: offline by construction, and checked in a real headless browser.

The offline check parses each generated file (and the DOM Chromium built from it) and fails on any
resource that is not inline: an http(s) or // URL, a src that is not a data: URI, a <link> or
<script src>, a CSS url() or @import. The browser checks load the files from disk in headless Chromium
(`--dump-dom`): the report page's charts exist with every mark of its figures, hovering a point shows
its values and a legend click hides its series, and the calculator's data-key/data-value outputs for
five URL queries equal the Python closed form (`sdsl-sim analytic throughput` and `analytic nstar`)
to 1e-6. They skip, saying why, only where no Chromium binary is installed; .ci/run installs one.
"""

import argparse
import html
import json
import math
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import pytest

from sdsl_sim.cli import main

PAGE = "seed-experiment"  # the cheapest study page (about 2 s): library calls, no sweep
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="no headless browser: install Debian's chromium "
                                                            "(.ci/run does) to run the browser checks")

# Five calculator settings: the README example at gamma*, a large alpha at a fixed gamma, a small alpha
# where no lookahead helps (gamma* = 0, speedup 1), next to the branch point of W_-1 (alpha -> 1 with
# N -> M: delta ~ 1e-7, t = v - 1 ~ 5e-4, where the last Newton step takes the series), and the far end
# where alpha^(M/N - 1) underflows (M/N = 1e7: delta ~ 5e7).
SETTINGS = {
    "readme-example": {"alpha": 0.7, "target_params": 7e10, "draft_params": 2.77e8},
    "large-alpha": {"alpha": 0.97, "target_params": 4.05e11, "draft_params": 1e9, "gamma": 8, "train_tokens": 1.5e13},
    "small-alpha": {"alpha": 0.05, "target_params": 1.3e10, "draft_params": 6.5e9, "gamma": 2, "train_tokens": 1e12},
    "branch-point": {"alpha": 0.99999, "target_params": 7e10, "draft_params": 6.9e10, "train_tokens": 1e13},
    "underflow": {"alpha": 0.01, "target_params": 1e12, "draft_params": 1e5, "gamma": 3, "train_tokens": 1e14},
}


# ---------------------------------------------------------------- offline check

URL_ATTRIBUTES = {"src", "href", "xlink:href", "srcset", "action", "formaction", "poster", "data", "background",
                  "ping", "manifest", "cite"}
ELSEWHERE = re.compile(r"^\s*(//|[a-z][a-z0-9+.-]*:)", re.IGNORECASE)  # a scheme or a network path
CSS_FETCH = re.compile(r"url\(\s*(?![\s'\"]*(#|data:))|@import", re.IGNORECASE)


class _Resources(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems, self.style, self._in_style = [], [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("link", "iframe", "object", "embed", "base") or (tag == "script" and "src" in attrs):
            self.problems.append(f"<{tag}> loads a resource: {attrs}")
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "refresh":
            self.problems.append("<meta http-equiv=refresh>")
        for name, value in attrs.items():
            value = value or ""
            if name in URL_ATTRIBUTES and ELSEWHERE.match(value) and not value.startswith("data:"):
                self.problems.append(f"<{tag} {name}={value[:80]!r}>")
            if name in ("src", "srcset", "poster") and not value.startswith("data:"):
                self.problems.append(f"<{tag} {name}={value[:80]!r}> is not inline")
            if name in URL_ATTRIBUTES and value.startswith("/") and not value.startswith("//"):
                self.problems.append(f"<{tag} {name}={value!r}> leaves the output folder")
            if name == "style":
                self.style.append(value)
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.style.append(data)


def offline_problems(text: str) -> list[str]:
    """Everything in an HTML document that would make the browser fetch something not in the file
    itself or a sibling file of its folder."""
    parser = _Resources()
    parser.feed(text)
    return parser.problems + [f"CSS fetches: {m.group(0)!r}" for s in parser.style for m in CSS_FETCH.finditer(s)]


def test_the_offline_check_catches_every_kind_of_fetch():
    clean = ('<html><head><style>a { color: red } rect { clip-path: url(#c1) }</style></head><body>'
             '<a href="data.csv">d</a><a href="../index.html">i</a><a href="#x">x</a>'
             '<img src="data:image/png;base64,AAAA"></body></html>')
    assert offline_problems(clean) == []
    for bad in ('<script src="chart.js"></script>', '<link rel="stylesheet" href="s.css">',
                '<a href="https://example.com">x</a>', '<a href="//cdn.example.com/x">x</a>',
                '<img src="figure.png">', '<style>@import "x.css";</style>',
                '<style>body { background: url(https://example.com/x.png) }</style>',
                '<div style="background: url(x.png)"></div>', '<a href="/etc/passwd">x</a>',
                '<iframe srcdoc="x"></iframe>', '<form action="http://x/"></form>',
                '<meta http-equiv="refresh" content="0; url=http://x/">'):
        assert offline_problems(clean.replace("</body>", bad + "</body>")), bad


# ---------------------------------------------------------------- generated files

@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """`sdsl-sim report PAGE --format html` into a fresh folder: the page, the index, the calculator."""
    out = tmp_path_factory.mktemp("html")
    assert main(["report", PAGE, "--format", "html", "--out", str(out), "--no-progress", "--json"]) == 0
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A page with one figure of every kind of mark the chart spec carries, written like a study page."""
    from sdsl_sim.report.html import write_page

    out = tmp_path_factory.mktemp("demo")
    page = _demo_page()
    write_page(page, out)
    page.save(out)
    return out / "demo" / "index.html", page


def _demo_figure():
    from sdsl_sim.report.page import plt, sns

    frame = pd.DataFrame({"batch": np.tile([1, 2, 4, 8, 16], 2), "speedup": [1.5, 1.8, 2.1, 2.0, 1.7, 1.2, 1.3, 1.45, 1.4, 1.1],
                          "context": np.repeat(["1k", "32k"], 5)})
    fig, (ax, bx, cx) = plt.subplots(1, 3, figsize=(12, 4))
    sns.lineplot(frame, x="batch", y="speedup", hue="context", marker="o", ax=ax)
    ax.errorbar([2, 4], [1.8, 2.1], yerr=[0.1, 0.2], fmt="none", ecolor=sns.color_palette()[0])  # the 1k hue
    ax.fill_between([1, 16], [1.0, 1.0], [1.1, 1.1], color="grey", alpha=0.2)
    ax.axhline(1.0, color="grey")
    ax.axhspan(0.9, 1.0, color="tab:green", alpha=0.1, label="band")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="batch (sequences)", ylabel="speedup (x)", title="lines")
    bx.bar([0, 1, 2], [3.0, 5.0, 4.0], label="TPOT")
    bx.set_xticks([0, 1, 2], ["a100", "h100", "b200"])
    bx.scatter([0.5, 1.5], [2.0, 2.5], color="tab:red", label="measured", s=30)
    bx.annotate("4.0", (2, 4.0), textcoords="offset points", xytext=(0, 4), ha="center")
    bx.legend()
    sns.heatmap(pd.DataFrame([[1.0, 2.0], [3.0, 4.0]], index=["2x", "1x"], columns=["1x", "2x"]), annot=True,
                cbar=False, ax=cx)
    fig.tight_layout()
    return fig


def _demo_page():
    from sdsl_sim.report.page import Page

    page = Page("demo", "A page with every mark")
    page.text("**Question.** Does *every* mark reach the browser? See [the index](../README.md).")
    page.figure("marks", _demo_figure(), "Lines, error bars, a band, bars, points and a heatmap of N* values.")
    page.table(pd.DataFrame({"gpu": ["a100", "h100"], "median |error| %": [1.5, 2.25]}))
    return page


def test_the_report_page_is_self_contained(reports):
    text = (reports / PAGE / "index.html").read_text()
    assert offline_problems(text) == []
    readme = (reports / PAGE / "README.md").read_text()
    figures = re.findall(r"\]\(([\w.-]+)\.png\)", readme)
    assert figures and len(re.findall(r'<script type="application/json" class="chart-spec">', text)) == len(figures)
    assert text.count('src="data:image/png;base64,') == len(figures)  # each PNG inline, as a fallback
    assert text.count("<table>") == len(re.findall(r"^\|(---\|)+$", readme, re.M)) > 0
    for csv in re.findall(r"\]\(([\w.-]+\.csv)\)", readme):  # data links point at the files beside the page
        assert f'href="{csv}"' in text and (reports / PAGE / csv).is_file()


def test_the_index_and_the_calculator_are_self_contained(reports):
    index = (reports / "index.html").read_text()
    assert offline_problems(index) == []
    assert f'href="{PAGE}/index.html"' in index and 'href="calculator.html"' in index
    calculator = (reports / "calculator.html").read_text()
    assert offline_problems(calculator) == []
    for key in ("alpha", "target_params", "draft_params", "gamma", "train_tokens", "gamma_opt",
                "throughput_tokens_per_flop", "speedup_vs_autoregressive", "n_star_params"):
        assert f'data-key="{key}"' in calculator


def test_report_calculator_writes_only_the_calculator(tmp_path, capsys):
    assert main(["report", "calculator", "--out", str(tmp_path), "--json"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calculator.html"]
    assert json.loads(capsys.readouterr().out)["calculator"] == str(tmp_path / "calculator.html")
    assert "index.html" not in (tmp_path / "calculator.html").read_text()  # no link to an index it did not write


def test_the_calculator_beside_an_index_links_back_to_it(reports):
    assert 'href="index.html"' in (reports / "calculator.html").read_text()


def test_an_unknown_format_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["report", PAGE, "--format", "pdf", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--format" in err and "'pdf'" in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_markdown_of_the_pages_becomes_html():
    from sdsl_sim.report.html import markdown_html

    out = markdown_html("## Result: N*\n\n| gpu | median |error| % |\n|---|---|\n| h100 | 1.5 |\n\n"
                        "*Hardware N* against the analytic N* (log scale).*\n\n"
                        "Run `sdsl-sim report *x*` or see [page](../batch/README.md), [paper](https://arxiv.org/x).\n"
                        "- one\n  more\n- **two**")
    assert '<h2 id="result-n">Result: N*</h2>' in out
    assert "<th>median |error| %</th>" in out and '<td class="num">1.5</td>' in out
    assert '<p class="caption"><em>Hardware N* against the analytic N* (log scale).</em></p>' in out
    assert "<code>sdsl-sim report *x*</code>" in out and '<a href="../batch/index.html">page</a>' in out
    assert "paper (https://arxiv.org/x)" in out and "href=\"https" not in out
    assert "<ul><li>one more</li><li><strong>two</strong></li></ul>" in out


def test_the_chart_spec_carries_the_plotted_data():
    from sdsl_sim.report.figspec import figure_spec

    spec = figure_spec(_demo_figure())
    lines, bars, heat = spec["axes"]
    by_type = {}
    for mark in lines["marks"]:
        by_type.setdefault(mark["t"], []).append(mark)
    assert lines["x"]["scale"] == "log" and lines["y"]["scale"] == "linear"
    assert [m["k"] for m in by_type["line"] if m["w"] > 0] == ["1k", "32k"]  # seaborn's hue lines, named by colour
    assert [y for _, y in by_type["line"][0]["xy"]] == [1.5, 1.8, 2.1, 2.0, 1.7]
    assert by_type["segs"][0]["segs"] == [[[2.0, 1.7], [2.0, 1.9]], [[4.0, 1.9], [4.0, 2.3]]]
    assert by_type["hline"][0]["v"] == 1.0 and by_type["hspan"][0]["r"] == [0.9, 1.0] and by_type["hspan"][0]["k"] == "band"
    assert by_type["poly"][0]["k"] is None  # an unnamed grey band matches no legend colour
    rects = [m for m in bars["marks"] if m["t"] == "rect"]
    assert [(m["name"], m["v"], m["k"]) for m in rects] == [("a100", 3.0, "TPOT"), ("h100", 5.0, "TPOT"), ("b200", 4.0, "TPOT")]
    points = next(m for m in bars["marks"] if m["t"] == "points")
    assert points["xy"] == [[0.5, 2.0], [1.5, 2.5]] and points["k"] == "measured"
    assert "4.0" in [t["s"] for t in bars["texts"]]
    cells = next(m for m in heat["marks"] if m["t"] == "cells")["cells"]
    assert sorted((c[5], c[7], c[6]) for c in cells) == [(1.0, "2x", "1x"), (2.0, "2x", "2x"), (3.0, "1x", "1x"), (4.0, "1x", "2x")]
    # legend entries in their legends' order (matplotlib lists a legend's points before its bars), then
    # labelled marks no legend shows
    assert [e["key"] for e in spec["legend"]] == ["1k", "32k", "measured", "TPOT", "band"]
    json.dumps(spec, allow_nan=False)


# ---------------------------------------------------------------- in the browser

def chromium_dom(url: str, *flags: str) -> str:
    """The DOM headless Chromium built from `url` after its scripts ran, as HTML text."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=10000", *flags, "--dump-dom", url],
            capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "</html>" in done.stdout, done.stderr[-2000:]
    return done.stdout


class _DataValues(HTMLParser):
    def __init__(self):
        super().__init__()
        self.values = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "data-key" in attrs:
            self.values[attrs["data-key"]] = attrs.get("data-value")


def data_values(dom: str) -> dict[str, str]:
    parser = _DataValues()
    parser.feed(dom)
    return parser.values


HARNESS = """<script>
// Test harness, appended to a copy of the page: hover the first data point, click the first legend entry.
window.addEventListener("load", () => {
  const out = {};
  const figure = document.querySelector("figure.chart-figure"), svg = figure.querySelector("svg.chart");
  const point = svg.querySelector(".mark:not(.off) .pt"), box = point.getBoundingClientRect();
  svg.dispatchEvent(new MouseEvent("mousemove", {clientX: box.x + box.width / 2, clientY: box.y + box.height / 2, bubbles: true}));
  const tip = figure.querySelector(".chart-tip");
  Object.assign(out, {tip: tip.hidden ? null : tip.textContent, x: point.dataset.x, y: point.dataset.y,
                      series: point.closest(".mark").dataset.series});
  const button = figure.querySelector(".chart-legend button");
  button.click();
  const marks = [...svg.querySelectorAll(".mark")];
  out.key = button.dataset.series;
  out.pressed = button.getAttribute("aria-pressed");
  out.hidden = marks.filter((m) => getComputedStyle(m).display === "none").map((m) => m.dataset.series);
  out.of_key = marks.filter((m) => m.dataset.series === out.key).length;
  const pre = document.createElement("pre");
  pre.id = "harness";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


CALCULATOR_HARNESS = """<script>
// Test harness, appended to a copy of the calculator: move two sliders, untick the optimum, use the law's alpha.
window.addEventListener("load", () => {
  const value = (key) => document.querySelector(`[data-key="${key}"]`).dataset.value;
  const slide = (key, v) => {
    const range = document.querySelector(`[data-input="${key}"][data-kind="range"]`);
    range.value = v;
    range.dispatchEvent(new Event("input"));
  };
  const out = {before: value("gamma_opt")};
  slide("alpha", 0.8);
  slide("target_params", 11);
  Object.assign(out, {alpha: value("alpha"), target: value("target_params"), after: value("gamma_opt"),
                      query: location.search});
  document.getElementById("gamma-opt").click();
  out.gamma = value("gamma");
  document.getElementById("use-law").click();
  Object.assign(out, {law: value("alpha_from_law"), alpha_now: value("alpha"), error: value("error")});
  const pre = document.createElement("pre");
  pre.id = "harness";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


FRAMES = """<!DOCTYPE html><html><body><script>
// Loads every page under test in a frame of this one, so one Chromium start serves them all, and copies
// each frame's DOM, once its scripts are done, into a <textarea> that --dump-dom prints.
const pages = %s, done = {};
for (const [name, url] of Object.entries(pages)) {
  const frame = document.createElement("iframe");
  Object.assign(frame, {src: url, width: 1200, height: 900});
  frame.dataset.name = name;
  document.body.appendChild(frame);
}
const timer = setInterval(() => {
  for (const frame of document.querySelectorAll("iframe")) {
    const doc = frame.contentDocument, name = frame.dataset.name;
    if (done[name] || !doc || doc.readyState !== "complete" || doc.URL === "about:blank") continue;
    if (name.endsWith("harness") && !doc.getElementById("harness")) continue;
    const copy = document.createElement("textarea");
    copy.id = "frame-" + name;
    copy.textContent = doc.documentElement.outerHTML;
    document.body.appendChild(copy);
    done[name] = true;
  }
  if (Object.keys(done).length === Object.keys(pages).length) clearInterval(timer);
}, 50);
</script></body></html>"""


@pytest.fixture(scope="module")
def browser(reports, demo, tmp_path_factory):
    """The DOM Chromium builds from every page under test, by name: the five calculator settings and a
    bad query, the report page, the demo page, and the demo page with HARNESS run in it; and, for the
    first setting, the DOM of a plain `--dump-dom` of its URL, the way a user's script reads it."""
    if CHROMIUM is None:
        pytest.skip("no headless browser: install Debian's chromium (.ci/run does) to run the browser checks")
    demo_path, _ = demo
    harness = demo_path.with_name("harness.html")
    harness.write_text(demo_path.read_text().replace("</body>", HARNESS + "</body>"))
    calculator_harness = reports / "calculator-harness.html"
    calculator_harness.write_text((reports / "calculator.html").read_text().replace("</body>", CALCULATOR_HARNESS + "</body>"))
    calculator = (reports / "calculator.html").as_uri()
    pages = {name: f"{calculator}?{urlencode(query)}" for name, query in SETTINGS.items()}
    pages.update({"bad-alpha": f"{calculator}?alpha=1.5&target_params=70B", "page": (reports / PAGE / "index.html").as_uri(),
                  "demo": demo_path.as_uri(), "harness": harness.as_uri(), "calculator-harness": calculator_harness.as_uri()})
    frames = tmp_path_factory.mktemp("frames") / "frames.html"
    frames.write_text(FRAMES % json.dumps(pages))
    with ThreadPoolExecutor(max_workers=2) as pool:  # each Chromium start costs a second or more
        framed = pool.submit(chromium_dom, frames.as_uri(), "--allow-file-access-from-files")
        direct = pool.submit(chromium_dom, pages["readme-example"])
        dom = framed.result()
        doms = {name: _textarea(dom, f"frame-{name}") for name in pages}
        doms["direct"] = direct.result()
    return doms


def _textarea(dom: str, element_id: str) -> str:
    found = re.search(rf'<textarea id="{element_id}">(.*?)</textarea>', dom, re.S)
    assert found, f"{element_id}: the page did not finish loading in the browser"
    return html.unescape(found.group(1))


def python_values(query: dict) -> dict:
    """What `sdsl-sim analytic throughput` and `analytic nstar` print for the calculator's inputs."""
    from sdsl_sim import analytic
    from sdsl_sim.cli.analytic import nstar, throughput
    from sdsl_sim.errors import InputError
    from sdsl_sim.units import DEFAULT_TRAIN_TOKENS

    args = argparse.Namespace(**{"gamma": None, "train_tokens": DEFAULT_TRAIN_TOKENS, **query})
    values = {**throughput(args), "train_tokens": args.train_tokens}
    values["speedup_at_gamma_opt"] = float(analytic.optimal_speedup(args.alpha, args.draft_params / args.target_params))
    try:
        values["alpha_from_law"] = float(analytic.alpha_from_sizes(args.draft_params, args.target_params, args.train_tokens))
    except InputError:
        values["alpha_from_law"] = math.nan
    try:
        values.update({k: v for k, v in nstar(args).items() if k not in ("target_params", "train_tokens")})
    except InputError:  # no draft size helps this target: the calculator shows no N*
        values.update(n_star_params=math.nan, alpha_at_n_star=math.nan, gamma_opt_at_n_star=math.nan, speedup_at_n_star=math.nan)
    return values


@needs_browser
@pytest.mark.parametrize("setting", SETTINGS)
def test_the_calculator_in_chromium_matches_the_python_closed_form(browser, setting):
    shown = data_values(browser[setting])
    assert shown.pop("error") == ""
    expected = python_values(SETTINGS[setting])
    expected.pop("draft_perplexity", None), expected.pop("target_perplexity", None)
    assert set(shown) == set(expected)
    for key, want in expected.items():
        got = shown[key]
        if isinstance(want, bool):
            assert got == str(want).lower(), key
        elif math.isnan(want):
            assert got == "NaN", key
        else:
            assert math.isclose(float(got), want, rel_tol=1e-6), (key, got, want)
    if setting == "small-alpha":
        assert shown["gamma_opt"] == "0" and shown["speculation_helps"] == "false"
    for chart in ("chart-gamma", "chart-draft"):  # the speedup curves, drawn by chart.js
        assert re.search(rf'id="{chart}" data-rendered="[1-9]', browser[setting]), chart


@needs_browser
def test_a_plain_dump_dom_of_a_calculator_url_reads_the_same(browser):
    assert data_values(browser["direct"]) == data_values(browser["readme-example"])
    assert data_values(browser["direct"])["gamma"] == data_values(browser["direct"])["gamma_opt"]  # no gamma: gamma*


@needs_browser
def test_the_calculator_follows_its_sliders(browser):
    found = _harness(browser["calculator-harness"])
    assert found["alpha"] == "0.8" and math.isclose(float(found["target"]), 1e11, rel_tol=1e-12)
    assert "alpha=0.8" in found["query"] and "target_params=" in found["query"]  # a link to this state
    assert found["after"] != found["before"] and found["gamma"] == str(round(float(found["after"])))
    law = python_values({"alpha": 0.8, "target_params": float(found["target"]), "draft_params": 277e6})["alpha_from_law"]
    assert math.isclose(float(found["law"]), law, rel_tol=1e-6) and found["alpha_now"] == found["law"]
    assert found["error"] == ""


@needs_browser
def test_the_calculator_names_a_bad_query_value(browser):
    shown = data_values(browser["bad-alpha"])
    assert "alpha 1.5 is outside (0, 1)" in shown["error"]
    assert shown["gamma_opt"] == shown["n_star_params"] == "NaN" and shown["target_params"] == "70000000000"


@needs_browser
@pytest.mark.parametrize("which", ["page", "demo"])
def test_charts_render_in_chromium_with_every_mark(browser, reports, demo, which):
    dom = browser[which]
    path = reports / PAGE / "index.html" if which == "page" else demo[0]
    specs = [json.loads(s) for s in re.findall(r'<script type="application/json" class="chart-spec">(.*?)</script>',
                                               path.read_text(), re.S)]
    assert offline_problems(dom) == []  # nothing the scripts added fetches anything either
    assert len(re.findall(r'<svg [^>]*class="chart"', dom)) == len(specs) > 0
    assert re.findall(r'data-rendered="(\d+)"', dom) == [str(sum(len(a["marks"]) for a in s["axes"])) for s in specs]
    points = sum(_drawable(a, m["xy"]) for s in specs for a in s["axes"] for m in a["marks"]
                 if m["t"] == "points" or (m["t"] == "line" and m["m"]))
    assert dom.count('class="pt"') == points > 0
    assert dom.count('<button type="button" aria-pressed="true"') == sum(e["toggles"] for s in specs for e in s["legend"])
    if which == "demo":
        assert dom.count('class="bar"') == 3 and dom.count('class="cell"') == 4


def _harness(dom: str) -> dict:
    return json.loads(html.unescape(re.search(r'<pre id="harness">(.*?)</pre>', dom, re.S).group(1)))


def _drawable(axes: dict, xy: list) -> int:
    """How many points chart.js draws: not NaN (null), and positive on a log axis."""
    def ok(v, axis):
        return v is not None and (axis["scale"] != "log" or v > 0)
    return sum(ok(x, axes["x"]) and ok(y, axes["y"]) for x, y in xy)


@needs_browser
def test_hovering_shows_values_and_a_legend_click_hides_its_series(browser):
    dom = browser["harness"]
    found = _harness(dom)
    assert found["tip"] is not None, "no tooltip on hovering a data point"
    lines = found["tip"].split("\n")
    assert lines[0] == found["series"]
    shown = dict(line.split(": ") for line in lines[1:])
    assert math.isclose(float(shown["batch (sequences)"]), float(found["x"]), rel_tol=5e-4)
    assert math.isclose(float(shown["speedup (x)"]), float(found["y"]), rel_tol=5e-4)
    assert found["key"] == "1k" and found["pressed"] == "false"
    assert found["hidden"] == ["1k"] * found["of_key"] and found["of_key"] >= 2  # its line and its error bars
