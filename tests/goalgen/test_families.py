from collections import Counter

from quietrl.goalgen.families import F_SHARES, generate_families
from quietrl.goalgen.types import ALL_OBJECTS, ALL_PAIRS, OBJECT_FEATURES, TRAIN_OBJECTS


def test_object_tables():
    assert len(ALL_OBJECTS) == 24 and len(TRAIN_OBJECTS) == 12 and len(ALL_PAIRS) == 276
    assert OBJECT_FEATURES.shape == (24, 10) and (OBJECT_FEATURES.sum(1) == 2).all()
    for o in ALL_OBJECTS:
        assert type(o).from_id(o.id) == o


def test_family_sizes_and_uniqueness():
    ps = generate_families(0)
    counts = Counter(p.family for p in ps)
    assert counts == {"A": 12, "B": 24, "C": 48, "D": 16, "E": 12, "F": 48, "G": 12}
    assert len({p.name for p in ps}) == len(ps) >= 100
    assert generate_families(0) == ps  # deterministic


def test_family_contents():
    ps = generate_families(1)
    for p in ps:
        for s in p.stages:
            assert all(o in TRAIN_OBJECTS for o in s.objects)
    c = [p for p in ps if p.family == "C"]
    shared = Counter(p.stages[0].goals[0].shared_features(p.stages[1].goals[0]) for p in c)
    assert shared == {0: 24, 1: 24}
    names = {p.name for p in c}
    assert all(f"{p.stages[1].name}_then_{p.stages[0].name}" in names for p in c)  # both orders
    f = [p for p in ps if p.family == "F"]
    assert Counter(p.stages[0].fraction for p in f) == {s: 12 for s in F_SHARES}
    assert all(p.stages[0].goals[0].shared_features(p.stages[1].goals[0]) == 0 for p in f)
    assert all(sum(p.stage_updates(40)) == 80 for p in f)
    b = Counter(p.stages[0].goals[0].shared_features(p.stages[0].distractors[0])
                for p in ps if p.family == "B")
    assert b[0] > 0 and b[1] > 0
    assert all(p.n_stages == 3 for p in ps if p.family == "E")
    assert all(len(p.stages[0].goals) == 2 for p in ps if p.family == "G")
