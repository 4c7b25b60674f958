"""The notebooks (notebooks/*.ipynb) run top to bottom at smoke size, and stay paired.

Each notebook is kept twice: the ``.ipynb`` Colab opens and a jupytext percent-format
``.py`` that is reviewed in diffs. The pair must hold the same cells; the ``.ipynb`` is
committed without outputs, so that nothing hidden rides along and a fresh kernel executing
it top to bottom (what these tests do, with ``JAXADV_SMOKE=1``) is the whole story.
"""

from __future__ import annotations

import os

import pytest

nbformat = pytest.importorskip("nbformat")
jupytext = pytest.importorskip("jupytext")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, "notebooks")
REPOSITORY = "github.com/jaxadv/jaxadv"  # pyproject.toml's [project.urls], checked below
NAMES = sorted(n[:-6] for n in os.listdir(NOTEBOOKS) if n.endswith(".ipynb"))
EXPECTED = ["00_quickstart", "bartlett2021", "benchmarks", "bubeck2021", "daniely2020", "depalma2021", "vardi2022"]


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_every_notebook_is_here_and_paired():
    assert NAMES == EXPECTED
    scripts = sorted(n[:-3] for n in os.listdir(NOTEBOOKS) if n.endswith(".py"))
    assert scripts == EXPECTED


@pytest.mark.parametrize("name", NAMES)
def test_pair_in_sync(name):
    ipynb = nbformat.read(os.path.join(NOTEBOOKS, name + ".ipynb"), as_version=4)
    script = jupytext.read(os.path.join(NOTEBOOKS, name + ".py"))
    assert _cells(ipynb) == _cells(script), (
        f"notebooks/{name}.ipynb and notebooks/{name}.py differ: edit the .py and run "
        f"`jupytext --sync notebooks/{name}.py`")


@pytest.mark.parametrize("name", NAMES)
def test_conventions(name):
    nb = nbformat.read(os.path.join(NOTEBOOKS, name + ".ipynb"), as_version=4)
    # Committed clean: no outputs, no execution counts, so no state from an earlier session.
    for c in nb.cells:
        if c.cell_type == "code":
            assert c.outputs == [] and c.execution_count is None, f"{name}: commit the notebook without outputs"
    # The badge opens this very notebook in Colab.
    badge = f"https://colab.research.google.com/github/{REPOSITORY.removeprefix('github.com/')}/blob/main/notebooks/{name}.ipynb"
    assert nb.cells[0].cell_type == "markdown" and badge in nb.cells[0].source
    # The first code cell installs jaxadv only in Colab, reads the size switch and says
    # where it runs.
    setup = next(c.source for c in nb.cells if c.cell_type == "code")
    assert 'if "google.colab" in sys.modules:' in setup
    assert "pip" in setup and f"https://{REPOSITORY}" in setup
    assert 'os.environ.get("JAXADV_SMOKE") == "1"' in setup
    assert "jax.default_backend()" in setup and "jax.devices()" in setup
    # Form fields for the main parameters.
    assert any("# @param" in c.source for c in nb.cells if c.cell_type == "code")


def test_repository_url_is_the_projects():
    with open(os.path.join(ROOT, "pyproject.toml")) as fh:
        assert f'Repository = "https://{REPOSITORY}"' in fh.read()


@pytest.mark.parametrize("name", NAMES)
def test_runs_top_to_bottom_at_smoke_size(name, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    # The kernel is a child of this process: it inherits the size switch, a headless
    # matplotlib, and the repository on its path (as an installed jaxadv would be).
    monkeypatch.setenv("JAXADV_SMOKE", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.read(os.path.join(NOTEBOOKS, name + ".ipynb"), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
