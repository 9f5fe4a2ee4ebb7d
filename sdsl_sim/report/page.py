"""Writing one report page: markdown, seaborn figures (PNG) and the data behind them (parquet + CSV).

A study module builds a `Page` from DataFrames only; this module owns the files. Figures use the
non-interactive Agg backend and fixed sizes and fonts, so a page regenerates identically: `report all`
leaves a committed tree byte for byte as it was (tests/test_reports.py checks it).
"""

import io
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import PIL  # noqa: E402
import seaborn as sns  # noqa: E402

sns.set_theme(style="whitegrid", context="notebook")

# A PNG's bytes are fixed by what draws it (matplotlib's Agg) and what compresses it (Pillow's zlib), and by
# nothing else: the file names both, so a byte difference can be told from another rendering stack.
DPI = 110  # of every PNG (and of the HTML charts drawn from the same figures)
RENDERER = f"matplotlib {matplotlib.__version__}, Pillow {PIL.__version__}"


@dataclass
class Page:
    """A report page under construction: markdown blocks, figures and data tables, written by `save`."""

    name: str
    title: str
    blocks: list[str] = field(default_factory=list)
    figures: dict[str, plt.Figure] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    _pngs: dict[str, bytes] = field(default_factory=dict, repr=False)

    def text(self, markdown: str) -> None:
        self.blocks.append(markdown.strip())

    def data(self, stem: str, frame: pd.DataFrame) -> None:
        """Keep `frame` as the data behind this page's figures: written as STEM.parquet and STEM.csv.

        Wall-clock columns (`*wall_s`) are left out: they are the only values a rerun changes, and a
        page must regenerate to identical files."""
        frame = frame.drop(columns=[c for c in frame.columns if c.endswith("wall_s")])
        self.tables[stem] = frame.reset_index(drop=True)
        self.blocks.append(f"Data: [`{stem}.csv`]({stem}.csv) ([parquet]({stem}.parquet)).")

    def figure(self, stem: str, fig: plt.Figure, caption: str) -> None:
        self.figures[stem] = fig
        self.blocks.append(f"![{caption}]({stem}.png)\n\n*{caption}*")

    def png(self, stem: str) -> bytes:
        """The PNG of figure `stem`, drawn once: the file `save` writes and the image an HTML page embeds."""
        if stem not in self._pngs:
            buffer = io.BytesIO()
            self.figures[stem].savefig(buffer, format="png", dpi=DPI, bbox_inches="tight",
                                       metadata={"Software": RENDERER})
            self._pngs[stem] = buffer.getvalue()
        return self._pngs[stem]

    def table(self, frame: pd.DataFrame, floatfmt: str = ".3g") -> None:
        """A small markdown table in the page text (the full data goes through `data`)."""
        header = "| " + " | ".join(map(str, frame.columns)) + " |"
        rule = "|" + "---|" * len(frame.columns)
        rows = ["| " + " | ".join(_cell(v, floatfmt) for v in row) + " |" for row in frame.itertuples(index=False)]
        self.blocks.append("\n".join([header, rule, *rows]))

    def save(self, out_dir: Path) -> Path:
        out = Path(out_dir) / self.name
        out.mkdir(parents=True, exist_ok=True)
        for stem, fig in self.figures.items():
            (out / f"{stem}.png").write_bytes(self.png(stem))
            plt.close(fig)
        for stem, frame in self.tables.items():
            parquet = out / f"{stem}.parquet"
            kept = _kept(parquet, frame)
            if kept is None:
                frame.to_parquet(parquet, index=False)
                kept = frame
            # The CSV is printed from the values the parquet file holds, not the fresh ones: a last-bit
            # difference can never round a %.6g digit the other way.
            kept.to_csv(out / f"{stem}.csv", index=False, float_format="%.6g")
        path = out / "README.md"
        path.write_text(f"# {self.title}\n\n" + "\n\n".join(self.blocks) + "\n")
        return path


def _kept(path: Path, frame: pd.DataFrame) -> pd.DataFrame | None:
    """The frame the parquet file at `path` holds when it equals `frame` up to float rounding (1e-12
    relative), else None: a rerun whose sums were added in another order leaves a committed file untouched."""
    if not path.is_file():
        return None
    try:
        kept = pd.read_parquet(path)
        pd.testing.assert_frame_equal(kept, frame, check_exact=False, rtol=1e-12, atol=0.0)
    except (AssertionError, ValueError, OSError, TypeError):
        return None
    return kept


def _cell(value, floatfmt: str) -> str:
    if isinstance(value, float):
        return format(value, floatfmt)
    return str(value)


# The pass-model revision every page priced on a roofline GPU went through; each page adds what it changed.
REVISION_FIDELITY = ("**Revision (pass-model fidelity).** GEMM compute is now priced by tile and wave quantisation "
                     "over the SMs, with a smooth roofline near the ridge (`costs.py`; the micro-benchmarks it "
                     "reproduces are in `hardware_profiles/SOURCES.md`); fp8 GEMMs have their own efficiency; the "
                     "LM head runs only for rows that need logits (one per prompt chunk); sampling reads fp32 "
                     "logits. ")
# The row-tile revision: every page whose passes exceed one GEMM row tile moved with it.
REVISION_ROW_TILES = ("**Revision (whole row tiles).** A GEMM (and attention) of more rows than one tile now pays "
                      "a whole tile for every row tile, its partial last one included (`costs.row_fill`); before, "
                      "a partial tile cost only its used rows, so 320 rows could price below 256. Passes up to "
                      "one tile (256 rows on every GPU profile) are unchanged. ")
# The figure revision (issue 13): every page's PNGs changed with it; each page adds what its figures changed.
REVISION_FIGURES = ("**Revision (figures).** Numbers unchanged. Each PNG names the matplotlib and Pillow that drew "
                    "it, and `report all` leaves the committed pages byte for byte as they were. ")
# The result-schema revision (issue 13): pages whose data holds simulation metrics renamed them.
REVISION_SCHEMA = ("**Revision (result schema).** Numbers unchanged; the data's metric columns take vLLM `bench serve`'s "
                   "names where vLLM has the quantity (`output_throughput`, `mean_ttft_ms`, `p99_ttft_ms`, "
                   "`spec_decode_acceptance_length`, ...; the README's Results table maps every key). ")
