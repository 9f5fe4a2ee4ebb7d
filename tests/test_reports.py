"""The committed study pages under reports/ are exactly what the code produces, byte for byte.

Each page is regenerated the way `sdsl-sim report NAME --out reports` does it, over a copy of its
committed parquet files (which a rerun keeps when they hold the same data), and must leave every file
as committed, so `report all` leaves `git status` clean: the markdown verbatim (every number in it is
computed from the data), the data tables (compared as frames first, to 1e-9 relative, for a readable
message), then every file's bytes. PNG bytes are fixed by the rendering stack, which each PNG names
(`page.RENDERER`); its figures are compared where this environment has the same one, and skipped,
saying so, where it does not. A rerun adds no file either (committed files it does not write, such as
another writer's, are not checked). The cheap pages run by default (the slowest, which-speculation, about
40 s); the rest, and so the whole of `report all`, are marked slow.
"""

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sdsl_sim.report import PAGES, build_page
from sdsl_sim.report.page import RENDERER

COMMITTED = Path(__file__).resolve().parents[1] / "reports"
FAST = {"seed-experiment", "hardware-what-if", "validation", "moe-speculation", "which-speculation"}


PARAMS = [pytest.param(name, marks=() if name in FAST else (pytest.mark.slow,), id=name) for name in PAGES]


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    """regenerated(name): the folder a fresh build of page `name` wrote, built once per module."""
    built = {}

    def build(name):
        if name not in built:
            out = tmp_path_factory.mktemp(name)
            (out / name).mkdir()
            for parquet in (COMMITTED / name).glob("*.parquet"):  # what `report ... --out reports` finds there
                shutil.copy(parquet, out / name)
            built[name] = build_page(name, out, progress=False).parent
        return built[name]

    return build


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file())


@pytest.mark.parametrize("name", PARAMS)
def test_committed_page_matches_regenerated(name, regenerated):
    fresh, committed = regenerated(name), COMMITTED / name
    stale = f"reports/{name} is stale: run `sdsl-sim report {name} --out reports`"
    assert (committed / "README.md").read_text() == (fresh / "README.md").read_text(), stale
    assert set(_files(fresh)) <= set(_files(committed)), stale  # a rerun adds no file to the tree
    for csv in sorted(fresh.glob("*.csv")):
        pd.testing.assert_frame_equal(pd.read_csv(committed / csv.name), pd.read_csv(csv), check_exact=False, rtol=1e-9)
    for image in re.findall(r"\]\(([\w.-]+\.png)\)", (fresh / "README.md").read_text()):
        assert (committed / image).is_file() and (fresh / image).is_file()
    for file in _files(fresh):
        if not file.endswith(".png"):
            assert (committed / file).read_bytes() == (fresh / file).read_bytes(), f"reports/{name}/{file}: {stale}"


@pytest.mark.parametrize("name", PARAMS)
def test_committed_figures_match_regenerated(name, regenerated):
    fresh, committed = regenerated(name), COMMITTED / name
    images = sorted(fresh.glob("*.png"))
    drawn_by = set()
    for image in images:
        with Image.open(committed / image.name) as png:
            drawn_by.add(png.text.get("Software"))
    if drawn_by != {RENDERER}:
        pytest.skip(f"reports/{name} was drawn by {', '.join(map(str, sorted(drawn_by, key=str)))}; this is {RENDERER}")
    for image in images:
        assert (committed / image.name).read_bytes() == image.read_bytes(), \
            f"reports/{name}/{image.name} is stale: run `sdsl-sim report {name} --out reports`"


def test_every_page_is_committed():
    assert sorted(p.parent.name for p in COMMITTED.glob("*/README.md")) == sorted(PAGES)


def test_unknown_report_is_one_line_and_exit_2(tmp_path, capsys):
    from sdsl_sim.cli import main

    assert main(["report", "batch", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown report 'batch'; expected one of") and err.count("\n") == 1


def test_a_study_keeps_the_cached_results_of_studies_whose_names_extend_its_own(tmp_path):
    from sdsl_sim.report import Studies

    runs = tmp_path / ".runs"
    other = runs / "study-nstar-curve-0123456789ab"  # study-nstar-curve, not an older study-nstar
    stale = runs / "study-nstar-0123456789ab"
    for path in (other, stale):
        path.mkdir(parents=True)
    Studies(runs, workers=1, progress=False).rows("study-nstar-405b")
    Studies(runs, workers=1, progress=False).rows("study-nstar-ideal")
    assert other.is_dir() and stale.is_dir()
    Studies(runs, workers=2, progress=False).rows("study-nstar")
    assert other.is_dir() and not stale.exists()


def test_a_rerun_leaves_parquet_files_that_hold_the_same_data(tmp_path):
    from sdsl_sim.report.page import Page

    def save(values):
        page = Page("p", "t")
        page.data("d", pd.DataFrame({"x": values, "name": ["a", "b"]}))
        return page.save(tmp_path).parent / "d.parquet"

    path = save([0.1 + 0.2, 1.0])
    before = path.read_bytes()
    pd.DataFrame({"x": [0.3, 1.0], "name": ["a", "b"]}).to_parquet(path, index=False)  # 0.3 != 0.1 + 0.2 in the last bit
    rounded = path.read_bytes()
    assert rounded != before
    assert save([0.1 + 0.2, 1.0]).read_bytes() == rounded  # the same data up to rounding: left as it is
    assert pd.read_parquet(save([0.5, 1.0])).x.tolist() == [0.5, 1.0]  # changed data is written
    path.write_bytes(b"not parquet")
    assert pd.read_parquet(save([0.5, 1.0])).x.tolist() == [0.5, 1.0]  # nothing read back is trusted unchecked


def test_a_rerun_prints_the_csv_from_the_values_it_kept(tmp_path):
    from sdsl_sim.report.page import Page

    def save(value):
        page = Page("p", "t")
        page.data("d", pd.DataFrame({"x": [value]}))
        return page.save(tmp_path).parent / "d.csv"

    kept = 1.000005  # %.6g: 1.00001, while the float just below it prints 1
    first = save(kept).read_text()
    assert first == "x\n1.00001\n"
    assert save(float(np.nextafter(kept, 0))).read_text() == first  # the same to 1e-12: the file stays as it was
