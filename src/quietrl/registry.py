"""The static table of sub-packages: name, one-line help, paper, and where their CLI and reproduction live.

Nothing here imports a sub-package; the CLI and ``quietrl reproduce`` import them only when called.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class SubPackage:
    name: str
    help: str
    title: str
    arxiv: str

    @property
    def cli_module(self) -> str:
        return f"quietrl.{self.name}.cli"

    @property
    def experiment_module(self) -> str:
        return f"quietrl.{self.name}.experiment"


SUBPACKAGES: tuple[SubPackage, ...] = (
    SubPackage("prefrl", "Kernel MDPs learned from episodic trajectory preferences (BTL), regret study.",
               "Learning Kernel-Based MDPs from Episodic Preferential Feedback", "2605.23650"),
    SubPackage("proofsearch", "Tamarin-style prover for .spthy models, RL environment and AND/OR MCTS.",
               "Less Effort, Shorter Proofs: RL for Security Protocol Analysis in Tamarin", "2605.23643"),
    SubPackage("goalgen", "Goal generalisation across training pipelines and latent policy gradients.",
               "Understanding Goal Generalisation in Sequential Reinforcement Learning", "2605.23565"),
    SubPackage("arms", "ARMS reward shaping for sparse-reward multi-agent pathfinding, Nash-set checks.",
               "ARMS: Automatic Reward Shaping for Sparse-Reward Multi-Agent RL", "2605.23562"),
    SubPackage("leo", "LEO all-goals learning with one forward pass for every goal.",
               "Goal-Conditioned Agents that Learn Everything All at Once", "2605.23551"),
    SubPackage("precise", "Precise SDE-consistent sampling for GRPO fine-tuning of flow-matching models.",
               "Precise: SDE-Consistent Stochastic Sampling for RL Post-Training of Flow-Matching Models",
               "2605.23522"),
)

BY_NAME = {s.name: s for s in SUBPACKAGES}
NAMES = tuple(s.name for s in SUBPACKAGES)
