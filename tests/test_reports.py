"""The committed study pages under reports/ are exactly what the code produces.

Each test regenerates a page into a temporary folder and compares it with the committed one: the
markdown text verbatim (every number in it is computed from the data) and every data table
(CSV) to 1e-9 relative. Figures are checked for presence only: PNG bytes depend on the font and
rendering stack, not on sdsl-sim. The cheap pages run by default; the rest are marked slow.
"""

import re
from pathlib import Path

import pandas as pd
import pytest

from sdsl_sim.report import PAGES, build_page

COMMITTED = Path(__file__).resolve().parents[1] / "reports"
FAST = {"seed-experiment", "hardware-what-if", "validation", "moe-speculation", "which-speculation"}


PARAMS = [pytest.param(name, marks=() if name in FAST else (pytest.mark.slow,), id=name) for name in PAGES]


@pytest.mark.parametrize("name", PARAMS)
def test_committed_page_matches_regenerated(name, tmp_path):
    readme = build_page(name, tmp_path, progress=False)
    fresh, committed = readme.parent, COMMITTED / name
    assert (committed / "README.md").read_text() == readme.read_text(), \
        f"reports/{name}/README.md is stale: run `sdsl-sim report {name} --out reports`"
    csvs = sorted(p.name for p in committed.glob("*.csv"))
    assert csvs == sorted(p.name for p in fresh.glob("*.csv"))
    for csv in csvs:
        pd.testing.assert_frame_equal(pd.read_csv(committed / csv), pd.read_csv(fresh / csv),
                                      check_exact=False, rtol=1e-9)
    for image in re.findall(r"\]\(([\w.-]+\.png)\)", readme.read_text()):
        assert (committed / image).is_file() and (fresh / image).is_file()


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
