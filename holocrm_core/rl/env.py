"""The CRM outreach simulator as a `gymnasium.Env` (``CRM-v1``) and as a batch VecEnv for fast PPO training.

``CRMEnv`` is one episode at a time and passes ``gymnasium.utils.env_checker.check_env``, so any
stable-baselines3 algorithm trains on it unchanged. ``BatchCRMEnv`` runs hundreds of episodes in one numpy
step (the same ``OutreachWorld``) behind stable-baselines3's ``VecEnv`` interface: that is what training
uses. Without arguments ``gym.make("CRM-v1")`` plays the generator's response model with contacts drawn
uniformly over segments and the generator's industries (a demo world: ``holocrm_core.rl.truth`` is imported
only then); the pipeline passes the fitted simulator and the export's contacts.
"""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from holocrm_core.rl.world import (
    ACTIONS,
    CUSTOMER,
    OBS_DIM,
    OBS_HIGH,
    QUALIFIED,
    EpisodeStarts,
    OutreachWorld,
    ResponseTable,
    WorldConfig,
)

ENV_ID = "CRM-v1"


def observation_space() -> spaces.Box:
    return spaces.Box(low=0.0, high=OBS_HIGH, shape=(OBS_DIM,), dtype=np.float32)


class CRMEnv(gym.Env):
    """One contact's outreach episode: observation = its features and history, action = the next touch."""

    metadata: ClassVar[dict] = {"render_modes": []}

    def __init__(
        self,
        table: ResponseTable | None = None,
        starts: EpisodeStarts | None = None,
        config: WorldConfig | None = None,
    ):
        if table is None:  # the demo world: the generator's truth over its own industries
            from holocrm_core.rl.truth import generator_industries, true_response_table

            table = true_response_table(generator_industries())
        self.table = table
        self.starts = starts if starts is not None else EpisodeStarts.uniform(industries=table.industries)
        self.config = config or WorldConfig()
        self.observation_space = observation_space()
        self.action_space = spaces.Discrete(len(ACTIONS))
        self.world = OutreachWorld(self.table, self.starts, 1, self.config, seed=None)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.world.rng = self.np_random
        self.world.reset()
        return self.world.observe()[0], {"contact_id": str(self.starts.contact_id[self.world.state.start[0]])}

    def step(self, action):
        out = self.world.step(np.array([int(action)]))
        info = {"value_closed": float(out["value_closed"][0]), "responded": bool(out["responded"][0])}
        return (
            self.world.observe()[0],
            float(out["reward"][0]),
            bool(out["won"][0]),
            bool(out["truncated"][0]),
            info,
        )


def register() -> None:
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="holocrm_core.rl.env:CRMEnv")


register()


class BatchCRMEnv(VecEnv):
    """``n`` episodes per numpy step, auto-reset, for stable-baselines3 (``VecEnv`` contract).

    ``stage_shaping`` adds potential-based shaping to the training reward (Ng et al. 1999: it leaves the
    optimal policy unchanged): a qualified contact or a customer is worth ``stage_shaping`` x its deal value,
    so qualifying a lead is credited when it happens rather than only when the deal closes days later.
    Reported rewards and deal values never include it.
    """

    def __init__(
        self,
        table: ResponseTable,
        starts: EpisodeStarts,
        n: int = 256,
        config: WorldConfig | None = None,
        seed: int = 0,
        stage_shaping: float = 0.0,
        gamma: float = 1.0,
    ):
        self.world = OutreachWorld(table, starts, n, config, seed=seed)
        self.stage_shaping, self.gamma = stage_shaping, gamma
        super().__init__(n, observation_space(), spaces.Discrete(len(ACTIONS)))
        self._actions = np.zeros(n, np.int64)
        self._returns = np.zeros(n)
        self._lengths = np.zeros(n, np.int64)
        self._value = np.zeros(n)
        self.finished: list[tuple[float, float]] = []  # (return, value closed) of finished episodes

    def reset(self):
        self.world.reset()
        self._returns[:] = 0
        self._lengths[:] = 0
        self._value[:] = 0
        return self.world.observe()

    def step_async(self, actions):
        self._actions = np.asarray(actions, dtype=np.int64).reshape(-1)

    def _potential(self) -> np.ndarray:
        if not self.stage_shaping:
            return np.zeros(self.num_envs)
        w = self.world
        closing = (w.state.lifecycle == QUALIFIED) | (w.state.lifecycle == CUSTOMER)
        return self.stage_shaping * closing * np.minimum(w.starts.value[w.state.start], w.config.max_value)

    def step_wait(self):
        before = self._potential()
        out = self.world.step(self._actions)
        after = np.where(out["won"], 0.0, self._potential())  # a won deal is terminal: potential 0
        shaped = out["reward"] + self.gamma * after - before
        self._returns += out["reward"]
        self._value += out["value_closed"]
        self._lengths += 1
        done = out["done"]
        infos = [{} for _ in range(self.num_envs)]
        ended = np.flatnonzero(done)
        if len(ended):
            terminal = self.world.observe()[ended]
            for j, i in enumerate(ended):
                infos[i] = {
                    "terminal_observation": terminal[j],
                    "TimeLimit.truncated": bool(out["truncated"][i]),
                    "episode": {"r": float(self._returns[i]), "l": int(self._lengths[i])},
                }
                self.finished.append((float(self._returns[i]), float(self._value[i])))
            self.world.reset(ended)
            self._returns[ended] = 0
            self._lengths[ended] = 0
            self._value[ended] = 0
        return self.world.observe(), shaped.astype(np.float32), done, infos

    def close(self):
        pass

    def get_attr(self, attr_name, indices=None):
        return [getattr(self, attr_name, None) for _ in self._indices(indices)]

    def set_attr(self, attr_name, value, indices=None):
        setattr(self, attr_name, value)

    def env_method(self, method_name, *method_args, indices=None, **method_kwargs):
        return [None for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False for _ in self._indices(indices)]

    def _indices(self, indices):
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else indices

    def seed(self, seed=None):
        self.world.rng = np.random.default_rng(seed)
        return [seed] * self.num_envs
