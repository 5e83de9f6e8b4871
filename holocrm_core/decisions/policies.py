"""Decision policies behind next-best-action: contextual and per-segment Thompson sampling and the baselines.

Every policy follows the ``Policy`` protocol: ``probabilities(contexts)`` (the probability of choosing each
action in each context), ``choose(contexts)`` (decisions through the convergence engine, with propensities),
``update(contexts, actions, rewards)`` (a batch of any size, in any order: delayed rewards simply arrive
later), ``state_dict()`` / ``from_state()`` (JSON-safe, including the random generator, so a restored policy
makes the same decisions), and ``add_action`` / ``remove_action`` (state is kept per action, so the other
arms keep what they learned). Rewards are in [0, 1].

Policies:
- ``ContextualThompson``: one Bayesian model per action over the context features, with a Gaussian
  posterior. ``likelihood="logistic"`` is Bayesian logistic regression with a Laplace approximation (Newton
  steps to the posterior mode from the previous Gaussian as prior; for a single outcome the mode is found
  exactly along one direction and the covariance gets a rank-1 update, so online learning costs O(d^2)); ``likelihood="linear"`` is linear Thompson sampling (conjugate
  Bayesian ridge regression). The logistic model is the default: measured in
  ``benchmarks/decisions_quality.py`` (see the README's decisions section). Drift: ``discount`` < 1 pulls
  every arm's precision back toward the prior at each update (exponential forgetting), so an arm not played
  for a while becomes uncertain again and gets re-explored. ``exploration`` scales the posterior sd of the
  draws (0.5 by default: Chapelle and Li 2011 found a narrower posterior lowers regret; on the tuning seeds
  100-102 of the benchmark, 10,000 rounds, it cut regret from 277 to 169; the reported seeds are 0-19).
- ``SegmentThompson``: Beta-Bernoulli per (segment, action), today's recommender generalised; discountable.
- ``LinUCB`` (disjoint, Li et al. 2010), ``UCB1`` and ``EpsilonGreedy`` (per segment), and
  ``LoggingPolicy`` (a fixed, known distribution, e.g. the sample generator's reps' habits).

Why by hand: mabwiser 2.7 has LinTS / LinUCB / UCB1 / epsilon-greedy but no logistic (Laplace) Thompson
sampling, no discounting, decides one context at a time in Python (far below the 50k recommendations/s
target) and pickles its state; vowpalwabbit's ``cb_explore_adf`` has no posterior to explain a recommendation
with and no wheel for this Python on this machine. The maths here is small (rank-d Gaussian updates) and
vectorised over contexts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
from scipy.special import expit, ndtr, ndtri

from holocrm_core.decisions.actions import ActionSet, ContextEncoder, Contexts
from holocrm_core.decisions.convergence import ConvergenceEngine, Decisions, Strategy, argmax_distribution

# Stratified quantiles of one action's draw (midpoint rule in probability space). Gauss-Hermite nodes were
# measured first: with posteriors of very different widths they miss the step of a narrow rival's CDF
# (max error 0.058 at 20 nodes); 32 quantile nodes: mean error 0.0007, max 0.02 on posteriors like the
# policy's, at a cost that keeps batch recommendations above 50k/s.
_U_NODES = ndtri((np.arange(32) + 0.5) / 32)


@runtime_checkable
class Policy(Protocol):
    name: str
    actions: ActionSet

    def probabilities(self, contexts: Contexts) -> np.ndarray: ...

    def choose(self, contexts: Contexts) -> Decisions: ...

    def update(self, contexts: Contexts, actions: Any, rewards: Any) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def add_action(self, name: str) -> None: ...

    def remove_action(self, name: str) -> None: ...


def gaussian_win_probabilities(
    mean: np.ndarray, sd: np.ndarray, only: np.ndarray | None = None
) -> np.ndarray:
    """P(action a has the largest draw) for independent normal draws per action (quantile quadrature).

    ``mean`` and ``sd`` are (n, k); returns (n, k), or (n,) for the action ``only[i]`` of each row when
    given (a quarter of the cost: the propensity of a decision already drawn). Deterministic.
    """
    sd = np.maximum(sd, 1e-9)
    n, k = mean.shape
    rows = np.arange(n)
    targets = [only] if only is not None else [np.full(n, a) for a in range(k)]
    out = []
    for a in targets:
        # draws of action a at the quadrature nodes: (n, nodes)
        s = mean[rows, a][:, None] + sd[rows, a][:, None] * _U_NODES[None, :]
        prod = np.ones_like(s)
        for b in range(k):
            term = ndtr((s - mean[:, b, None]) / sd[:, b, None])
            prod *= np.where((a == b)[:, None], 1.0, term)  # an action does not compete with itself
        out.append(prod.mean(axis=1))
    if only is not None:
        return np.clip(out[0], 0.0, 1.0)
    p = np.stack(out, axis=1)
    return p / p.sum(axis=1, keepdims=True)


def _reward_array(rewards: Any) -> np.ndarray:
    r = np.asarray(rewards, dtype=np.float64).reshape(-1)
    if not np.isfinite(r).all() or (r < 0).any() or (r > 1).any():
        raise ValueError("rewards must be numbers in [0, 1]")
    return r


class _Base:
    """Shared plumbing: action names, the engine, batch validation, the generator's state."""

    name = "policy"
    default_strategy = Strategy.PURE_THOMPSON

    def __init__(
        self,
        actions: ActionSet | tuple[str, ...] | list[str],
        seed: int | None = None,
        encoder: ContextEncoder | None = None,
    ):
        self.actions = actions if isinstance(actions, ActionSet) else ActionSet(actions)
        self.encoder = encoder or ContextEncoder()
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.observations = 0

    def engine(self, strategy: Strategy | str | None = None, **options: float) -> ConvergenceEngine:
        return ConvergenceEngine(strategy or self.default_strategy, rng=self.rng, **options)

    def choose(
        self, contexts: Contexts, strategy: Strategy | str | None = None, **options: float
    ) -> Decisions:
        return self.engine(strategy, **options).decide(self.probabilities(contexts))

    def _batch(self, contexts: Contexts, actions: Any, rewards: Any) -> tuple[np.ndarray, np.ndarray]:
        a = np.asarray(actions).reshape(-1)
        if a.dtype.kind in "UO":
            a = self.actions.indices(a)
        a = a.astype(np.int64)
        if len(a) and (a.min() < 0 or a.max() >= len(self.actions)):
            raise KeyError(f"action index out of range for {list(self.actions)}")
        r = _reward_array(rewards)
        if not len(a) == len(r) == len(contexts):
            raise ValueError(
                f"{len(contexts)} contexts, {len(a)} actions and {len(r)} rewards: lengths differ"
            )
        return a, r

    def _common_state(self) -> dict[str, Any]:
        return {
            "kind": type(self).__name__,
            "actions": list(self.actions),
            "seed": self.seed,
            "observations": self.observations,
            "encoder": self.encoder.state_dict(),
            "rng": self.rng.bit_generator.state,
        }

    def _restore_common(self, state: Mapping[str, Any]) -> None:
        self.observations = int(state.get("observations", 0))
        if state.get("rng"):
            self.rng.bit_generator.state = state["rng"]


