"""Run the analyzer notebooks headless with parameters, as papermill does.

Each notebook has one code cell tagged `parameters` holding its defaults; `execute`
inserts after it a cell tagged `injected-parameters` that sets the given values, then
runs every cell in a Jupyter kernel (nbclient). From a shell:

    python -m analyzer.notebooks notebooks/01-explore-run.ipynb -p RUN=runs/quickstart \\
        -o /tmp/explored.ipynb

Papermill itself works on the same notebooks (`papermill IN OUT -p RUN runs/quickstart`).
Needs the `notebooks` extra (jupyterlab, nbclient, ipykernel).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

KERNEL = "a4nn"  # registered by scripts/setup.sh (ipykernel install --sys-prefix --name a4nn)


def inject(nb: Any, parameters: dict[str, Any]) -> Any:
    """Insert the `injected-parameters` cell after the `parameters` cell."""
    import nbformat

    idx = next(
        (
            i
            for i, c in enumerate(nb.cells)
            if "parameters" in c.get("metadata", {}).get("tags", [])
        ),
        None,
    )
    if idx is None:
        raise ValueError("the notebook has no cell tagged 'parameters'")
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    src = "# Injected parameters\n" + "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
    cell = nbformat.v4.new_code_cell(src, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(idx + 1, cell)
    return nb


def kernel_name(nb: Any) -> str:
    """The notebook's kernel if installed here, else this interpreter's own (python3)."""
    from jupyter_client.kernelspec import KernelSpecManager

    wanted = nb.metadata.get("kernelspec", {}).get("name", KERNEL)
    return wanted if wanted in KernelSpecManager().find_kernel_specs() else "python3"


def execute(
    notebook: str | Path,
    parameters: dict[str, Any] | None = None,
    out: str | Path | None = None,
    timeout: int = 600,
    kernel: str | None = None,
) -> Any:
    """Run `notebook` with `parameters` in its folder; return the executed notebook (and
    write it to `out`). A failing cell raises nbclient's CellExecutionError, naming it."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(notebook)
    nb = nbformat.read(path, as_version=4)
    inject(nb, parameters or {})
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=kernel or kernel_name(nb),
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    client.execute()
    if out is not None:
        nbformat.write(nb, str(out))
    return nb


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analyzer.notebooks", description=__doc__)
    p.add_argument("notebook")
    p.add_argument(
        "-p",
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter (VALUE read as JSON, else as a string)",
    )
    p.add_argument("-o", "--out", help="write the executed notebook here")
    args = p.parse_args(argv)
    params = {}
    for item in args.parameter:
        name, sep, value = item.partition("=")
        if not sep:
            p.error(f"parameter {item!r}: use NAME=VALUE")
        params[name] = _value(value)
    execute(args.notebook, params, args.out)
    print(f"executed {args.notebook}" + (f" -> {args.out}" if args.out else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
