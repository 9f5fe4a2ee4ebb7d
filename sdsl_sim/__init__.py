"""sdsl-sim: speculative decoding on real GPUs, checked against the SDSL scaling laws.

The public API (`__all__`; each name is loaded on first use, so that `sdsl-sim --version` starts fast):
    simulate, run_scenario       a target/draft pair, or a scenario, simulated against plain decoding -> RunResult
    pass_latency                 one forward pass on a GPU profile -> PassLatency
    hardware_n_star              the TPOT-optimal draft size on a GPU beside the analytic N* -> DraftSize
    load_scenario, scenario_from_dict, load_sweep, run_sweep   scenario and sweep files
    load_model, load_gpu         catalog entries, synthetic-<size>, config.json / .toml paths
    optimal_gamma, optimal_speedup, leviathan_speedup, expected_tokens_per_iteration,
    throughput_tokens_per_flop, optimal_throughput_tokens_per_flop, best_integer_gamma,
    alpha_from_sizes, perplexity, n_star   the analytic model (SDSL laws, Leviathan, Lambert W, N*)
    InputError                   what bad input raises (the CLI's one-line message)

    >>> import sdsl_sim
    >>> r = sdsl_sim.simulate("llama-3.1-8b", "llama-3.2-1b", "h100-sxm", batch=4, output_tokens=256)
    >>> r.speedup_vs_autoregressive, r.to_dict()["p99_itl_ms"]

Layout: `analytic/` holds the pure mathematics of the SDSL paper and Leviathan et al.; `hardware`,
`models` and `costs` the roofline pass-latency model; `sim/` the simpy simulator; `api` the typed
functions above; `cli/` the command line over them.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sdsl-sim")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

_HOMES = {
    "api": ("simulate", "run_scenario", "pass_latency", "hardware_n_star", "pair_scenario", "RunResult",
            "PassLatency", "DraftSize"),
    "scenario": ("load_scenario", "scenario_from_dict", "Scenario"),
    "sweep": ("load_sweep", "run_sweep"),
    "models": ("load_model",),
    "hardware": ("load_gpu",),
    "analytic": ("optimal_gamma", "optimal_speedup", "leviathan_speedup", "expected_tokens_per_iteration",
                 "throughput_tokens_per_flop", "optimal_throughput_tokens_per_flop", "best_integer_gamma",
                 "alpha_from_sizes", "perplexity", "n_star"),
    "errors": ("InputError",),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}
__all__ = [*_HOME_OF, "__version__"]


def __getattr__(name: str):
    if name not in _HOME_OF:
        raise AttributeError(f"module 'sdsl_sim' has no attribute {name!r}")
    value = getattr(import_module(f".{_HOME_OF[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *__all__})
