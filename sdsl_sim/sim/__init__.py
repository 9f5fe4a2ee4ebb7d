"""The simpy simulator of speculative decoding.

`engine` (the replica: arrivals, scheduler, speculative iterations), `timing` (PassTimer: the one seam to
the cost model), `acceptance` (acceptance processes), `policies` (gamma policies), `records` (frozen row
schemas and the columnar logs), `run` (a scenario made runnable, with its baseline), `validate` (the
closed-form agreement grid).
"""

from .acceptance import BetaAcceptance, IidAcceptance, ProfileAcceptance
from .engine import Workload, simulate
from .policies import AdaptiveGamma, AutoGamma, FixedGamma
from .records import RequestRecord, SimResult, StepRecord
from .timing import PassTimer
