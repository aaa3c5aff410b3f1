import pytest

from quietrl.core.errors import UserError
from quietrl.goalgen.grammar import parse_object, parse_pipeline
from quietrl.goalgen.types import GameObject


def test_parses_all_constructs():
    p = parse_pipeline("red_cross_or_blue_hollow-diamond_with_green_ring_distractor@0.25_then_black_plus")
    assert p.n_stages == 2
    s1, s2 = p.stages
    assert s1.goals == (GameObject("red", "cross"), GameObject("blue", "hollow-diamond"))
    assert s1.distractors == (GameObject("green", "ring"),)
    assert s1.fraction == 0.25 and s2.fraction is None
    assert s2.goals == (GameObject("black", "plus"),)
    assert p.has_distractor and p.is_multi_goal


def test_name_round_trip():
    for text in ["red_cross", "blue_diamond_then_red_cross", "red_cross_with_blue_plus_distractor",
                 "black_ring@0.1_then_red_plus", "red_cross_then_blue_plus_then_black_ring",
                 "red_cross_with_blue_plus_distractor_with_black_ring_distractor"]:
        assert parse_pipeline(text).name == text


def test_stage_updates_follow_fractions():
    assert parse_pipeline("red_cross@0.1_then_blue_plus").stage_updates(40) == (8, 72)
    assert parse_pipeline("red_cross_then_blue_plus").stage_updates(40) == (40, 40)
    assert parse_pipeline("red_cross@0.15_then_blue_plus").stage_updates(40) == (12, 68)


@pytest.mark.parametrize("text,fragment,column", [
    ("purple_cross", "unknown colour 'purple'", 1),
    ("red_star", "unknown shape 'star'", 5),
    ("red_cross_then_blue_pluss", "unknown shape 'pluss'", 21),
    ("red_cross_with_blue_plus", "expected '_distractor'", 25),
    ("red_cross_and_blue_plus", "unexpected text", 10),
    ("red_cross@1.5", "strictly between 0 and 1", 11),
    ("red_cross@x", "expected a fraction", 11),
    ("red_cross_or_red_cross", "appears twice", 1),
    ("red_cross_then_", "expected a colour", 16),
])
def test_errors_name_position(text, fragment, column):
    with pytest.raises(UserError) as e:
        parse_pipeline(text)
    msg = str(e.value)
    assert fragment in msg and f"column {column}" in msg and "\n" not in msg


def test_empty_and_fraction_sum_errors():
    with pytest.raises(UserError, match="empty"):
        parse_pipeline("  ")
    with pytest.raises(UserError, match="sum"):
        parse_pipeline("red_cross@0.7_then_blue_plus@0.6")


def test_parse_object():
    assert parse_object("green_hollow-diamond").id == GameObject("green", "hollow-diamond").id
    with pytest.raises(UserError, match="column 1"):
        parse_object("grey_circle")
