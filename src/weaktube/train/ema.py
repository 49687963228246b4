"""Exponential moving average of a model's weights (evaluated and exported instead of the raw ones).

After each optimiser step ``ema = d_t * ema + (1 - d_t) * weights`` for every floating-point
tensor of the state dict (parameters and batch-norm statistics alike; integer buffers such as
``num_batches_tracked`` are copied), with the warm-up ``d_t = min(decay, (1 + t) / (10 + t))``
so the first steps are not dominated by the random initialisation. Not in the paper (docs/DESIGN.md,
"Weight averaging"); the YOLO family of detectors uses it.

The same average drives the target stage's mean teacher (``weak.teacher_decay``): there the
average lives in the teacher module's own tensors (``into=``), which hold a subset of the
model's keys (branches 2 + 4), starts from the trained initial model (``warmup=False``) and is
updated once per loss evaluation, before the step (``WeakLoss.pseudo_source``).
"""

from __future__ import annotations

import torch


class ModelEma:
    """A shadow copy of ``model``'s state dict, on the model's device, never trained.

    ``into``: keep the average in that module's tensors (updated in place) instead of a private
    copy of ``model``'s; its state-dict keys must be a subset of the model's, and it must not be
    moved or converted (``.to()``, ``.half()``) afterwards, which would leave the average in the
    old tensors. ``warmup=False``: ``decay`` from the first update on (the shadow starts from
    trained weights).
    """

    def __init__(self, model: torch.nn.Module, decay: float, *,
                 into: torch.nn.Module | None = None, warmup: bool = True):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ModelEma: decay={decay}, expected 0 < decay < 1")
        self.decay, self.warmup = decay, warmup
        self.updates = 0
        self.state = ({k: v.detach() for k, v in into.state_dict().items()} if into is not None
                      else {k: v.detach().clone() for k, v in model.state_dict().items()})
        self._check_keys(model.state_dict())

    def _check_keys(self, weights: dict) -> None:
        missing = set(self.state) - set(weights)
        if missing:
            raise ValueError(f"ModelEma: the model has no {sorted(missing)[:3]} to average")

    def current_decay(self) -> float:
        """The decay the next update uses (warm-up ramp, then ``decay``)."""
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        d = self.current_decay()
        weights = model.state_dict()
        self._check_keys(weights)  # into= was checked against itself only
        shadows, current = [], []
        for k, shadow in self.state.items():
            v = weights[k]
            if shadow.is_floating_point():
                shadows.append(shadow)
                current.append(v.detach())
            else:
                shadow.copy_(v)
        torch._foreach_lerp_(shadows, current, 1.0 - d)  # one fused pass over all tensors
        self.updates += 1

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "state": self.state}

    def load_state_dict(self, saved: dict) -> None:
        self.updates = int(saved["updates"])
        for k, v in saved["state"].items():
            self.state[k].copy_(v)
