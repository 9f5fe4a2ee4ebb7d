"""sdsl-sim: speculative decoding on real GPUs, checked against the SDSL scaling laws.

Layout: `analytic/` holds the pure mathematics of the SDSL paper and Leviathan et al.;
`hardware`, `models` and `costs` the roofline pass-latency model; `sim/` the simpy
simulator; `cli/` the thin command line over all of them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sdsl-sim")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
