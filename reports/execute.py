"""Execute one report notebook headless and export it to HTML with inputs hidden.

A template is a jupytext percent-format ``.py`` file under ``reports/notebooks/`` with a
``parameters`` cell; papermill injects the parameters and runs it on a kernel that uses
*this* interpreter (a kernelspec written to a private directory, so a fresh virtualenv in
CI works offline without ``ipykernel install``). Run as a module, in its own process, so
several notebooks execute in parallel::

    python -m reports.execute TEMPLATE OUT_DIR '{"results_dir": "results"}' [TIMEOUT_S]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
NOTEBOOK_DIR = PACKAGE_DIR / "notebooks"
NBCONVERT_TEMPLATES = PACKAGE_DIR / "templates" / "nbconvert"
KERNEL_NAME = "python3"


def templates() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("*.py"))


def write_kernelspec(jupyter_dir: Path) -> Path:
    """A ``python3`` kernelspec that runs ipykernel on this interpreter, under ``jupyter_dir``.

    Put ``jupyter_dir`` first on ``JUPYTER_PATH``: the executed notebooks keep the usual
    ``python3`` kernel name, so they open and re-run in any Jupyter.
    """
    spec_dir = jupyter_dir / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (prunebench report)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return jupyter_dir


def subprocess_env(jupyter_dir: Path) -> dict[str, str]:
    """Environment of an executing notebook: our kernelspec first, this checkout importable."""
    env = dict(os.environ)
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(jupyter_dir), env.get("JUPYTER_PATH", "")) if p)
    root = str(PACKAGE_DIR.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env.setdefault("JUPYTER_PLATFORM_DIRS", "1")
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    env.setdefault("IPYTHONDIR", str(jupyter_dir / "ipython"))
    env.setdefault("JUPYTER_RUNTIME_DIR", str(jupyter_dir / "runtime"))  # connection files: no $HOME needed
    env.pop("MPLBACKEND", None)
    return env


def export_html(nb, html_path: Path, title: str) -> None:
    """HTML with inputs and prompts hidden, stderr streams dropped, no CDN scripts."""
    import copy

    from nbconvert import HTMLExporter

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell["outputs"] = [o for o in cell.get("outputs", []) if o.get("name") != "stderr"]
    nb.metadata["title"] = title
    exporter = HTMLExporter(
        extra_template_basedirs=[str(NBCONVERT_TEMPLATES)],
        template_name="prunebench",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    body, _ = exporter.from_notebook_node(nb)
    html_path.write_text(body, encoding="utf-8")


def execute(template: Path, out_dir: Path, parameters: dict, timeout: int = 600) -> dict:
    """Run ``template`` into ``out_dir/<stem>.ipynb`` and ``.html``; return a status dict."""
    import jupytext
    import papermill as pm

    start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = template.stem
    ipynb, html = out_dir / f"{stem}.ipynb", out_dir / f"{stem}.html"
    nb = jupytext.read(template)
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3", "language": "python"}
    title = stem.replace("_", " ")
    if nb.cells and nb.cells[0].cell_type == "markdown":
        first = nb.cells[0].source.strip().splitlines()[0]
        title = first.lstrip("# ").strip() or title
    status = {"notebook": stem, "ok": True, "error": ""}
    try:
        executed = pm.execute_notebook(
            nb,
            str(ipynb),
            parameters=parameters,
            kernel_name=KERNEL_NAME,
            progress_bar=False,
            request_save_on_cell_execute=False,
            cwd=str(out_dir),
            execution_timeout=timeout,
        )
    except Exception as exc:
        status.update(ok=False, error=f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:300]}")
        import nbformat

        executed = nbformat.read(ipynb, as_version=4) if ipynb.exists() else nb
    export_html(executed, html, title)
    status["seconds"] = round(time.perf_counter() - start, 2)
    return status


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    template, out_dir, params = Path(argv[0]), Path(argv[1]), json.loads(argv[2])
    timeout = int(argv[3]) if len(argv) > 3 else 600
    status = execute(template, out_dir, params, timeout)
    print("PRUNEBENCH-STATUS " + json.dumps(status), flush=True)
    return 0 if status["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
