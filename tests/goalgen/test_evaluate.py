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


def _fixed_policy(env, choose):
    """apply_fn(params, codes, tiles) of a hand-written policy: choose(agent (n, 2), goal (n, 2)) -> actions.
    Reads the agent's and the first goal object's cells from the cell codes."""
    import jax.numpy as jnp
    g = env.grid

    def apply(params, codes, tiles):
        codes = codes.astype(jnp.int32)
        agent_cell = jnp.argmax((codes // 25) % 2 == 1, -1)
        goal_cell = jnp.argmax((codes % 25) == 0, -1)           # black_circle (id 0) is the goal
        rc = lambda c: jnp.stack([c // g, c % g], -1)           # noqa: E731
        a = choose(rc(agent_cell), rc(goal_cell))
        return 50.0 * jax.nn.one_hot(a, 4), jnp.zeros(codes.shape[:-1])
    return apply


def test_task_evaluator_known_answers():
    import jax.numpy as jnp

    from quietrl.goalgen.env import stack_params
    from quietrl.goalgen.evaluate import make_task_evaluator
    env = GoalGridEnv(grid=3, obs_mode="symbolic", max_steps=6)
    task = stack_params([env.params_for(goals=(0,), distractors=(7,))] * 2)
    params = jnp.zeros((2, 1))

    def oracle(agent, goal):
        d = goal - agent      # move along the row first, then the column: 0 up, 1 right, 2 down, 3 left
        return jnp.where(d[:, 0] < 0, 0, jnp.where(d[:, 0] > 0, 2, jnp.where(d[:, 1] > 0, 1, 3)))

    ev = make_task_evaluator(env, _fixed_policy(env, oracle), 200)
    assert np.allclose(ev(params, task, jax.random.PRNGKey(0)), 1.0)
    # Always "up": success iff the goal lies above the agent in its column. Agent and goal are a uniform
    # pair of distinct cells of the 3x3 grid, so P = (0 + 1 + 2) / 3 / 8 = 1/8.
    up = make_task_evaluator(env, _fixed_policy(env, lambda a, g: jnp.zeros(a.shape[0], jnp.int32)), 4000)
    got = up(params, task, jax.random.PRNGKey(1))
    assert got.shape == (2,) and np.all(np.abs(got - 0.125) < 0.02)
