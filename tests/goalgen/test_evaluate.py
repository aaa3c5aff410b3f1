import jax
import numpy as np
import pytest

from quietrl.core.errors import UserError
from quietrl.goalgen.env import GoalGridEnv
from quietrl.goalgen.evaluate import PairTable, make_pair_evaluator, pair_ids, table_from_counts
from quietrl.goalgen.grammar import parse_pipeline
from quietrl.goalgen.networks import ActorCritic


@pytest.mark.slow
def test_pair_evaluator_counts_episodes():
    env = GoalGridEnv(grid=4, obs_mode="symbolic")
    net = ActorCritic(obs_mode="symbolic", hidden=(16,))
    obs, _ = env.reset(jax.random.PRNGKey(0), env.default_params)
    params = net.init(jax.random.PRNGKey(1), obs[None])
    params = jax.tree.map(lambda x: np.stack([x, x]), params)   # two agents
    ev = make_pair_evaluator(env, net.apply, n_episodes=6, pairs_per_block=2)
    pairs = pair_ids()[:4]
    counts = ev(params, pairs, jax.random.PRNGKey(2))
    assert counts.shape == (2, 4, 3) and (counts.sum(-1) == 6).all()
    # A 4x4 grid with 30 steps: a random walker reaches some object most of the time.
    assert counts[..., :2].sum() > counts[..., 2].sum()


def test_csv_round_trip_and_errors(tmp_path):
    pls = [parse_pipeline("red_cross", "A"), parse_pipeline("red_cross_then_blue_plus", "C")]
    pairs = pair_ids()[:3]
    counts = np.array([[[3, 1, 0], [0, 0, 4], [2, 2, 0]], [[1, 1, 2], [4, 0, 0], [0, 3, 1]]])
    t = table_from_counts(pls, [0, 1], pairs, counts)
    path = tmp_path / "d.csv"
    t.write_csv(path)
    back = PairTable.read_csv(path)
    np.testing.assert_array_equal(back.counts, t.counts)
    assert list(back.pipeline) == list(t.pipeline)
    assert len(back.valid()) == 5
    text = path.read_text().splitlines()
    text[2] = text[2].replace("black_circle", "purple_circle")
    path.write_text("\n".join(text))
    with pytest.raises(UserError, match=r"d.csv:3: .*unknown colour"):
        PairTable.read_csv(path)
    with pytest.raises(UserError, match="no such dataset"):
        PairTable.read_csv(tmp_path / "missing.csv")
