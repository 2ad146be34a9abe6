"""URDF limit parsing and once-per-cause fault reporting."""

import math

import pytest

from vla_ros.control.urdf import UrdfError, parse_urdf_limits
from vla_ros.util.faults import FaultLog

URDF = """<?xml version="1.0"?>
<robot name="arm">
  <link name="base"/><link name="l1"/><link name="l2"/><link name="l3"/><link name="l4"/>
  <joint name="shoulder" type="revolute">
    <parent link="base"/><child link="l1"/>
    <limit lower="-1.5" upper="1.5" velocity="2.0" effort="10"/>
  </joint>
  <joint name="wrist" type="continuous">
    <parent link="l1"/><child link="l2"/><limit velocity="3.0" effort="1"/>
  </joint>
  <joint name="slide" type="prismatic">
    <parent link="l2"/><child link="l3"/><limit lower="0" upper="0.2" effort="5" velocity="0"/>
  </joint>
  <joint name="fixed_tool" type="fixed"><parent link="l3"/><child link="l4"/></joint>
</robot>"""


def test_parse_limits():
    lim = parse_urdf_limits(URDF)
    assert set(lim) == {"shoulder", "wrist", "slide"}
    assert (lim["shoulder"].lower, lim["shoulder"].upper, lim["shoulder"].velocity) == (
        -1.5,
        1.5,
        2.0,
    )
    assert lim["wrist"].lower == -math.inf and lim["wrist"].upper == math.inf
    assert lim["wrist"].velocity == 3.0
    assert lim["slide"].upper == 0.2 and lim["slide"].velocity == math.inf  # 0 = unset
    assert lim["wrist"].continuous and not lim["shoulder"].continuous and not lim["slide"].continuous


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("<robot", "not valid XML"),
        ("<sdf/>", "expected <robot>"),
        (
            '<robot name="r"><joint name="j" type="revolute"><limit lower="x"/></joint></robot>',
            "not a number",
        ),
        (
            '<robot name="r"><joint name="j" type="revolute"><limit lower="1" upper="0"/></joint></robot>',
            "lower 1.0 > upper 0.0",
        ),
    ],
)
def test_bad_urdf(text, msg):
    with pytest.raises(UrdfError, match=msg):
        parse_urdf_limits(text)


def test_fault_log_once_per_cause_then_summary():
    log = FaultLog(repeat_interval_ns=100)
    assert log.report("a", "A broke", 0) == "A broke"
    assert log.report("a", "A broke", 10) is None
    assert log.report("b", "B broke", 10) == "B broke"
    assert log.report("a", "A broke", 50) is None
    assert log.report("a", "A broke", 120) == "A broke (repeated 2 more times)"
    assert log.counts["a"] == 4 and log.total() == 5


def test_fault_that_goes_away_and_returns_is_logged_again():
    s = 1_000_000_000
    log = FaultLog(repeat_interval_ns=60 * s, recur_after_ns=s)
    assert log.report("no_live_chunk", "holding", 0) == "holding"
    log.settle({"no_live_chunk"}, s // 2)
    assert log.report("no_live_chunk", "holding", s // 2) is None  # still the same episode
    log.settle(set(), s)  # recovered at t=1 s
    log.settle(set(), 3 * s // 2)
    assert log.report("no_live_chunk", "holding", 3 * s // 2) is None  # away only 0.5 s: a flap
    log.settle(set(), 2 * s)
    assert log.report("no_live_chunk", "holding", 4 * s) == "holding"  # away 2 s: a new episode
    assert log.snapshot() == {"no_live_chunk": 4}
