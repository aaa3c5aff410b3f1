import dataclasses
from typing import Literal, Optional

import pytest

from quietrl.core.config import apply_overrides, from_dict, require, to_dict
from quietrl.core.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Cfg:
    lr: float = 1e-3
    steps: int = 100
    algo: Literal["leo", "pqn"] = "leo"
    hidden: tuple[int, ...] = (256, 256)
    anneal: bool = False
    name: str = "run"
    eta: Optional[float] = None

    def __post_init__(self):
        require(self.steps >= 1, "steps", f"must be >= 1, got {self.steps}")
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")


def test_overrides_parse_by_annotation():
    c = apply_overrides(Cfg(), ["lr=2e-4", "steps=5", "algo=pqn", "hidden=64,32", "anneal=true", "eta=1.5"])
    assert c == Cfg(lr=2e-4, steps=5, algo="pqn", hidden=(64, 32), anneal=True, eta=1.5)
    assert apply_overrides(c, ["eta=none"]).eta is None
    assert apply_overrides(Cfg(), ["steps=1e3"]).steps == 1000


@pytest.mark.parametrize("item, needle", [
    ("nokey", "expected key=value"),
    ("foo=1", "unknown key for Cfg; valid keys: lr, steps, algo"),
    ("steps=abc", "--set steps=abc: must be int"),
    ("steps=1.5", "must be int"),
    ("algo=sac", "must be one of leo, pqn"),
    ("anneal=maybe", "must be true or false"),
    ("steps=0", "steps: must be >= 1"),
])
def test_bad_overrides_name_the_key_or_value(item, needle):
    with pytest.raises(ConfigError) as e:
        apply_overrides(Cfg(), [item])
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_dict_round_trip():
    c = Cfg(hidden=(8,), algo="pqn")
    assert from_dict(Cfg, to_dict(c)) == c
    with pytest.raises(ConfigError, match="unknown keys for Cfg: bogus"):
        from_dict(Cfg, {"bogus": 1})
