"""Experiments from the conversation: start one (a write: previewed, needs yes) and read its report, both
through ``holocrm_core.experiments``' service (the one the CLI and the API use)."""

from __future__ import annotations

import re
import time

from holocrm_core.chat.text import jsonable

# what a strategy is called in a sentence -> the strategy an experiment's variant serves
STRATEGY_WORDS = {
    "cadence": "decisions.cadence",
    "ppo": "decisions.ppo",
    "rl": "decisions.ppo",
    "bandit": "decisions.bandit",
    "policy": "decisions.policy",
    "champion": "scoring.champion",
    "challenger": "scoring.challenger",
    "heuristic": "scoring.heuristic",
}


def strategy_of(word: str) -> str:
    from holocrm_core.experiments import STRATEGIES

    words = [
        w
        for w in word.lower().strip(" .").split()
        if w not in ("the", "policy", "strategy", "scorer", "model")
    ]
    word = " ".join(words) or word.lower().strip(" .")
    if word in STRATEGIES:
        return word
    if word in STRATEGY_WORDS:
        return STRATEGY_WORDS[word]
    if word in ("policy", "the policy"):
        return STRATEGY_WORDS["policy"]
    named = [w for w in words if w in STRATEGY_WORDS]  # "heuristic scoring", "the bandit approach"
    if len(named) == 1:
        return STRATEGY_WORDS[named[0]]
    raise ValueError(
        f"unknown strategy {word!r}: say one of {', '.join(STRATEGY_WORDS)} (or {', '.join(STRATEGIES)})"
    )


def create_experiment(service, record: dict) -> dict:
    """What a door runs for a confirmed `start an experiment ...`: the definition created through the
    experiment ``service`` (an atomic file); the same definition confirmed twice is one experiment."""
    from holocrm_core.experiments import Experiment, ExperimentError

    wanted = Experiment.from_json(record["experiment"])
    try:
        created = service.create(wanted)
    except ExperimentError:
        existing = service.get(wanted.name)
        if existing.variants != wanted.variants or existing.unit != wanted.unit:
            raise
        return {"record": {**record, "experiment": existing.to_json()}, "created": False}
    return {"record": {**record, "experiment": created.to_json()}, "created": True}


class ExperimentIntents:
    """The experiment intents of ``ChatSession`` (a mixin)."""

    def _experiments(self):
        from holocrm_core.chat.errors import ChatError

        try:
            return self.data.experiments
        except LookupError as exc:
            raise ChatError(str(exc)) from None

    def _do_start_experiment(self, args: dict, out: dict) -> None:
        from holocrm_core.chat.errors import ChatError
        from holocrm_core.experiments import Experiment, ExperimentError, Variant

        out["write"] = {"status": "refused"}
        first, second = re.split(r" (?:vs\.?|versus|against|and|or) ", args["variants"].lower(), maxsplit=1)
        try:
            strategies = (strategy_of(first), strategy_of(second))
        except ValueError as exc:
            from holocrm_core.chat.understand import experiment_slots

            spotted = experiment_slots(out["text"])  # the strategies named anywhere in the turn
            if spotted is None:
                out["write"]["reason"] = str(exc)
                raise ChatError(f"refused: {exc}") from None
            if args.get("name") and args["name"].lower() in STRATEGY_WORDS:
                args = {k: v for k, v in args.items() if k != "name"}
            args = {**spotted, **{k: v for k, v in args.items() if k in ("name", "unit")}}
            first, second = args["variants"].split(" vs ")
            strategies = (strategy_of(first), strategy_of(second))
        if strategies[0] == strategies[1]:
            out["write"]["reason"] = "both variants serve the same strategy"
            raise ChatError(f"refused: both variants serve {strategies[0]}: nothing to compare")
        names = [s.split(".", 1)[1] for s in strategies]
        unit = (args.get("unit") or "contact").lower()
        decisions = strategies[0].startswith("decisions.")
        metric = (args.get("metric") or "").lower() or (
            "response_rate" if decisions else ("win_rate" if unit == "deal" else "conversion")
        )
        name = (args.get("name") or f"{names[0]}-vs-{names[1]}").lower()
        service = self._experiments()
        try:
            experiment = Experiment(
                name, unit, (Variant(names[0], strategies[0]), Variant(names[1], strategies[1])), metric
            )
            exists = any(e.name == name for e in service.list())
        except ExperimentError as exc:
            out["write"]["reason"] = str(exc)
            raise ChatError(f"refused: {exc}") from None
        if exists:
            out["write"]["reason"] = f"an experiment named {name!r} exists already"
            raise ChatError(f"refused: an experiment named {name!r} exists already; pick another name")
        definition = experiment.to_json()
        record = {"idempotency_key": self._key(), "experiment": definition, "source": "chat"}
        shares = " vs ".join(f"{v.name} ({v.strategy})" for v in experiment.variants)
        diff = {
            "experiment": name,
            "field": "experiments",
            "add": f"{name}: per {unit}, {shares}, metric {metric}",
        }
        out["arguments"] = {**out["arguments"], "name": name, "strategies": list(strategies), "unit": unit}
        self._propose("start_experiment", None, record, [diff], out)

    def _do_read_experiment(self, args: dict, out: dict) -> None:
        from holocrm_core.chat.errors import ChatError
        from holocrm_core.experiments import ExperimentError

        service = self._experiments()
        started = time.perf_counter()
        name = (args.get("name") or "").lower() or None
        known = service.list()
        if name is None and not args.get("all"):
            running = [e for e in known if e.running]
            if self.experiment and any(e.name == self.experiment for e in known):
                name = self.experiment
            elif len(running) == 1:
                name = running[0].name
        if name is None:
            self._step("read_experiment", "list experiments", len(known), started)
            out["experiments"] = [
                {"name": e.name, "running": e.running, "unit": e.unit, "metric": e.primary_metric}
                for e in known
            ]
            out["reply"] = (
                "Experiments: "
                + (
                    "; ".join(f"{e.name} ({'running' if e.running else 'stopped'})" for e in known)
                    or "none yet (`start an experiment cadence vs ppo`)"
                )
                + ". Ask `how is experiment NAME doing?`"
            )
            return
        try:
            report = service.report(name, self.data.tables.get("deals"), write=False)
        except ExperimentError as exc:
            raise ChatError(str(exc)) from None
        self._step(
            "read_experiment", f"ExperimentService.report({name!r})", sum(report.units.values()), started
        )
        self.experiment = name
        summary = report.as_dict()
        out["experiment"] = jsonable(
            {k: summary[k] for k in ("experiment", "units", "decision", "verdict", "notes")}
            | {
                "results": [
                    {k: r[k] for k in ("metric", "variant", "lift") if k in r} for r in summary["results"]
                ]
            }
        )
        units = ", ".join(f"{k} {n}" for k, n in report.units.items()) or "no units exposed yet"
        out["reply"] = f"Experiment {name}: {units}. {report.verdict}"
