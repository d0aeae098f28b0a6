"""Example prunebench plugin: one pruner written against the public API (``prunebench``) only.

Install the distribution (``pip install tests/example_plugin``) and its entry point in the
``prunebench.pruners`` group registers ``power_magnitude`` at start-up; presets name it like
any built-in pruner and its cells record ``plugin = "prunebench-example-plugin"``, version 0.1.0.
"""

from dataclasses import dataclass

from prunebench import ScorePruner, param, register_pruner, weights


@register_pruner
class PowerMagnitude(ScorePruner):
    """Layer-normalised magnitude: s = |w|^p / mean_layer(|w|^p), ranked globally."""

    name = "power_magnitude"
    kind = "unstructured"
    timing = "after_training"
    version = "1"
    scope = "global"

    @dataclass(frozen=True)
    class Config:
        power: float = param(2.0, "exponent p of the score |w|^p")

    def scores(self, model, ctx):
        # dividing by the layer mean lets small layers compete with large ones in the global ranking
        scores = {}
        for name, w in weights(model).items():
            s = w.abs() ** self.config.power
            scores[name] = s / s.mean().clamp_min(1e-12)
        return scores
