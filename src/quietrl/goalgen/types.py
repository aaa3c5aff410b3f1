"""Data types that cross goalgen's module boundaries: objects, features, stages and pipelines.

Objects are (colour, shape) pairs. The feature vector of an object is one-hot colour (black, blue, green,
red) followed by one-hot shape (circle, cross, diamond, hollow-diamond, plus, ring): F = 10 features, the
order the authors' model uses (colour first, then shape, each alphabetical). Object ids enumerate the 24
objects colour-major in that order, so ``object_id = colour_index * 6 + shape_index``.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

COLOURS: tuple[str, ...] = ("black", "blue", "green", "red")
SHAPES: tuple[str, ...] = ("circle", "cross", "diamond", "hollow-diamond", "plus", "ring")
# Features the training pipelines may use; green, circle and hollow-diamond appear only at evaluation.
TRAIN_COLOURS: tuple[str, ...] = ("black", "red", "blue")
TRAIN_SHAPES: tuple[str, ...] = ("cross", "plus", "diamond", "ring")

N_COLOURS = len(COLOURS)
N_SHAPES = len(SHAPES)
N_FEATURES = N_COLOURS + N_SHAPES
N_OBJECTS = N_COLOURS * N_SHAPES
FEATURE_NAMES: tuple[str, ...] = COLOURS + SHAPES


@dataclasses.dataclass(frozen=True, order=True)
class GameObject:
    """An object type: a colour and a shape, written ``colour_shape`` (e.g. ``red_hollow-diamond``)."""

    colour: str
    shape: str

    def __post_init__(self):
        # Callers that build objects from user text go through grammar.parse_object, which reports the
        # position; this guard catches programming errors.
        if self.colour not in COLOURS:
            raise ValueError(f"unknown colour {self.colour!r}")
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}")

    @property
    def name(self) -> str:
        return f"{self.colour}_{self.shape}"

    @property
    def id(self) -> int:
        return COLOURS.index(self.colour) * N_SHAPES + SHAPES.index(self.shape)

    @staticmethod
    def from_id(i: int) -> "GameObject":
        return GameObject(COLOURS[i // N_SHAPES], SHAPES[i % N_SHAPES])

    def features(self) -> np.ndarray:
        """phi(o) in {0,1}^10: one-hot colour then one-hot shape. Shape (F,)."""
        phi = np.zeros(N_FEATURES, np.float32)
        phi[COLOURS.index(self.colour)] = 1.0
        phi[N_COLOURS + SHAPES.index(self.shape)] = 1.0
        return phi

    def shared_features(self, other: "GameObject") -> int:
        return int(self.colour == other.colour) + int(self.shape == other.shape)

    def __str__(self) -> str:
        return self.name


ALL_OBJECTS: tuple[GameObject, ...] = tuple(GameObject.from_id(i) for i in range(N_OBJECTS))
TRAIN_OBJECTS: tuple[GameObject, ...] = tuple(
    GameObject(c, s) for c in TRAIN_COLOURS for s in TRAIN_SHAPES
)
# phi for all 24 objects, row = object id. Shape (24, 10).
OBJECT_FEATURES: np.ndarray = np.stack([o.features() for o in ALL_OBJECTS])
# The 276 unordered OOD pairs (a < b by id). Shape (276, 2).
ALL_PAIRS: np.ndarray = np.array(list(itertools.combinations(range(N_OBJECTS), 2)), np.int32)


@dataclasses.dataclass(frozen=True)
class Stage:
    """One training stage: a single environment whose goals are rewarded and terminating and whose
    distractors are neither. ``fraction`` is this stage's share of the pipeline's update budget
    (None = an equal share of what the explicit fractions leave)."""

    goals: tuple[GameObject, ...]
    distractors: tuple[GameObject, ...] = ()
    fraction: float | None = None

    @property
    def name(self) -> str:
        text = "_or_".join(g.name for g in self.goals)
        text += "".join(f"_with_{d.name}_distractor" for d in self.distractors)
        if self.fraction is not None:
            text += f"@{self.fraction:g}"
        return text

    @property
    def objects(self) -> tuple[GameObject, ...]:
        return self.goals + self.distractors


@dataclasses.dataclass(frozen=True)
class Pipeline:
    """A training pipeline: stages trained in order, each from the previous stage's weights."""

    stages: tuple[Stage, ...]
    family: str = ""

    @property
    def name(self) -> str:
        return "_then_".join(s.name for s in self.stages)

    @property
    def n_stages(self) -> int:
        return len(self.stages)

    @property
    def has_distractor(self) -> bool:
        return any(s.distractors for s in self.stages)

    @property
    def is_multi_goal(self) -> bool:
        return any(len(s.goals) > 1 for s in self.stages)

    def stage_updates(self, updates_per_stage: int) -> tuple[int, ...]:
        """PPO updates per stage. The budget is ``updates_per_stage * n_stages``; a stage with an explicit
        fraction gets ``round(fraction * budget)`` (at least 1), the others share the rest equally."""
        budget = updates_per_stage * self.n_stages
        fixed = {i: max(1, round(s.fraction * budget)) for i, s in enumerate(self.stages)
                 if s.fraction is not None}
        free = [i for i in range(self.n_stages) if i not in fixed]
        rest = budget - sum(fixed.values())
        out = []
        for i in range(self.n_stages):
            if i in fixed:
                out.append(fixed[i])
            else:
                # Spread the remainder so the total is exactly the budget.
                k = free.index(i)
                out.append(rest // len(free) + (1 if k < rest % len(free) else 0))
        return tuple(out)

    def __str__(self) -> str:
        return self.name