class _GaussianArms:
    """Per-action Gaussian posterior over weights: mean (k, d), precision (k, d, d), covariance cached."""

    def __init__(self, k: int, d: int, prior_precision: float):
        self.prior_precision = float(prior_precision)
        self.mean = np.zeros((k, d))
        self.precision = np.repeat(np.eye(d)[None] * self.prior_precision, k, axis=0)
        self.cov = np.repeat(np.eye(d)[None] / self.prior_precision, k, axis=0)
        self.counts = np.zeros(k)

    def add(self) -> None:
        d = self.mean.shape[1]
        self.mean = np.vstack([self.mean, np.zeros((1, d))])
        self.precision = np.concatenate([self.precision, np.eye(d)[None] * self.prior_precision])
        self.cov = np.concatenate([self.cov, np.eye(d)[None] / self.prior_precision])
        self.counts = np.append(self.counts, 0.0)

    def remove(self, i: int) -> None:
        keep = np.arange(len(self.counts)) != i
        self.mean, self.precision, self.cov, self.counts = (
            self.mean[keep],
            self.precision[keep],
            self.cov[keep],
            self.counts[keep],
        )

    def forget(self, factor: float) -> None:
        """Precision -> factor * precision + (1 - factor) * prior: old evidence counts for less."""
        if factor >= 1.0:
            return
        d = self.mean.shape[1]
        self.precision = factor * self.precision + (1.0 - factor) * self.prior_precision * np.eye(d)[None]
        self.cov = np.linalg.inv(self.precision)
        self.counts *= factor

    def linear_scores(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x.w mean and variance per context and action: (n, k) each."""
        mean = x @ self.mean.T
        if len(x) <= 4096:  # one batched matmul: (k, n, d)
            var = ((x @ self.cov) * x[None]).sum(axis=2).T
        else:  # per action, so memory stays at n x d; float32 halves the cost and is ample for a variance
            x32 = x.astype(np.float32)
            var = np.stack([np.einsum("nd,nd->n", x32 @ c.astype(np.float32), x32) for c in self.cov], axis=1)
            var = var.astype(np.float64)
        return mean, np.maximum(var, 0.0)

    def update_linear(self, i: int, x: np.ndarray, y: np.ndarray, noise_var: float) -> None:
        b = self.precision[i] @ self.mean[i] + x.T @ y / noise_var
        self.precision[i] = self.precision[i] + x.T @ x / noise_var
        self.cov[i] = np.linalg.inv(self.precision[i])
        self.mean[i] = self.cov[i] @ b
        self.counts[i] += len(y)

    def update_logistic(self, i: int, x: np.ndarray, y: np.ndarray) -> None:
        m0, p0 = self.mean[i].copy(), self.precision[i]
        m = m0.copy()
        if len(y) == 1:
            # One outcome: the posterior mode moves along u = S x only, m = m0 + c u, so finding it is a
            # scalar Newton solve of c = y - sigmoid(x.m0 + c x.u); then a rank-1 (Sherman-Morrison) update.
            u = self.cov[i] @ x[0]
            z0, s = float(x[0] @ m0), float(x[0] @ u)
            c = 0.0
            for _ in range(8):
                p = float(expit(z0 + c * s))
                step = (c - (y[0] - p)) / (1.0 + p * (1.0 - p) * s)
                c -= step
                if abs(step) < 1e-10:
                    break
            p = float(expit(z0 + c * s))
            w = p * (1.0 - p)
            self.mean[i] = m0 + c * u
            self.cov[i] = self.cov[i] - np.outer(u, u) * (w / (1.0 + w * s))
            self.precision[i] = p0 + w * np.outer(x[0], x[0])
        else:
            for _ in range(6):
                p = expit(x @ m)
                grad = p0 @ (m - m0) - x.T @ (y - p)
                hess = p0 + (x * (p * (1.0 - p))[:, None]).T @ x
                step = np.linalg.solve(hess, grad)
                m = m - step
                if np.abs(step).max() < 1e-6:
                    break
            p = expit(x @ m)
            self.precision[i] = p0 + (x * (p * (1.0 - p))[:, None]).T @ x
            self.cov[i] = np.linalg.inv(self.precision[i])
            self.mean[i] = m
        self.counts[i] += len(y)

    def state(self) -> dict[str, Any]:
        return {
            "prior_precision": self.prior_precision,
            "mean": self.mean.tolist(),
            "precision": self.precision.tolist(),
            "counts": self.counts.tolist(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> _GaussianArms:
        mean = np.asarray(state["mean"], dtype=np.float64)
        arms = cls(mean.shape[0], mean.shape[1], state["prior_precision"])
        arms.mean = mean
        arms.precision = np.asarray(state["precision"], dtype=np.float64)
        arms.cov = np.linalg.inv(arms.precision)
        arms.counts = np.asarray(state["counts"], dtype=np.float64)
        return arms


class _GaussianPolicy(_Base):
    def __init__(
        self,
        actions=ActionSet(),
        seed=None,
        encoder=None,
        prior_precision: float = 1.0,
        discount: float = 1.0,
    ):
        super().__init__(actions, seed, encoder)
        if not 0.0 < discount <= 1.0:
            raise ValueError(f"discount must be in (0, 1], got {discount}")
        self.discount = float(discount)
        self.arms = _GaussianArms(len(self.actions), self.encoder.dim, prior_precision)

    def add_action(self, name: str) -> None:
        if name not in self.actions:
            self.actions = self.actions.with_action(name)
            self.arms.add()

    def remove_action(self, name: str) -> None:
        i = self.actions.index(name)
        self.actions = self.actions.without_action(name)
        self.arms.remove(i)

    def update(self, contexts: Contexts, actions: Any, rewards: Any) -> None:
        a, r = self._batch(contexts, actions, rewards)
        if not len(a):
            return
        self.arms.forget(self.discount ** len(a))
        x = contexts.features
        for i in np.unique(a):
            rows = a == i
            self._update_arm(int(i), x[rows], r[rows])
        self.observations += len(a)

    def _update_arm(self, i: int, x: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {
            **self._common_state(),
            "discount": self.discount,
            "arms": self.arms.state(),
            **self._params(),
        }

    def _params(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]):
        policy = cls(
            ActionSet(state["actions"]),
            state.get("seed"),
            ContextEncoder.from_state(state["encoder"]),
            state["arms"]["prior_precision"],
            state.get("discount", 1.0),
            **{k: state[k] for k in cls._param_names if k in state},
        )
        policy.arms = _GaussianArms.from_state(state["arms"])
        policy._restore_common(state)
        return policy

    _param_names: tuple[str, ...] = ()


class ContextualThompson(_GaussianPolicy):
    """Thompson sampling with a Gaussian posterior per action over context features (logistic or linear)."""

    name = "contextual_thompson"
    _param_names = ("likelihood", "noise_var", "exploration")

    def __init__(
        self,
        actions=ActionSet(),
        seed=None,
        encoder=None,
        prior_precision: float = 1.0,
        discount: float = 1.0,
        likelihood: str = "logistic",
        noise_var: float = 0.25,
        exploration: float = 0.5,
    ):
        super().__init__(actions, seed, encoder, prior_precision, discount)
        if likelihood not in ("logistic", "linear"):
            raise ValueError(f"likelihood must be 'logistic' or 'linear', got {likelihood!r}")
        if exploration <= 0:
            raise ValueError(f"exploration (the posterior sd scale) must be positive, got {exploration}")
        self.likelihood, self.noise_var, self.exploration = likelihood, float(noise_var), float(exploration)

    def _params(self) -> dict[str, Any]:
        return {"likelihood": self.likelihood, "noise_var": self.noise_var, "exploration": self.exploration}

    def _update_arm(self, i: int, x: np.ndarray, y: np.ndarray) -> None:
        if self.likelihood == "logistic":
            self.arms.update_logistic(i, x, y)
        else:
            self.arms.update_linear(i, x, y, self.noise_var)

    def score_posterior(self, contexts: Contexts) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sd of each action's score (logit, or expected reward for the linear model): (n, k)."""
        mean, var = self.arms.linear_scores(contexts.features)
        return mean, self.exploration * np.sqrt(var)

    def probabilities(self, contexts: Contexts) -> np.ndarray:
        return gaussian_win_probabilities(*self.score_posterior(contexts))

    def sample_choice(self, contexts: Contexts) -> np.ndarray:
        """One Thompson draw per context and action, argmax (exact Thompson sampling without propensities)."""
        mean, sd = self.score_posterior(contexts)
        return np.argmax(mean + sd * self.rng.standard_normal(mean.shape), axis=1)

    def choose(
        self, contexts: Contexts, strategy: Strategy | str | None = None, **options: float
    ) -> Decisions:
        """Thompson sampling by default: one posterior draw per action, the best wins; its propensity is its
        win probability. Any other strategy collapses the full win-probability matrix through the engine."""
        if strategy is not None and Strategy(strategy) is not Strategy.PURE_THOMPSON:
            return super().choose(contexts, strategy, **options)
        return self.choose_from_scores(*self.score_posterior(contexts))

    def choose_from_scores(self, mean: np.ndarray, sd: np.ndarray) -> Decisions:
        """Thompson decisions from an already computed ``score_posterior`` (one matmul serves both)."""
        chosen = np.argmax(mean + sd * self.rng.standard_normal(mean.shape), axis=1)
        # The propensity is the quadrature's estimate of the draw's win probability (mean error 0.0007); the
        # full distribution is not computed on this path (4x the cost): probabilities() has it.
        p = gaussian_win_probabilities(mean, sd, only=chosen)
        return Decisions(chosen, p, p, None)

    def expected_reward(self, contexts: Contexts) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and sd of each action's success rate (probit approximation for the logistic)."""
        return self.rates_from_scores(*self.score_posterior(contexts))

    def rates_from_scores(self, mean: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sd = sd / self.exploration  # the rate's uncertainty is the posterior's, not the exploration draw's
        if self.likelihood == "linear":
            return np.clip(mean, 0.0, 1.0), sd
        rate = expit(mean / np.sqrt(1.0 + np.pi * sd**2 / 8.0))
        return rate, rate * (1.0 - rate) * sd  # delta method


class LinUCB(_GaussianPolicy):
    """Disjoint LinUCB: ridge regression per action, choose the largest upper confidence bound."""

    name = "linucb"
    default_strategy = Strategy.ARGMAX
    _param_names = ("alpha",)

    def __init__(
        self,
        actions=ActionSet(),
        seed=None,
        encoder=None,
        prior_precision: float = 1.0,
        discount: float = 1.0,
        alpha: float = 1.0,
    ):
        super().__init__(actions, seed, encoder, prior_precision, discount)
        self.alpha = float(alpha)

    def _params(self) -> dict[str, Any]:
        return {"alpha": self.alpha}

    def _update_arm(self, i: int, x: np.ndarray, y: np.ndarray) -> None:
        self.arms.update_linear(i, x, y, 1.0)

    def upper_bounds(self, contexts: Contexts) -> np.ndarray:
        mean, var = self.arms.linear_scores(contexts.features)
        return mean + self.alpha * np.sqrt(var)

    def probabilities(self, contexts: Contexts) -> np.ndarray:
        return argmax_distribution(self.upper_bounds(contexts))

    def expected_reward(self, contexts: Contexts) -> tuple[np.ndarray, np.ndarray]:
        mean, var = self.arms.linear_scores(contexts.features)
        return np.clip(mean, 0.0, 1.0), np.sqrt(var)


class _SegmentPolicy(_Base):
    """Per (segment, action) sufficient statistics: successes, failures (fractional rewards allowed)."""

    def __init__(
        self,
        actions=ActionSet(),
        seed=None,
        encoder=None,
        discount: float = 1.0,
        prior: tuple[float, float] = (1.0, 1.0),
    ):
        super().__init__(actions, seed, encoder)
        if not 0.0 < discount <= 1.0:
            raise ValueError(f"discount must be in (0, 1], got {discount}")
        self.discount, self.prior = float(discount), (float(prior[0]), float(prior[1]))
        self.wins = np.zeros((len(self.encoder.segment_names), len(self.actions)))
        self.losses = np.zeros_like(self.wins)

    def add_action(self, name: str) -> None:
        if name not in self.actions:
            self.actions = self.actions.with_action(name)
            self.wins = np.hstack([self.wins, np.zeros((len(self.wins), 1))])
            self.losses = np.hstack([self.losses, np.zeros((len(self.losses), 1))])

    def remove_action(self, name: str) -> None:
        i = self.actions.index(name)
        self.actions = self.actions.without_action(name)
        self.wins, self.losses = np.delete(self.wins, i, axis=1), np.delete(self.losses, i, axis=1)

    def update(self, contexts: Contexts, actions: Any, rewards: Any) -> None:
        a, r = self._batch(contexts, actions, rewards)
        if not len(a):
            return
        if self.discount < 1.0:
            factor = self.discount ** len(a)
            self.wins *= factor
            self.losses *= factor
        np.add.at(self.wins, (contexts.segments, a), r)
        np.add.at(self.losses, (contexts.segments, a), 1.0 - r)
        self.observations += len(a)

    def trials(self, contexts: Contexts) -> np.ndarray:
        return (self.wins + self.losses)[contexts.segments]

    def expected_reward(self, contexts: Contexts) -> tuple[np.ndarray, np.ndarray]:
        alpha = self.wins[contexts.segments] + self.prior[0]
        beta = self.losses[contexts.segments] + self.prior[1]
        total = alpha + beta
        return alpha / total, np.sqrt(alpha * beta / (total**2 * (total + 1.0)))

    def state_dict(self) -> dict[str, Any]:
        return {
            **self._common_state(),
            "discount": self.discount,
            "prior": list(self.prior),
            "wins": self.wins.tolist(),
            "losses": self.losses.tolist(),
            **self._params(),
        }

    def _params(self) -> dict[str, Any]:
        return {}

    _param_names: tuple[str, ...] = ()

    @classmethod
    def from_state(cls, state: Mapping[str, Any]):
        policy = cls(
            ActionSet(state["actions"]),
            state.get("seed"),
            ContextEncoder.from_state(state["encoder"]),
            state.get("discount", 1.0),
            tuple(state.get("prior", (1.0, 1.0))),
            **{k: state[k] for k in cls._param_names if k in state},
        )
        policy.wins = np.asarray(state["wins"], dtype=np.float64)
        policy.losses = np.asarray(state["losses"], dtype=np.float64)
        policy._restore_common(state)
        return policy


class SegmentThompson(_SegmentPolicy):
    """Beta-Bernoulli Thompson sampling per segment (default lifecycle status x lead band)."""

    name = "segment_thompson"
    _param_names = ("draws",)

    def __init__(
        self,
        actions=ActionSet(),
        seed=None,
        encoder=None,
        discount: float = 1.0,
        prior: tuple[float, float] = (1.0, 1.0),
        draws: int = 2000,
    ):
        super().__init__(actions, seed, encoder, discount, prior)
        self.draws = int(draws)

    def _params(self) -> dict[str, Any]:
        return {"draws": self.draws}

    def probabilities(self, contexts: Contexts) -> np.ndarray:
        """P(each action wins the Beta draw), by Monte Carlo once per distinct segment in the batch."""
        segments, inverse = np.unique(contexts.segments, return_inverse=True)
        alpha = self.wins[segments] + self.prior[0]
        beta = self.losses[segments] + self.prior[1]
        sims = self.rng.beta(
            alpha[:, None, :], beta[:, None, :], size=(len(segments), self.draws, alpha.shape[1])
        )
        best = np.argmax(sims, axis=2)
        k = alpha.shape[1]
        wins = (best[:, :, None] == np.arange(k)[None, None, :]).mean(axis=1)
        return wins[inverse.reshape(-1)]

    def sample_choice(self, contexts: Contexts) -> np.ndarray:
        alpha = self.wins[contexts.segments] + self.prior[0]
        beta = self.losses[contexts.segments] + self.prior[1]
        return np.argmax(self.rng.beta(alpha, beta), axis=1)


class UCB1(_SegmentPolicy):
    """UCB1 (Auer et al. 2002) per segment: mean + sqrt(2 ln n_segment / n_action); untried actions first."""

    name = "ucb1"
    default_strategy = Strategy.ARGMAX

    def upper_bounds(self, contexts: Contexts) -> np.ndarray:
        n = self.trials(contexts)
        total = n.sum(axis=1, keepdims=True)
        mean = self.wins[contexts.segments] / np.maximum(n, 1e-12)
        bonus = np.sqrt(2.0 * np.log(np.maximum(total, 1.0)) / np.maximum(n, 1e-12))
        return np.where(n > 0, mean + bonus, np.inf)

    def probabilities(self, contexts: Contexts) -> np.ndarray:
        ub = self.upper_bounds(contexts)
        return argmax_distribution(np.where(np.isinf(ub), 1e300, ub))


class EpsilonGreedy(_SegmentPolicy):
    """Per segment: the best observed mean with probability 1 - epsilon, a uniform random action otherwise."""

    name = "epsilon_greedy"
    _param_names = ("epsilon",)

    def __init__(
        self,
        actions=ActionSet(),
        seed=None,
        encoder=None,
        discount: float = 1.0,
        prior: tuple[float, float] = (1.0, 1.0),
        epsilon: float = 0.1,
    ):
        super().__init__(actions, seed, encoder, discount, prior)
        self.epsilon = float(epsilon)

    def _params(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon}

    def probabilities(self, contexts: Contexts) -> np.ndarray:
        mean, _ = self.expected_reward(contexts)
        return (1.0 - self.epsilon) * argmax_distribution(mean) + self.epsilon / len(self.actions)


class LoggingPolicy(_Base):
    """A fixed, known distribution over actions computed from the raw context frame (never learns)."""

    name = "logging_policy"

    def __init__(
        self,
        actions=ActionSet(),
        distribution: Callable[[Any], np.ndarray] | None = None,
        seed=None,
        encoder=None,
    ):
        super().__init__(actions, seed, encoder)
        if distribution is None:
            raise ValueError("a logging policy needs its distribution: contexts frame -> (n, actions)")
        self.distribution = distribution

    def probabilities(self, contexts: Contexts) -> np.ndarray:
        if contexts.frame is None:
            raise ValueError("the logging policy needs the raw context frame (encode with keep_frame=True)")
        return np.asarray(self.distribution(contexts.frame), dtype=np.float64)

    def update(self, contexts: Contexts, actions: Any, rewards: Any) -> None:
        self._batch(contexts, actions, rewards)  # validated, then ignored: a logging policy is fixed

    def add_action(self, name: str) -> None:
        raise ValueError("the logging policy's actions are fixed")

    remove_action = add_action

    def state_dict(self) -> dict[str, Any]:
        return self._common_state()

    @classmethod
    def from_state(cls, state: Mapping[str, Any]):
        raise ValueError("a logging policy's distribution is code, not state: build it with its distribution")


POLICIES: dict[str, type] = {
    c.__name__: c for c in (ContextualThompson, LinUCB, SegmentThompson, UCB1, EpsilonGreedy, LoggingPolicy)
}


def policy_from_state(state: Mapping[str, Any]):
    """Rebuild any policy from its ``state_dict()``."""
    kind = state.get("kind")
    if kind not in POLICIES:
        raise ValueError(f"unknown policy kind {kind!r}: known are {sorted(POLICIES)}")
    return POLICIES[kind].from_state(state)
