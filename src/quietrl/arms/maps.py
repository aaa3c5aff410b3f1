"""Grid maps and task banks for the MAPF environment (numpy, offline).

A *task* is one map with a start and a goal for each of n agents. Tasks are pre-generated into a
:class:`~quietrl.arms.types.TaskBank` (stacked arrays of equal shape) that the JAX env indexes with a
traced task number, so one compiled program serves every map of a bank.

Sources of maps:
- random obstacles at a density, and structured layouts (bottleneck, rooms, shelf aisles);
- MovingAI benchmark files: ``.map`` (``type``/``height``/``width``/``map`` header; ``.``, ``G``, ``S``
  free; ``@``, ``O``, ``T``, ``W`` blocked) and ``.scen`` version 1 (first n rows; x = column);
- our plain text format: ``.`` free, ``#`` obstacle, ``;`` comment lines, an uppercase letter marks an
  agent's start and the matching lowercase letter its goal.

Every malformed input raises :class:`UserError` with ``file:line`` and what is wrong.
"""

from __future__ import annotations

import collections
import os
from pathlib import Path

import numpy as np

from quietrl.arms.types import TaskBank
from quietrl.core.errors import UserError

UNREACHABLE = 10_000  # BFS distance of a cell that cannot reach the goal; larger than any real path
LAYOUTS = ("random", "bottleneck", "rooms", "shelves")


# --------------------------------------------------------------------------------------------------------
# BFS and connectivity
# --------------------------------------------------------------------------------------------------------
def bfs_distance(obstacles: np.ndarray, source: tuple[int, int]) -> np.ndarray:
    """4-connected BFS distances from ``source`` on a bool grid (R, C); blocked/unreached = UNREACHABLE."""
    rows, cols = obstacles.shape
    dist = np.full((rows, cols), UNREACHABLE, dtype=np.int32)
    r0, c0 = source
    if obstacles[r0, c0]:
        return dist
    dist[r0, c0] = 0
    queue = collections.deque([(r0, c0)])
    while queue:
        r, c = queue.popleft()
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            rr, cc = r + dr, c + dc
            if 0 <= rr < rows and 0 <= cc < cols and not obstacles[rr, cc] and dist[rr, cc] == UNREACHABLE:
                dist[rr, cc] = dist[r, c] + 1
                queue.append((rr, cc))
    return dist


def largest_component(obstacles: np.ndarray) -> np.ndarray:
    """Bool mask (R, C) of the largest 4-connected free component."""
    seen = np.zeros(obstacles.shape, dtype=bool)
    best = np.zeros(obstacles.shape, dtype=bool)
    for r, c in zip(*np.nonzero(~obstacles)):
        if seen[r, c]:
            continue
        comp = bfs_distance(obstacles, (int(r), int(c))) < UNREACHABLE
        seen |= comp
        if comp.sum() > best.sum():
            best = comp
    return best


