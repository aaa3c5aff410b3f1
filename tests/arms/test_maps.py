"""Map banks and parsing (MovingAI .map/.scen, plain text maps) with their one-line errors."""

import numpy as np
import pytest

from quietrl.arms.maps import (UNREACHABLE, bfs_distance, load_map_file, make_bank, parse_movingai_map,
                               parse_movingai_scen, parse_text_map)
from quietrl.core.errors import UserError

MAP = "type octile\nheight 3\nwidth 4\nmap\n..@.\n.T..\nG.S.\n"
SCEN = ("version 1\n"
        "0\tx.map\t4\t3\t0\t0\t3\t2\t5\n"
        "0\tx.map\t4\t3\t3\t0\t0\t2\t5\n"
        "0\tx.map\t4\t3\t1\t2\t3\t1\t3\n")


def test_movingai_map_cells():
    g = parse_movingai_map(MAP)
    assert g.shape == (3, 4)
    assert g[0, 2] and g[1, 1] and g.sum() == 2  # '@' and 'T' block; '.', 'G', 'S' free


def test_movingai_scen_first_rows_x_is_column():
    g = parse_movingai_map(MAP)
    starts, goals = parse_movingai_scen(SCEN, 2, g)
    assert starts.tolist() == [[0, 0], [0, 3]] and goals.tolist() == [[2, 3], [2, 0]]


@pytest.mark.parametrize("text,msg", [
    ("type octile\nheight 3\nwidth 4\n", "missing 'map'"),
    ("type octile\nheight 3\nwidth 4\n..@.\n", ":4: expected 'type', 'height', 'width' or 'map'"),
    ("type octile\nheight x\nwidth 4\nmap\n", "positive integer"),
    ("type octile\nheight 2\nwidth 4\nmap\n....\n", "height 2 but 1"),
    ("type octile\nheight 1\nwidth 4\nmap\n...\n", ":5: row has 3 cells"),
    ("type octile\nheight 1\nwidth 4\nmap\n..x.\n", ":5:3: unknown map character 'x'"),
    ("kind octile\nheight 1\nwidth 4\nmap\n....\n", ":1: expected"),
])
def test_movingai_map_errors(text, msg):
    with pytest.raises(UserError, match=msg):
        parse_movingai_map(text, name="m.map")


@pytest.mark.parametrize("text,n,msg", [
    ("version 2\n", 1, "version 1"),
    ("version 1\n0\tx.map\t4\t3\t0\t0\n", 1, "expected 9 fields"),
    ("version 1\n0\tx.map\t4\t3\t2\t0\t3\t2\t5\n", 1, "on an obstacle"),
    ("version 1\n0\tx.map\t4\t3\t9\t0\t3\t2\t5\n", 1, "off the map"),
    ("version 1\n0\tx.map\t5\t3\t0\t0\t3\t2\t5\n", 1, "5x3 map"),
    (SCEN, 5, "asked for 5 agents"),
])
def test_movingai_scen_errors(text, n, msg):
    with pytest.raises(UserError, match=msg):
        parse_movingai_scen(text, n, parse_movingai_map(MAP), name="s.scen")


def test_movingai_files_and_too_many_agents(tmp_path):
    (tmp_path / "a.map").write_text(MAP)
    (tmp_path / "a.scen").write_text(SCEN)
    bank = load_map_file(tmp_path / "a.map", 2, scen=tmp_path / "a.scen")
    assert bank.num_tasks == 1 and bank.num_agents == 2
    assert bank.dist[0, 0][tuple(bank.starts[0, 0])] == 5
    with pytest.raises(UserError, match="11 agents but only 10 free cells"):
        load_map_file(tmp_path / "a.map", 11, scen=tmp_path / "a.scen")
    with pytest.raises(UserError, match="no such file"):
        load_map_file(tmp_path / "missing.map", 1)


def test_text_map_markers_and_errors():
    bank = parse_text_map("; corridor\nA..b\nB..a\n")
    assert bank.starts[0].tolist() == [[0, 0], [1, 0]] and bank.goals[0].tolist() == [[1, 3], [0, 3]]
    with pytest.raises(UserError, match=":2: ragged row"):
        parse_text_map("....\n...\n", 1, name="t.map")
    with pytest.raises(UserError, match="marker 'B'"):
        parse_text_map("A.a\nB..\n")
    with pytest.raises(UserError, match="unknown map character"):
        parse_text_map("A.a?\n")
    with pytest.raises(UserError, match="5 agents but only 3"):
        parse_text_map("..#.\n.###\n", 5)
    with pytest.raises(UserError, match="unreachable"):
        parse_text_map("A#a\n")


def test_generated_bank_is_solvable():
    bank = make_bank(12, 8, 4, density=0.3, seed=3, layouts=("random", "bottleneck", "rooms", "shelves"))
    assert bank.obstacles.shape == (12, 8, 8)
    for b in range(12):
        for i in range(4):
            assert not bank.obstacles[b][tuple(bank.starts[b, i])]
            assert bank.dist[b, i][tuple(bank.starts[b, i])] < UNREACHABLE
        assert len({tuple(p) for p in bank.starts[b]}) == 4


def test_bfs_distance():
    g = np.zeros((3, 3), bool)
    g[1, :2] = True
    d = bfs_distance(g, (0, 0))
    assert d[2, 0] == 6 and d[1, 0] == UNREACHABLE
