"""The learned scorer: a small torch network over the CRM's fields and its recent notes, calibrated.

Architecture: encoded features (``FeatureEncoder``: numbers, categories, note text) -> a two-layer MLP plus a
linear "wide" path (the wide path carries the simple effects when data are few). It trains on the older
part of its training rows and stops early on the most recent part, which then calibrates the output (Platt
scaling), so probabilities mean what they say on data newer than the training data.
"""

from __future__ import annotations

import copy

import numpy as np
import polars as pl

from holocrm_core.scoring.base import CRMScorer, as_polars
from holocrm_core.scoring.calibration import PlattScaler
from holocrm_core.scoring.features import FeatureEncoder


def _network(width: int, hidden: tuple[int, ...], dropout: float):
    import torch
    from torch import nn

    class WideAndDeep(nn.Module):
        def __init__(self):
            super().__init__()
            layers: list[nn.Module] = []
            previous = width
            for size in hidden:
                layers += [nn.Linear(previous, size), nn.SiLU(), nn.Dropout(dropout)]
                previous = size
            layers.append(nn.Linear(previous, 1))
            self.deep = nn.Sequential(*layers)
            self.wide = nn.Linear(width, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (self.deep(x) + self.wide(x)).squeeze(-1)

    return WideAndDeep()


def _numpy_layers(net) -> dict:
    deep = [
        (m.weight.detach().numpy().T.astype(np.float32), m.bias.detach().numpy().astype(np.float32))
        for m in net.deep
        if hasattr(m, "weight")
    ]
    wide = (
        net.wide.weight.detach().numpy().T.astype(np.float32),
        net.wide.bias.detach().numpy().astype(np.float32),
    )
    # The wide path rides along as one more output column of the first layer: one matrix product, not two.
    first_w, first_b = deep[0]
    fused = (np.hstack([first_w, wide[0]]), np.concatenate([first_b, wide[1]]))
    return {"deep": deep, "wide": wide, "fused_first": fused}


def _numpy_forward(layers: dict, x: np.ndarray) -> np.ndarray:
    deep = layers["deep"]
    w, b = layers.get("fused_first") or (
        np.hstack([deep[0][0], layers["wide"][0]]),
        np.concatenate([deep[0][1], layers["wide"][1]]),
    )
    h = x @ w
    h += b
    wide = h[:, -1].copy()
    h = h[:, :-1]
    for k in range(len(deep)):
        if k:
            h = h @ deep[k][0]
            h += deep[k][1]
        if k < len(deep) - 1:
            # SiLU in place, as in the torch network (dropout is off when scoring): h * sigmoid(h)
            s = np.negative(h)
            np.exp(s, out=s)
            s += 1.0
            h /= s
    return h[:, 0] + wide


# From this many rows on, the forward pass runs in torch (its SiLU is about 10x numpy's exp); below, numpy
# (no torch call overhead for one record).
TORCH_FORWARD_ROWS = 4096


def _torch_forward(layers: dict, x: np.ndarray) -> np.ndarray:
    import torch

    deep = layers["deep"]
    w, b = layers.get("fused_first") or (
        np.hstack([deep[0][0], layers["wide"][0]]),
        np.concatenate([deep[0][1], layers["wide"][1]]),
    )
    with torch.no_grad():
        h = torch.addmm(torch.from_numpy(b), torch.from_numpy(x), torch.from_numpy(w))
        wide = h[:, -1].clone()
        h = h[:, :-1]
        for k in range(len(deep)):
            if k:
                h = torch.addmm(torch.from_numpy(deep[k][1]), h, torch.from_numpy(deep[k][0]))
            if k < len(deep) - 1:
                h = torch.nn.functional.silu(h)
        return (h[:, 0] + wide).numpy()


def holdout_mask(X: pl.DataFrame, y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """True for the rows kept aside: the most recent ``fraction`` when outcome times exist, else random."""
    n = len(y)
    k = max(1, int(round(fraction * n)))
    mask = np.zeros(n, dtype=bool)
    if "outcome_at" in X.columns and X["outcome_at"].null_count() < n:
        order = np.argsort(X["outcome_at"].to_physical().fill_null(0).to_numpy(), kind="stable")
        mask[order[-k:]] = True
    else:
        rng = np.random.default_rng(seed)
        # Stratified: both classes are needed to calibrate.
        for label in (0, 1):
            idx = np.where(y == label)[0]
            take = int(round(fraction * len(idx)))
            mask[rng.choice(idx, size=take, replace=False)] = True
    return mask


class NeuralScorer(CRMScorer):
    """Wide-and-deep MLP over tabular features and note text; early stopping and Platt on recent rows."""

    name = "neural"

    def __init__(
        self,
        hidden: tuple[int, ...] = (64, 32),
        dropout: float = 0.1,
        epochs: int = 60,
        learning_rate: float = 3e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 256,
        patience: int = 8,
        min_epochs: int = 8,
        holdout_fraction: float = 0.2,
        ensemble: int = 1,
        seed: int = 0,
    ):
        self.hidden = hidden
        self.dropout = dropout
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.patience = patience
        self.min_epochs = min_epochs
        self.holdout_fraction = holdout_fraction
        self.ensemble = ensemble
        self.seed = seed

    def fit(self, X, y) -> NeuralScorer:
        import torch

        X = as_polars(X)
        y = np.asarray(y).astype(np.float32)
        self.encoder_ = FeatureEncoder()
        matrix = self.encoder_.fit_transform(X, y)
        held = holdout_mask(X, y, self.holdout_fraction, self.seed)
        if len(np.unique(y[held])) < 2 or len(np.unique(y[~held])) < 2:
            held = holdout_mask(X.drop("outcome_at", strict=False), y, self.holdout_fraction, self.seed)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a net this small trains faster on one thread than with thread hand-offs
        try:
            self.networks_ = [
                self._train_one(matrix[~held], y[~held], matrix[held], y[held], self.seed + k)
                for k in range(max(1, self.ensemble))
            ]
        finally:
            torch.set_num_threads(threads)
        self.layers_ = [_numpy_layers(net) for net in self.networks_]
        self.calibration_ = PlattScaler().fit(self._raw_logit(matrix[held]), y[held])
        self._finish_fit(X)
        return self

    def _train_one(self, x_fit, y_fit, x_hold, y_hold, seed):
        import torch

        torch.manual_seed(seed)
        net = _network(x_fit.shape[1], tuple(self.hidden), self.dropout)
        optimizer = torch.optim.AdamW(net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        xf, yf = torch.from_numpy(x_fit), torch.from_numpy(y_fit)
        xh, yh = torch.from_numpy(x_hold), torch.from_numpy(y_hold)
        generator = torch.Generator().manual_seed(seed)
        # Small CRMs have few rows: smaller batches keep the number of gradient steps per epoch useful.
        batch_size = int(np.clip(len(xf) // 16, 32, self.batch_size))
        best_loss, best_state, stale = float("inf"), copy.deepcopy(net.state_dict()), 0
        for epoch in range(self.epochs):
            net.train()
            order = torch.randperm(len(xf), generator=generator)
            for start in range(0, len(xf), batch_size):
                batch = order[start : start + batch_size]
                optimizer.zero_grad()
                loss_fn(net(xf[batch]), yf[batch]).backward()
                optimizer.step()
            net.eval()
            with torch.no_grad():
                held_loss = float(loss_fn(net(xh), yh))
            if held_loss < best_loss - 1e-4:
                best_loss, best_state, stale = held_loss, copy.deepcopy(net.state_dict()), 0
            else:
                stale += 1
                if stale >= self.patience and epoch >= self.min_epochs:
                    break
        net.load_state_dict(best_state)
        net.eval()
        return net

    def _raw_logit(self, matrix: np.ndarray) -> np.ndarray:
        if getattr(self, "layers_", None):
            # Scoring runs on numpy copies of the weights: no torch call overhead for one record, BLAS for many.
            x = np.ascontiguousarray(matrix, dtype=np.float32)
            forward = _torch_forward if len(x) >= TORCH_FORWARD_ROWS else _numpy_forward
            return np.mean([forward(layers, x) for layers in self.layers_], axis=0).astype(np.float64)
        import torch

        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32))
            return np.mean([net(x).numpy() for net in self.networks_], axis=0).astype(np.float64)

    def record_logit(self, record: dict) -> float:
        """Calibrated log-odds for one record given as a dict (field -> value)."""
        return float(
            self.calibration_.logit(self._raw_logit(self.encoder_.transform_record(record)[None, :]))[0]
        )

    def score_record(self, record: dict) -> float:
        """Probability for one record given as a dict (field -> value): the fast single-score path."""
        from holocrm_core.scoring.calibration import clip_probability, sigmoid

        return float(clip_probability(sigmoid(np.array([self.record_logit(record)])))[0])

    def decision_logit(self, X: pl.DataFrame) -> np.ndarray:
        return self.calibration_.logit(self._raw_logit(self.encoder_.transform(X)))

    def contributions(self, X) -> tuple[np.ndarray, list[str]]:
        """Per field: logit(record) - logit(record with this field set to the training average)."""
        X = as_polars(X)
        matrix = self.encoder_.transform(X)
        base = self._raw_logit(matrix)
        groups = self.encoder_.groups
        out = np.zeros((len(X), len(groups)))
        for j, group in enumerate(groups):
            swapped = matrix.copy()
            swapped[:, group.start : group.stop] = self.encoder_.reference[group.start : group.stop]
            out[:, j] = base - self._raw_logit(swapped)
        return out * self.calibration_.a, [g.name for g in groups]

    def phrase_finder(self):
        groups = {g.name: g for g in self.encoder_.groups}
        return lambda field, text, sign: (
            self.encoder_.phrases_in(groups[field], text, sign) if field in groups else []
        )
