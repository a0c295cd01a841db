"""The engine alone: steps per second through the bundled flows, on one core.

``python -m bench.engine_bench [--people N] [--messages M] [--profile FILE]``

Each simulated person (bench.people) talks to the pure engine; only ``Engine.step`` (and
``advance`` past a lookup that found nothing, as the app does) is timed, not the people.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import emit, engine_for, profiling, settings_for
from bench.people import Action, Person, Prompt
from helpline.events import Inbound
from helpline.flow.engine import Engine, Result
from helpline.flow.model import AskStep
from helpline.state import State

START = 1_800_000_000.0


def prompt_of(engine: Engine, state: State, result: Result) -> Prompt | None:
    for message in reversed(result.messages):
        if message.choices:
            return Prompt(message.text, [(c.label, c.payload) for c in message.choices])
    if isinstance(engine.current_step(state), AskStep) and result.messages:
        return Prompt(result.messages[-1].text)
    return None


def run(people: int, messages: int, profile: Path | None = None, rounds: int = 5
        ) -> dict[str, float]:
    """The same people ``rounds`` times; the figure is the best round (as ``timeit``
    advises: on a shared machine the slower rounds measure the neighbours), the median
    round is printed beside it."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = engine_for(settings_for(Path(tmp)))
    per_round: list[float] = []
    steps = 0
    with profiling(profile):
        for _ in range(rounds):
            steps, busy = one_round(engine, people, messages)
            per_round.append(steps / busy if busy else 0.0)
    best = max(per_round)
    return {"engine_steps": steps, "engine_rounds": rounds,
            "engine_steps_per_s": best,
            "engine_steps_per_s_median": statistics.median(per_round),
            "engine_us_per_step": 1e6 / best if best else 0.0}


def one_round(engine: Engine, people: int, messages: int) -> tuple[int, float]:
    steps = 0
    busy = 0.0
    clock = START
    for index in range(people):
        person = Person(index, messages)
        state = State()
        action: Action = person.first()
        while True:
            clock += 1.0
            inbound = (Inbound(kind="text", at=clock, text=action.value)
                       if action.kind == "text"
                       else Inbound(kind="button", at=clock, payload=action.value))
            t0 = time.perf_counter()
            result = engine.step(state, inbound)
            state = result.state
            if engine.waits_for_app(state):  # a lookup or handoff the app showed nothing for
                result = engine.advance(Result(state))  # what the app does then
            busy += time.perf_counter() - t0
            steps += 1
            if person.done:
                break
            action = person.answer(prompt_of(engine, state, result))
    return steps, busy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    emit(run(args.people, args.messages, args.profile, args.rounds))


if __name__ == "__main__":
    main()
