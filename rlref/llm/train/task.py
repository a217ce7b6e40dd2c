"""A verifiable toy reasoning task generated on the fly: multi-step modular sums.

Prompt ``"3+5+2="`` (``terms`` digits), answer ``(3+5+2) mod 10 = 0``. A response is an optional
scratchpad followed by ``#`` and the answer digit, e.g. ``"3>8>0#0"`` (running sums mod 10); the
exact checker reads the digit right after the LAST ``#`` and ignores the scratchpad, so a model is
free to lengthen or drop it (the length papers' verbosity/accuracy trade-off). Difficulty is the
number of terms. (The task is designed here, in the spirit of the modular-sum trees of "When More
is Less"; it is not taken from a paper.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["ModSumTask", "Problem", "format_reward"]


@dataclass(frozen=True)
class Problem:
    """One problem: ``prompt`` text, its ``answer`` digit and the ``digits`` summed."""

    prompt: str
    answer: int
    digits: tuple[int, ...]


@dataclass(frozen=True)
class ModSumTask:
    """Sums of ``terms`` random digits modulo ``modulus`` (2 <= modulus <= 10, terms >= 1)."""

    terms: int = 3
    modulus: int = 10

    def __post_init__(self) -> None:
        if not (isinstance(self.terms, int) and self.terms >= 1):
            raise ValueError(f"task.terms must be an integer >= 1; got {self.terms!r}")
        if not (isinstance(self.modulus, int) and 2 <= self.modulus <= 10):
            raise ValueError(f"task.modulus must be an integer in [2, 10]; got {self.modulus!r}")

    def sample(self, rng: random.Random) -> Problem:
        """One problem drawn with ``rng``."""
        d = tuple(rng.randrange(10) for _ in range(self.terms))
        return Problem(prompt="+".join(map(str, d)) + "=", answer=sum(d) % self.modulus, digits=d)

    def batch(self, n: int, seed: int) -> list[Problem]:
        """``n`` problems, a pure function of ``seed`` (so a resumed run sees the same prompts)."""
        rng = random.Random(seed)
        return [self.sample(rng) for _ in range(n)]

    @staticmethod
    def parse(response: str) -> int | None:
        """The digit after the last ``#`` of ``response``, or None when there is none."""
        i = response.rfind("#")
        if i < 0 or i + 1 >= len(response) or not response[i + 1].isdigit():
            return None
        return int(response[i + 1])

    def check(self, problem: Problem, response: str) -> bool:
        """Exact checker: the parsed answer equals ``problem.answer``."""
        return self.parse(response) == problem.answer

    def solution(self, problem: Problem, *, scratchpad: bool = True, wrong: bool = False) -> str:
        """A worked response: running sums ``a>b>...`` then ``#answer`` (``wrong``: answer + 1 mod modulus)."""
        ans = (problem.answer + 1) % self.modulus if wrong else problem.answer
        if not scratchpad:
            return f"#{ans}"
        run, acc = [], 0
        for x in problem.digits:
            acc = (acc + x) % self.modulus
            run.append(str(acc))
        return ">".join(run) + f"#{ans}"


def format_reward(problems: list[Problem], responses: list[str]) -> list[float]:
    """A graded score for the toy task (designed here): 1 for a correct answer, 2/3 for a well-formed wrong one
    (``...#d``), 1/3 for a ``#`` with no digit after it, 0 otherwise. From a random model the exact checker alone
    ties almost every pair (all wrong), which gives self-play no signal; this score ranks the answer format
    first. ``reward_fn`` convention: one float per response, in order."""
    out = []
    for p, r in zip(problems, responses, strict=True):
        d = ModSumTask.parse(r)
        if d is None:
            out.append(1 / 3 if "#" in r else 0.0)
        else:
            out.append(1.0 if d == p.answer else 2 / 3)
    return out
