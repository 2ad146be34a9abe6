"""Small helpers shared across vla_ros areas, each with one home.

* :mod:`vla_ros.util.ns` - integer-nanosecond time (message stamps, durations, parameters in seconds);
* :mod:`vla_ros.util.stats` - percentiles and latency summaries in milliseconds (the only ones);
* :mod:`vla_ros.util.ticker` - the one fixed-period deadline schedule (:class:`Ticker`);
* :mod:`vla_ros.util.faults` - once-per-cause fault reporting (:class:`FaultLog`, :class:`Fault`).

Pure Python + numpy: no ROS, no torch.
"""

from vla_ros.util.faults import Fault, FaultLog
from vla_ros.util.ns import NS_PER_S, msg_to_ns, ns_to_stamp, seconds_to_ns, stamp_to_ns
from vla_ros.util.stats import latency_summary_ms, percentiles_ms
from vla_ros.util.ticker import Ticker

__all__ = [
    "NS_PER_S",
    "Fault",
    "FaultLog",
    "Ticker",
    "latency_summary_ms",
    "msg_to_ns",
    "ns_to_stamp",
    "percentiles_ms",
    "seconds_to_ns",
    "stamp_to_ns",
]
