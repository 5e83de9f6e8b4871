"""PPO training of the outreach policy in the fitted simulator: bounded, with progress, checkpoints, resume.

A run saves ``checkpoint.zip`` (policy, optimiser and the timesteps done) every ``checkpoint_every`` steps
and when it stops: at the step budget, at its wall-clock limit, or on Ctrl-C. Started again with the same
checkpoint folder it resumes from there instead of from scratch, so an interrupted training loses at most
one checkpoint interval. The learning curve (mean return and deal value of finished episodes per rollout)
is returned for MLflow. The policy's input encodes industries in the simulator's vocabulary: the result
carries it (``TrainingResult.industries``, logged with the policy) and a checkpoint records it, so a run is
never resumed on a simulator whose industries mean other slots.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from holocrm_core.rl.baselines import OutreachPolicy
from holocrm_core.rl.world import EpisodeStarts, IndustryMismatch, OutreachWorld, ResponseTable, WorldConfig

CHECKPOINT = "checkpoint.zip"
PROGRESS = "progress.json"


@dataclass(frozen=True)
class PPOSettings:
    total_timesteps: int = 300_000
    n_envs: int = 256
    n_steps: int = 32
    batch_size: int = 2048
    n_epochs: int = 4
    learning_rate: float = 1e-3
    gamma: float = 0.98
    gae_lambda: float = 0.95
    ent_coef: float = 0.01
    clip_range: float = 0.2
    net_arch: tuple[int, ...] = (64, 64)
    seed: int = 0
    time_limit_s: float = 600.0
    checkpoint_every: int = 50_000
    torch_threads: int = 1
    stage_shaping: float = 0.3  # potential-based shaping of the training reward (see BatchCRMEnv)


@dataclass
class TrainingResult:
    model: object
    timesteps: int
    resumed_from: int
    seconds: float
    stopped_because: str
    curve: list[dict] = field(default_factory=list)
    checkpoint: Path | None = None
    industries: tuple[str, ...] = ()  # the vocabulary of the policy's industry input (the simulator's)


class PPOPolicy(OutreachPolicy):
    """A trained stable-baselines3 policy behind the baselines' interface (its action distribution)."""

    name = "ppo"

    def __init__(self, model, deterministic: bool = True):
        self.model, self.deterministic = model, deterministic

    def probabilities(self, world: OutreachWorld) -> np.ndarray:
        return action_probabilities(self.model, world.observe())

    def act(self, world: OutreachWorld, rng: np.random.Generator) -> np.ndarray:
        if self.deterministic:
            return self.probabilities(world).argmax(axis=1)
        return super().act(world, rng)


def action_probabilities(model, obs: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    """The policy's distribution over actions for each observation row, (n, 4)."""
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(obs), chunk):
            tensor = torch.as_tensor(obs[i : i + chunk], dtype=torch.float32)
            out.append(model.policy.get_distribution(tensor).distribution.probs.cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 4))


def _callback(
    settings: PPOSettings, folder: Path | None, env, started: float, curve: list, say, state: dict, industries
):
    from stable_baselines3.common.callbacks import BaseCallback

    class Progress(BaseCallback):
        def _on_step(self) -> bool:
            if folder is not None and self.num_timesteps - state["saved_at"] >= settings.checkpoint_every:
                save_checkpoint(self.model, folder, self.num_timesteps, curve, industries)
                state["saved_at"] = self.num_timesteps
            if time.perf_counter() - started > settings.time_limit_s:
                state["stopped"] = f"wall-clock limit {settings.time_limit_s:.0f} s"
                return False
            return True

        def _on_rollout_end(self) -> None:
            if env.finished:
                returns, values = np.array(env.finished).T
                curve.append(
                    {
                        "timesteps": int(self.num_timesteps),
                        "mean_return": float(returns.mean()),
                        "mean_value_closed": float(values.mean()),
                        "episodes": len(returns),
                        "seconds": round(time.perf_counter() - started, 2),
                    }
                )
                env.finished.clear()
                say(
                    f"ppo {self.num_timesteps:>8} steps  return {returns.mean():+.3f}  "
                    f"value {values.mean():.3f}"
                )

    return Progress()


