"""The notebooks and `a4nn report`, end to end: real Jupyter kernels, a real search,
real Chromium.

Every notebook runs headless (papermill-style parameters, `analyzer.notebooks.execute`)
on a tiny run generated here with the plain runner and on the A4NN ICPP'23 commons CSVs.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from a4nn.cli import main
from tests.conftest import tiny_config_dict, write_blob_npz

pytestmark = pytest.mark.slow
nbformat = pytest.importorskip("nbformat", reason="the notebooks extra is not installed")
pytest.importorskip("nbclient", reason="the notebooks extra is not installed")

from analyzer.notebooks import execute  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
COMMONS = REPO / "benchmarks" / "data" / "a4nn-icpp23"
STOPPING = COMMONS / "1gpu_1e15_stopping_training_data.csv"
STANDALONE = COMMONS / "1gpu_1e15_training_data.csv"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two tiny searches of one config: the engine on (`default` preset, which stops a
    model of this config early) and off."""
    folder = tmp_path_factory.mktemp("tiny")
    npz = write_blob_npz(folder)
    out = {}
    for name, preset in (("on", "default"), ("off", "off")):
        cfg = tiny_config_dict(
            npz,
            name=f"tiny-{name}",
            train={"epochs": 8},
            engine={"preset": preset},
            lineage={"checkpoints": "none"},
        )
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["run", str(path), "--out", str(folder / name), "--quiet"]) == 0
        out[name] = folder / name
    return out


def outputs(nb) -> tuple[str, int]:
    """All text the notebook printed or displayed, and how many images it shows."""
    text, images = [], 0
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                raise AssertionError(f"cell failed: {o.get('ename')}: {o.get('evalue')}")
            text.append(o.get("text", ""))
            data = o.get("data", {})
            text.append(data.get("text/plain", ""))
            images += "image/png" in data or "image/svg+xml" in data
    return "\n".join(text), images


def test_notebooks_have_parameters_and_no_outputs():
    names = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
    assert names == ["01-explore-run", "02-compare-runs", "03-data-commons", "04-engine-what-if"]
    for name in names:
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, name


def test_explore_run_on_a_tiny_run(runs):
    nb = execute(NOTEBOOKS / "01-explore-run.ipynb", {"RUN": str(runs["on"])})
    text, images = outputs(nb)
    assert images >= 7  # curves, one curve, 3 engine figures, Pareto, heatmap, drawing
    assert "on" in text and "stopped_early" in text


def test_explore_run_on_the_a4nn_commons_csv():
    nb = execute(NOTEBOOKS / "01-explore-run.ipynb", {"RUN": str(STOPPING)})
    text, images = outputs(nb)
    assert images >= 7
    assert re.search(r"34\.1\d", text)  # epochs saved by the engine in the paper's run


def test_compare_runs_engine_on_against_off(runs):
    nb = execute(
        NOTEBOOKS / "02-compare-runs.ipynb",
        {"RUNS": [str(runs["on"]), str(runs["off"])], "LABELS": ["engine on", "engine off"]},
    )
    text, images = outputs(nb)
    assert images >= 5
    assert "engine on" in text and "engine off" in text
    assert "stopped models matched in 'engine off'" in text


def test_compare_runs_on_the_a4nn_commons_csvs():
    nb = execute(NOTEBOOKS / "02-compare-runs.ipynb", {"RUNS": [str(STOPPING), str(STANDALONE)]})
    text, _ = outputs(nb)
    assert "stopped models matched in '1gpu_1e15_training_data.csv'" in text


def test_data_commons_on_a_download_and_on_the_a4nn_csvs(runs, tmp_path):
    download = tmp_path / "download"
    shutil.copytree(runs["on"], download / "tiny-on")
    shutil.copy(STOPPING, download)
    nb = execute(NOTEBOOKS / "03-data-commons.ipynb", {"COMMONS": str(download)})
    text, images = outputs(nb)
    assert "tiny-on" in text and STOPPING.name in text and images >= 6
    nb = execute(NOTEBOOKS / "03-data-commons.ipynb", {"COMMONS": str(COMMONS)})
    text, _ = outputs(nb)
    assert STANDALONE.name in text


def test_engine_what_if_on_a_tiny_run_and_the_a4nn_csv(runs):
    nb = execute(
        NOTEBOOKS / "04-engine-what-if.ipynb",
        {"RUN": str(runs["off"]), "SETTINGS": ["default", "paper"], "MAX_MODELS": None},
    )
    text, images = outputs(nb)
    assert images >= 3 and "epochs_saved_pct" in text
    nb = execute(
        NOTEBOOKS / "04-engine-what-if.ipynb",
        {"RUN": str(STANDALONE), "SETTINGS": ["default"], "MAX_MODELS": 3},
    )
    text, _ = outputs(nb)
    assert "3 models, 75 epochs, budget 25" in text


def test_report_is_one_self_contained_html_file(runs, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main(["report", str(runs["on"]), "--compare", str(runs["off"]), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"Report: {out}" in printed and "Models trained: 5" in printed
    page = out.read_text()
    assert page.count("<img") >= 6 and page.count("data:image/png;base64,") == page.count("<img")
    assert "<svg" in page  # the best architectures, inline
    assert not re.search(r"(src|href)=[\"'](http|//|file:)", page)  # nothing fetched
    for text in ("Summary", "stopped early", "Prediction error at termination", "Pareto"):
        assert text in page
    # an A4NN commons CSV reports too
    assert main(["report", str(STOPPING), "--out", str(tmp_path / "csv.html")]) == 0


def test_report_renders_in_headless_chromium(runs, tmp_path):
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from PIL import Image

    html = tmp_path / "report.html"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["report", str(runs["on"]), "--out", str(html)]) == 0
    png = tmp_path / "report.png"
    subprocess.run(
        [
            "bash",
            str(REPO / "scripts" / "screenshot_report.sh"),
            str(html),
            str(png),
            "1200",
            "1600",
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    img = Image.open(png).convert("L")
    assert img.size == (1200, 1600)
    lo, hi = img.getextrema()
    assert hi - lo > 100  # text and figures, not a blank page
    assert sum(1 for n in img.histogram() if n) > 50  # many grey levels