# --------------------------------------------------------------------------------------------------------
# Generated layouts
# --------------------------------------------------------------------------------------------------------
def make_layout(layout: str, size: int, density: float, rng: np.random.Generator) -> np.ndarray:
    """Obstacle grid (size, size) of a named layout; ``density`` applies to ``random`` (and sprinkles)."""
    g = np.zeros((size, size), dtype=bool)
    if layout == "random":
        g = rng.random((size, size)) < density
    elif layout == "bottleneck":
        mid = size // 2
        g[:, mid] = True
        gap = rng.integers(0, size)
        g[gap, mid] = False
    elif layout == "rooms":
        mid = size // 2
        g[mid, :] = True
        g[:, mid] = True
        # one door per wall segment, so all four rooms connect
        for lo, hi in ((0, mid), (mid + 1, size)):
            if hi > lo:
                g[mid, rng.integers(lo, hi)] = False
                g[rng.integers(lo, hi), mid] = False
    elif layout == "shelves":
        for c in range(1, size - 1, 2):
            g[1:size - 1, c] = True
        # cross aisle through the middle
        g[size // 2, :] = False
    else:
        raise UserError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    return g


def sample_task(obstacles: np.ndarray, num_agents: int, rng: np.random.Generator,
                min_dist: int = 1) -> tuple[np.ndarray, np.ndarray] | None:
    """Distinct starts and distinct goals (n, 2) in the largest component, start != own goal; None if too few cells."""
    comp = largest_component(obstacles)
    cells = np.argwhere(comp)
    if len(cells) < num_agents + 1:
        return None
    for _ in range(20):
        starts = cells[rng.choice(len(cells), num_agents, replace=False)]
        goals = cells[rng.choice(len(cells), num_agents, replace=False)]
        d = np.abs(starts - goals).sum(1)
        if (d >= min_dist).all():
            return starts.astype(np.int32), goals.astype(np.int32)
    return None


def make_bank(num_tasks: int, size: int, num_agents: int, density: float = 0.2, seed: int = 0,
              layouts: tuple[str, ...] = ("random",)) -> TaskBank:
    """Generate ``num_tasks`` tasks cycling through ``layouts``; each start reaches its goal (BFS)."""
    rng = np.random.default_rng(seed)
    obs, starts, goals = [], [], []
    tries = 0
    while len(obs) < num_tasks:
        tries += 1
        if tries > 50 * num_tasks + 100:
            raise UserError(f"cannot place {num_agents} agents on {size}x{size} maps at density {density}")
        layout = layouts[len(obs) % len(layouts)]
        g = make_layout(layout, size, density, rng)
        task = sample_task(g, num_agents, rng)
        if task is None:
            continue
        obs.append(g)
        starts.append(task[0])
        goals.append(task[1])
    return bank_from_tasks(np.stack(obs), np.stack(starts), np.stack(goals))


def bank_from_tasks(obstacles: np.ndarray, starts: np.ndarray, goals: np.ndarray) -> TaskBank:
    """Stack tasks (B, R, C), (B, n, 2), (B, n, 2) into a bank with BFS distance fields to each goal."""
    B, n = starts.shape[:2]
    dist = np.zeros((B, n) + obstacles.shape[1:], dtype=np.int32)
    dmax = np.ones((B,), dtype=np.float32)
    for b in range(B):
        finite = []
        for i in range(n):
            dist[b, i] = bfs_distance(obstacles[b], tuple(goals[b, i]))
            if dist[b, i][tuple(starts[b, i])] >= UNREACHABLE:
                raise UserError(f"task {b}: agent {i}'s goal {tuple(goals[b, i])} is unreachable from "
                                f"its start {tuple(starts[b, i])}")
            finite.append(dist[b, i][dist[b, i] < UNREACHABLE].max())
        dmax[b] = max(1, max(finite))
    return TaskBank(obstacles=obstacles.astype(bool), starts=starts.astype(np.int32),
                    goals=goals.astype(np.int32), dist=dist, dmax=dmax)


def concat_banks(*banks: TaskBank) -> TaskBank:
    """Concatenate banks of equal map shape and agent count (e.g. training then held-out tasks)."""
    shapes = {(b.obstacles.shape[1:], b.starts.shape[1]) for b in banks}
    if len(shapes) != 1:
        raise UserError(f"cannot concatenate task banks of different map shapes / agent counts: {shapes}")
    return TaskBank(*(np.concatenate([getattr(b, f) for b in banks]) for f in TaskBank._fields))


# --------------------------------------------------------------------------------------------------------
# MovingAI format
# --------------------------------------------------------------------------------------------------------
MOVINGAI_FREE = set(".GS")
MOVINGAI_BLOCKED = set("@OTW")


def _read_lines(path: str | os.PathLike) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read ({e.__class__.__name__})") from None


def parse_movingai_map(text: str, name: str = "<map>") -> np.ndarray:
    """Parse a MovingAI ``.map`` text into an obstacle grid (height, width) of bool."""
    lines = text.splitlines()
    header: dict[str, str] = {}
    i = 0
    while i < len(lines) and lines[i].strip() != "map":
        line = lines[i].strip()
        if line:
            parts = line.split()
            if len(parts) != 2 or parts[0] not in ("type", "height", "width"):
                raise UserError(f"{name}:{i + 1}: expected 'type', 'height', 'width' or 'map' header, got {line!r}")
            header[parts[0]] = parts[1]
        i += 1
    if i == len(lines):
        raise UserError(f"{name}: missing 'map' line after the header")
    for key in ("height", "width"):
        if key not in header:
            raise UserError(f"{name}: header lacks '{key}'")
        if not header[key].isdigit() or int(header[key]) < 1:
            raise UserError(f"{name}: header '{key}' must be a positive integer, got {header[key]!r}")
    h, w = int(header["height"]), int(header["width"])
    rows = lines[i + 1:]
    while rows and not rows[-1].strip():
        rows.pop()
    if len(rows) != h:
        raise UserError(f"{name}: header says height {h} but {len(rows)} map rows follow")
    grid = np.zeros((h, w), dtype=bool)
    for r, row in enumerate(rows):
        lineno = i + 2 + r
        row = row.rstrip("\r")
        if len(row) != w:
            raise UserError(f"{name}:{lineno}: row has {len(row)} cells, header width is {w}")
        for c, ch in enumerate(row):
            if ch in MOVINGAI_BLOCKED:
                grid[r, c] = True
            elif ch not in MOVINGAI_FREE:
                raise UserError(f"{name}:{lineno}:{c + 1}: unknown map character {ch!r}")
    return grid


def parse_movingai_scen(text: str, num_agents: int, grid: np.ndarray | None = None,
                        name: str = "<scen>") -> tuple[np.ndarray, np.ndarray]:
    """Parse a MovingAI ``.scen`` (version 1): starts, goals (num_agents, 2) as (row, col) from the first rows.

    Each row: bucket, map, width, height, start_x, start_y, goal_x, goal_y, optimal length (x = column).
    """
    lines = text.splitlines()
    if not lines or lines[0].split() != ["version", "1"]:
        raise UserError(f"{name}:1: expected 'version 1' as the first line")
    starts, goals = [], []
    for k, line in enumerate(lines[1:], start=2):
        if len(starts) == num_agents:
            break
        if not line.strip():
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) != 9:
            raise UserError(f"{name}:{k}: expected 9 fields (bucket map width height sx sy gx gy len), got {len(parts)}")
        try:
            w, h, sx, sy, gx, gy = (int(p) for p in parts[2:8])
        except ValueError:
            raise UserError(f"{name}:{k}: width, height and coordinates must be integers") from None
        if grid is not None:
            if (h, w) != grid.shape:
                raise UserError(f"{name}:{k}: scenario is for a {w}x{h} map, the map is {grid.shape[1]}x{grid.shape[0]}")
            for what, x, y in (("start", sx, sy), ("goal", gx, gy)):
                if not (0 <= x < w and 0 <= y < h):
                    raise UserError(f"{name}:{k}: {what} ({x}, {y}) is off the map")
                if grid[y, x]:
                    raise UserError(f"{name}:{k}: {what} ({x}, {y}) is on an obstacle")
        starts.append((sy, sx))
        goals.append((gy, gx))
    if len(starts) < num_agents:
        raise UserError(f"{name}: asked for {num_agents} agents but the scenario has {len(starts)} rows")
    starts_a, goals_a = np.array(starts, np.int32), np.array(goals, np.int32)
    for what, arr in (("start", starts_a), ("goal", goals_a)):
        if len({tuple(p) for p in arr}) < len(arr):
            raise UserError(f"{name}: two agents share a {what} cell among the first {num_agents} rows")
    return starts_a, goals_a


