import jax.numpy as jnp
import numpy as np
import pytest

from quietrl.core.checkpoint import check_compatible, has_checkpoint, load_checkpoint, save_checkpoint
from quietrl.core.errors import CheckpointMismatch


def _state(h=4):
    return {"params": {"w": jnp.arange(3 * h, dtype=jnp.float32).reshape(3, h), "b": jnp.zeros(h)},
            "step": jnp.array(7, jnp.int32), "key": np.array([0, 42], np.uint32)}


def test_round_trip(tmp_path):
    s = _state()
    save_checkpoint(tmp_path, "demo.mlp", {"hidden": 4}, s, step=3)
    assert has_checkpoint(tmp_path)
    target = {"params": {"w": jnp.zeros((3, 4)), "b": jnp.ones(4)}, "step": jnp.array(0, jnp.int32),
              "key": np.zeros(2, np.uint32)}
    got, step = load_checkpoint(tmp_path, "demo.mlp", {"hidden": 4}, target)
    assert step == 3
    np.testing.assert_array_equal(got["params"]["w"], s["params"]["w"])
    np.testing.assert_array_equal(got["key"], [0, 42])
    assert int(got["step"]) == 7


@pytest.mark.parametrize("kind, config, target, needle", [
    ("demo.other", {"hidden": 4}, None, "model kind 'demo.mlp', expected 'demo.other'"),
    ("demo.mlp", {"hidden": 8}, None, "another config: hidden=4 (expected 8)"),
    ("demo.mlp", {"hidden": 4}, _state(5), "shapes differ at ['params']['b']"),
])
def test_mismatch_is_one_line_from_meta_alone(tmp_path, kind, config, target, needle):
    save_checkpoint(tmp_path, "demo.mlp", {"hidden": 4}, _state(), step=1)
    for f in tmp_path.glob("state-*"):
        f.unlink()  # the decision must not need the state file
    with pytest.raises(CheckpointMismatch) as e:
        check_compatible(tmp_path, kind, config, target)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_save_overwrites_previous_and_keeps_one_state_file(tmp_path):
    save_checkpoint(tmp_path, "k", {}, _state(), step=1)
    save_checkpoint(tmp_path, "k", {}, _state(), step=2)
    assert len(list(tmp_path.glob("state-*.msgpack"))) == 1
    _, step = load_checkpoint(tmp_path, "k", {}, _state())
    assert step == 2
