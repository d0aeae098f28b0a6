"""The metric table of ``results/README.md``, generated from ``core.metrics``' declarations
(``python -m core.metrics_table``; ``tests/test_metrics.py`` checks the README holds it)."""

from __future__ import annotations

from core import metrics as declarations
from core.metrics import INF, Metric


def _range(m: Metric) -> str:
    def bound(v: float) -> str:
        return "inf" if v == INF else "-inf" if v == -INF else f"{v:g}"

    return f"[{bound(m.low)}, {bound(m.high)}]"


def markdown_table() -> str:
    """The metric table of ``results/README.md``, generated from the declarations."""
    lines = [
        "| metric | kind | unit | range | better | report | verify | definition |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in declarations.METRICS:  # followed when replaced (a metric a test declares)
        names = ", ".join(f"`{n}`" for n in m.names)
        better = {True: "higher", False: "lower", None: "-"}[m.higher_is_better]
        lines.append(
            f"| {names} | {', '.join(m.kinds)} | {m.unit} | {_range(m)} | {better} | {m.aggregation} "
            f"| {m.verify} | {m.definition} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":  # python -m core.metrics_table: the table results/README.md holds
    print(markdown_table())