def load_movingai(map_path: str | os.PathLike, scen_path: str | os.PathLike, num_agents: int) -> TaskBank:
    """One-task bank from a MovingAI ``.map`` and the first ``num_agents`` rows of its ``.scen``."""
    grid = parse_movingai_map("\n".join(_read_lines(map_path)), name=str(map_path))
    free = int((~grid).sum())
    if num_agents > free:
        raise UserError(f"{map_path}: {num_agents} agents but only {free} free cells")
    starts, goals = parse_movingai_scen("\n".join(_read_lines(scen_path)), num_agents, grid, name=str(scen_path))
    return bank_from_tasks(grid[None], starts[None], goals[None])


# --------------------------------------------------------------------------------------------------------
# Plain text format
# --------------------------------------------------------------------------------------------------------
def parse_text_map(text: str, num_agents: int | None = None, seed: int = 0,
                   name: str = "<map>") -> TaskBank:
    """Parse our plain map format into a one-task bank.

    Agents come from letter markers (``A``..``Z`` start, ``a``..``z`` goal) or, without markers, are placed
    at random (``seed``) in one connected component; then ``num_agents`` is required.
    """
    rows, linenos = [], []
    for k, line in enumerate(text.splitlines(), start=1):
        if line.strip().startswith(";") or not line.strip():
            continue
        rows.append(line.rstrip())
        linenos.append(k)
    if not rows:
        raise UserError(f"{name}: no map rows")
    width = len(rows[0])
    grid = np.zeros((len(rows), width), dtype=bool)
    starts: dict[str, tuple[int, int]] = {}
    goals: dict[str, tuple[int, int]] = {}
    for r, (row, k) in enumerate(zip(rows, linenos)):
        if len(row) != width:
            raise UserError(f"{name}:{k}: ragged row of {len(row)} cells, the first row has {width}")
        for c, ch in enumerate(row):
            if ch == "#":
                grid[r, c] = True
            elif ch == ".":
                pass
            elif ch.isalpha() and ch.isascii():
                (starts if ch.isupper() else goals)[ch.upper()] = (r, c)
            else:
                raise UserError(f"{name}:{k}:{c + 1}: unknown map character {ch!r}")
    free = int((~grid).sum())
    if starts or goals:
        unmatched = sorted(set(starts) ^ set(goals))
        if unmatched:
            raise UserError(f"{name}: marker {unmatched[0]!r} has a start or a goal but not both")
        keys = sorted(starts)
        if num_agents is not None and num_agents != len(keys):
            raise UserError(f"{name}: map marks {len(keys)} agents but {num_agents} were asked for")
        s = np.array([starts[k] for k in keys], np.int32)
        g = np.array([goals[k] for k in keys], np.int32)
        return bank_from_tasks(grid[None], s[None], g[None])
    if num_agents is None:
        raise UserError(f"{name}: no agent markers; give the number of agents")
    comp = largest_component(grid)
    if num_agents + 1 > comp.sum() or num_agents > free:
        raise UserError(f"{name}: {num_agents} agents but only {int(comp.sum())} connected free cells")
    task = sample_task(grid, num_agents, np.random.default_rng(seed))
    if task is None:
        raise UserError(f"{name}: cannot place {num_agents} agents")
    return bank_from_tasks(grid[None], task[0][None], task[1][None])


def load_map_file(path: str | os.PathLike, num_agents: int | None = None, seed: int = 0,
                  scen: str | os.PathLike | None = None) -> TaskBank:
    """Load a ``.map`` (MovingAI, with ``scen``) or a plain text map into a one-task bank."""
    text = "\n".join(_read_lines(path))
    if text.lstrip().startswith("type") or scen is not None:
        if scen is None:
            raise UserError(f"{path}: a MovingAI map needs a .scen file for starts and goals")
        if num_agents is None:
            raise UserError(f"{path}: give the number of agents to read from {scen}")
        return load_movingai(path, scen, num_agents)
    return parse_text_map(text, num_agents, seed, name=str(path))
