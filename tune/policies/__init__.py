"""Placement and consolidation policies, shared by the live manager and the simulator.

>>> from tune.policies import policy_from_name, HostLoad, VMLoad
>>> plan = policy_from_name("thr-mmt-0.8").plan([
...     HostLoad("a", 100, 4096, [VMLoad("v1", 512, 50), VMLoad("v2", 256, 40)]),
...     HostLoad("b", 100, 4096, [VMLoad("v3", 512, 10)])])
>>> [(m.vm, m.source, m.destination) for m in plan.migrations]
[('v2', 'a', 'b')]
"""

from .base import ClusterState, HostLoad, Migration, Plan, VMLoad
from .consolidation import (REFERENCE_POLICIES, ConsolidationPolicy, named_policies, overload_detectors,
                            placements, policy_from_name, vm_selectors)
from .detectors import (InterQuartileRange, LocalRegression, LocalRegressionRobust, MedianAbsoluteDeviation,
                        OverloadDetector, StaticThreshold)
from .placement import PowerAwareBestFit, choose_destination, choose_destination_pabfd
from .selection import MaximumCorrelation, MinimumMigrationTime, MinimumUtilisation, RandomSelection, VmSelector

__all__ = ["ClusterState", "ConsolidationPolicy", "HostLoad", "InterQuartileRange", "LocalRegression",
           "LocalRegressionRobust", "MaximumCorrelation", "MedianAbsoluteDeviation", "Migration",
           "MinimumMigrationTime", "MinimumUtilisation", "OverloadDetector", "Plan", "PowerAwareBestFit",
           "REFERENCE_POLICIES", "RandomSelection", "StaticThreshold", "VMLoad", "VmSelector",
           "choose_destination", "choose_destination_pabfd", "named_policies", "overload_detectors",
           "placements", "policy_from_name", "vm_selectors"]
