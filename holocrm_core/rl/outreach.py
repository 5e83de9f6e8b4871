"""The outreach policy, end to end: fit the simulator from the logs, train PPO in it, judge it, gate it.

``prepare_simulator`` turns an export into episode starts, the logged history and the fitted simulator;
``train_outreach_policy`` runs PPO in that simulator; ``judge_outreach_policy`` plays the policy and every
baseline on held-out contacts in the simulator (and, on generated data, in the TRUE world), checks it
off-policy on the logs and decides the promotion. The Dagster assets, the CLI and the benchmark all call
these three, so they measure the same thing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl

from holocrm_core.rl.baselines import (
    CadencePolicy,
    OraclePolicy,
    OutreachPolicy,
    RandomPolicy,
    ThompsonBaseline,
    always_email,
    always_wait,
)
from holocrm_core.rl.evaluate import Evaluation, comparison_table, paired_difference, play, relative_gain
from holocrm_core.rl.fit import (
    FittedResponse,
    NotEnoughOutreach,
    calibration_table,
    fit_response_model,
    table_error,
)
from holocrm_core.rl.history import record_history
from holocrm_core.rl.offpolicy import OffPolicyCheck, off_policy_check
from holocrm_core.rl.starts import episode_starts, export_industries
from holocrm_core.rl.train import PPOPolicy, PPOSettings, TrainingResult, action_probabilities, train_ppo
from holocrm_core.rl.world import (
    ACTIONS,
    CONTEXT_COLUMNS,
    MAX_DAYS,
    EpisodeStarts,
    ResponseTable,
    WorldConfig,
    check_industries,
    require_same_industries,
)

GATE_BASELINES = ("random", "always_email", "cadence", "thompson")  # what promotion is judged against
MIN_GAIN_BAR = 0.30  # the roadmap's bar: 30% more deal value than the best heuristic


@dataclass(frozen=True)
class OutreachSettings:
    history_episodes: int = 8000  # episodes of logged history drawn in the sample world
    simulator_members: int = 3  # bootstrap members of the fitted response model
    eval_episodes: int = 2000
    held_out_share: float = 0.3
    seed: int = 0
    world: WorldConfig = field(default_factory=WorldConfig)


@dataclass
class Simulator:
    starts: EpisodeStarts
    train_starts: EpisodeStarts
    held_out: EpisodeStarts
    log: pl.DataFrame
    model: FittedResponse
    table: ResponseTable
    truth: ResponseTable | None
    calibration: pl.DataFrame | None
    recorded_actions: int = 0  # rows of the recorded action log the simulator was also fitted from
    logging: OutreachPolicy | None = None  # the known policy behind the drawn history (generated data)

    @property
    def industries(self) -> tuple[str, ...]:
        """The industry vocabulary of this simulator, its starts, its truth and the policy trained in it."""
        return self.table.industries


def prepare_simulator(
    tables: dict[str, pl.DataFrame],
    settings: OutreachSettings | None = None,
    recorded_log: pl.DataFrame | None = None,
    generated: bool = True,
    truth=None,
    industries: tuple[str, ...] | None = None,
) -> Simulator:
    """Episode starts from ``tables``, the logged history, and the simulator fitted from it.

    The industry vocabulary is fitted from the export (``export_industries``) unless ``industries`` is given;
    the starts, the simulator, the true world and the policy trained in it all use it.
    ``generated``: the export comes from the sample generator, so its reps' history is drawn in the true
    world (the generator's known logging policy) and the simulator is checked against the truth; ``truth``
    (an object with ``response_table(industries)`` and ``logging_policy()``, default the generator's
    ``holocrm_core.rl.truth.SampleTruth``) says what the truth is. A real export has none.
    ``recorded_log``: logged actions with their context columns and ``responded`` (the decisions issue's
    ``action_log``), added to what the simulator is fitted from.
    """
    settings = settings or OutreachSettings()
    industries = export_industries(tables) if industries is None else check_industries(industries)
    starts = episode_starts(tables, industries=industries)
    held = starts.held_out_mask(settings.held_out_share)
    train_starts, held_out = starts.subset(~held), starts.subset(held)
    if generated and truth is None:
        from holocrm_core.rl.truth import SampleTruth  # generated data only: the generator's truth

        truth = SampleTruth()
    true_table = truth.response_table(industries) if generated else None
    logging = truth.logging_policy() if generated else None
    logs = []
    if generated:
        logs.append(
            record_history(
                true_table,
                train_starts,
                settings.history_episodes,
                seed=settings.seed,
                policy=logging,
                config=settings.world,
            )
        )
    fit_rows = [log.select(*CONTEXT_COLUMNS, "action", "responded", "episode") for log in logs]
    recorded = recorded_rows(recorded_log)
    if recorded is not None:
        fit_rows.append(recorded)
    if not fit_rows:
        raise NotEnoughOutreach(
            "no logged outreach to fit the simulator from: record actions (the action log) first"
        )
    fit_log = pl.concat(
        [
            f.with_columns(pl.col("episode").cast(pl.Int64), pl.col("days_since_last_touch").cast(pl.Int64))
            for f in fit_rows
        ]
    )
    model = fit_response_model(
        fit_log, members=settings.simulator_members, seed=settings.seed, industries=industries
    )
    table = model.table()
    calibration = calibration_table(table, true_table, logs[0]) if true_table is not None else None
    log = logs[0] if logs else pl.DataFrame()
    return Simulator(
        starts,
        train_starts,
        held_out,
        log,
        model,
        table,
        true_table,
        calibration,
        recorded.height if recorded is not None else 0,
        logging,
    )


def recorded_rows(log: pl.DataFrame | None) -> pl.DataFrame | None:
    """The usable rows of a recorded action log (the decisions' ``action_log``) in the fitting columns.

    A response is a reward above one half (the export's log records responded as 1 / 0); a contact never
    touched before counts as ``MAX_DAYS`` of silence, as in the episode starts.
    """
    if log is None or not log.height or not set(CONTEXT_COLUMNS) <= set(log.columns):
        return None
    if "usable" in log.columns:
        log = log.filter(pl.col("usable"))
    outcome = pl.col("responded").cast(pl.Boolean) if "responded" in log.columns else pl.col("reward") > 0.5
    rows = (
        log.filter(pl.col("action").is_in(list(ACTIONS)))
        .select(
            *[pl.col(c).cast(pl.String) for c in CONTEXT_COLUMNS if c != "days_since_last_touch"],
            pl.col("days_since_last_touch")
            .cast(pl.Float64, strict=False)
            .round()
            .fill_null(MAX_DAYS)
            .clip(0, MAX_DAYS)
            .cast(pl.Int64),
            "action",
            outcome.alias("responded"),
            (-1 - pl.int_range(pl.len(), dtype=pl.Int64)).alias(
                "episode"
            ),  # each recorded action its own group
        )
        .drop_nulls("responded")
    )
    return rows.select(*CONTEXT_COLUMNS, "action", "responded", "episode") if rows.height else None


def train_outreach_policy(
    sim: Simulator,
    ppo: PPOSettings | None = None,
    settings: OutreachSettings | None = None,
    checkpoint_dir=None,
    resume: bool = True,
    progress=None,
) -> TrainingResult:
    settings = settings or OutreachSettings()
    return train_ppo(sim.table, sim.train_starts, ppo, settings.world, checkpoint_dir, resume, progress)


@dataclass
class Judgement:
    simulated: list[dict]
    true_world: list[dict] | None
    gains: dict
    off_policy: OffPolicyCheck | None
    promote: bool
    reason: str
    calibration_max_error: float | None
    evaluations: dict[str, Evaluation] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("evaluations", "off_policy")}
        out["off_policy"] = self.off_policy.as_dict() if self.off_policy is not None else None
        return out


def _baselines(sim: Simulator, seed: int) -> list:
    policies = [RandomPolicy(), always_email(), always_wait(), CadencePolicy()]
    if sim.logging is not None:
        policies.append(sim.logging)
    if sim.log.height:
        policies.append(ThompsonBaseline(sim.log, seed=seed))
    return policies


def judge_outreach_policy(
    model, sim: Simulator, settings: OutreachSettings | None = None, industries: tuple[str, ...] | None = None
) -> Judgement:
    """Play PPO and the baselines on held-out contacts (same seed: paired), check off-policy, decide.

    ``industries``: the vocabulary ``model`` was trained with, when known (a logged policy's): a policy of
    another vocabulary is refused rather than judged on inputs whose industry slots mean other industries.
    """
    if industries is not None:
        require_same_industries(check_industries(industries), sim.industries, "the policy and the simulator")
    settings = settings or OutreachSettings()
    ppo = PPOPolicy(model)
    policies = [ppo, *_baselines(sim, settings.seed)]
    n, seed, world = settings.eval_episodes, settings.seed + 1000, settings.world
    simulated = {p.name: play(p, sim.table, sim.held_out, n, seed, world) for p in policies}
    evaluations = {f"sim/{k}": v for k, v in simulated.items()}
    true_rows, gains = None, {}
    if sim.truth is not None:
        true = {p.name: play(p, sim.truth, sim.held_out, n, seed, world) for p in [*policies, OraclePolicy()]}
        evaluations |= {f"true/{k}": v for k, v in true.items()}
        true_rows = comparison_table(list(true.values()), true["ppo"])
        best = max(
            ("random", "always_email", "cadence", "thompson"),
            key=lambda k: true[k].value_closed.mean() if k in true else -np.inf,
        )
        gains = {
            "best_heuristic": best,
            "gain_vs_best_heuristic_true": relative_gain(true["ppo"], true[best]).as_dict(),
            "gap_to_oracle_true": paired_difference(true["oracle"], true["ppo"]).as_dict(),
            "meets_bar": bool(relative_gain(true["ppo"], true[best]).low >= MIN_GAIN_BAR),
        }
    check = None
    if sim.log.height:
        check = off_policy_check(
            sim.log,
            action_probabilities(
                model,
                sim.log.select([c for c in sim.log.columns if c.startswith("obs_")])
                .to_numpy()
                .astype(np.float32),
            ),
            seed=settings.seed,
        )
    promote, reason = promotion_decision(simulated, check)
    cal_max = float(sim.calibration["abs_error"].max()) if sim.calibration is not None else None
    return Judgement(
        comparison_table(list(simulated.values()), simulated["ppo"]),
        true_rows,
        gains,
        check,
        promote,
        reason,
        cal_max,
        evaluations,
    )


def promotion_decision(simulated: dict[str, Evaluation], check: OffPolicyCheck | None) -> tuple[bool, str]:
    """Champion only when PPO beats every baseline on held-out simulated episodes (the 95% interval of the
    paired difference above zero) AND its DR estimate on the logged actions is not below the logging
    policy's."""
    ppo = simulated["ppo"]
    losing = []
    for name in GATE_BASELINES:
        if name in simulated:
            diff = paired_difference(ppo, simulated[name])
            if diff.low <= 0:
                losing.append(f"{name} (difference {diff.mean:+.4f}, 95% low {diff.low:+.4f})")
    if losing:
        return False, "does not beat every baseline on held-out episodes: " + ", ".join(losing)
    if check is None:
        return False, "no logged history to check the policy off-policy"
    if not check.agrees:
        return False, (
            f"off-policy check disagrees: DR {check.candidate.value:.4f} is below the logging "
            f"policy's {check.logging.value:.4f} on the logged actions"
        )
    return True, (
        f"beats {', '.join(n for n in GATE_BASELINES if n in simulated)} on held-out episodes (95%) "
        f"and DR {check.candidate.value:.4f} >= logging {check.logging.value:.4f}"
    )


def simulator_error(sim: Simulator) -> float | None:
    return table_error(sim.table, sim.truth, sim.log) if sim.truth is not None else None