def save_checkpoint(
    model, folder: Path, timesteps: int, curve: list, industries: tuple[str, ...] = ()
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ("tmp_" + CHECKPOINT)
    model.save(tmp)
    tmp.replace(folder / CHECKPOINT)
    progress = {"timesteps": int(timesteps), "curve": curve, "industries": list(industries)}
    (folder / PROGRESS).write_text(json.dumps(progress))
    return folder / CHECKPOINT


def train_ppo(
    table: ResponseTable,
    starts: EpisodeStarts,
    settings: PPOSettings | None = None,
    config: WorldConfig | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    progress: Callable[[str], None] | None = None,
) -> TrainingResult:
    """Train PPO in the world ``table`` over ``starts``; resume from ``checkpoint_dir`` when it holds one."""
    import torch
    from stable_baselines3 import PPO

    from holocrm_core.rl.env import BatchCRMEnv

    settings = settings or PPOSettings()
    say = progress or (lambda message: None)
    torch.set_num_threads(settings.torch_threads)
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    env = BatchCRMEnv(
        table,
        starts,
        settings.n_envs,
        config,
        seed=settings.seed,
        stage_shaping=settings.stage_shaping,
        gamma=settings.gamma,
    )
    curve: list[dict] = []
    done_before = 0
    if folder is not None and resume and (folder / CHECKPOINT).exists():
        model = PPO.load(folder / CHECKPOINT, env=env, device="cpu")
        saved = json.loads((folder / PROGRESS).read_text()) if (folder / PROGRESS).exists() else {}
        # A checkpoint from before the vocabulary was recorded read the generator's industries: its slots
        # mean nothing here unless this simulator knows no industry either.
        trained_on = saved.get("industries")
        if (trained_on is None and table.industries) or (
            trained_on is not None and tuple(trained_on) != table.industries
        ):
            was = (
                "records no industry vocabulary (trained before vocabularies came from the export)"
                if trained_on is None
                else f"was trained on the industries {trained_on}"
            )
            raise IndustryMismatch(
                f"the checkpoint in {folder} {was}, this simulator has {list(table.industries)}: "
                "train afresh (resume=False, `holocrm rl train --fresh`)"
            )
        done_before, curve = int(saved.get("timesteps", model.num_timesteps)), list(saved.get("curve", []))
        say(f"resuming from {folder / CHECKPOINT} at {done_before} steps")
    else:
        model = PPO(
            "MlpPolicy",
            env,
            learning_rate=settings.learning_rate,
            n_steps=settings.n_steps,
            batch_size=settings.batch_size,
            n_epochs=settings.n_epochs,
            gamma=settings.gamma,
            gae_lambda=settings.gae_lambda,
            ent_coef=settings.ent_coef,
            clip_range=settings.clip_range,
            policy_kwargs={"net_arch": list(settings.net_arch)},
            seed=settings.seed,
            device="cpu",
            verbose=0,
        )
    remaining = max(settings.total_timesteps - done_before, 0)
    state = {"saved_at": done_before, "stopped": "step budget reached"}
    started = time.perf_counter()
    try:
        if remaining:
            model.learn(
                remaining,
                callback=_callback(settings, folder, env, started, curve, say, state, table.industries),
                reset_num_timesteps=False,
            )
    except KeyboardInterrupt:
        state["stopped"] = "interrupted"
        raise
    finally:
        if folder is not None:
            save_checkpoint(model, folder, model.num_timesteps, curve, table.industries)
    return TrainingResult(
        model,
        int(model.num_timesteps),
        done_before,
        time.perf_counter() - started,
        state["stopped"],
        curve,
        folder / CHECKPOINT if folder is not None else None,
        table.industries,
    )


def settings_dict(settings: PPOSettings) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(settings).items()}


def decide(model, obs: np.ndarray, strategy: str = "argmax", seed: int | None = None):
    """Decisions (action, propensity, confidence) from the policy's distribution, through the convergence
    engine of the decisions issue; returns ``(decisions, probabilities)``."""
    from holocrm_core.decisions.convergence import ConvergenceEngine

    probs = action_probabilities(model, obs)
    return ConvergenceEngine(strategy, seed=seed).decide(probs), probs
