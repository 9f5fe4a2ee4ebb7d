"""The simpy simulator of speculative decoding serving.

`setup` (a scenario made runnable), `arrivals` (static, poisson, closed, trace), `engine` (the replica:
the scheduler's rounds, decode blocks and mixed steps, records), `timing` (StepTimer: step costs for the
engine, from `sdsl_sim.step`), `acceptance` (acceptance processes), `policies` (gamma policies),
`records` (row schemas and the columnar logs), `run` (a run with its baseline; evaluate), `validate`
(the closed-form agreement grid).
"""

from .acceptance import BetaAcceptance, IidAcceptance, ProfileAcceptance
from .engine import Scheduler, Workload, simulate
from .policies import AdaptiveGamma, AutoGamma, FixedGamma
from .records import RequestRecord, SimResult, StepRecord
from .timing import StepTimer
