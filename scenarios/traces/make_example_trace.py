"""Write `example-trace.csv`, a small synthetic ShareGPT-like trace for `workload.trace`.

How it was generated: 200 requests, Poisson arrivals at 2 requests/s (exponential gaps of mean 0.5 s,
so the first request arrives after one gap rather than at t = 0), and prompt and output lengths drawn
independently from the truncated lognormals `sdsl_sim.workload.SHAREGPT_LIKE`, all from
`numpy.random.default_rng(SEED)`. Those parameters have the mean ShareGPT input and output lengths
that Kwon et al. report ("Efficient Memory Management for Large Language Model Serving with
PagedAttention", SOSP 2023, Figure 11(a): 161.31 and 337.99 tokens), the medians of the authors'
released length data (35 and 271), and a cap of 2048 tokens. The module docstring of
`sdsl_sim.workload`, section "ShareGPT-like lengths", gives the sources and says which parameters are
assumed. The trace is synthetic: no request comes from ShareGPT itself.

Columns: arrival_s (seconds, 6 decimals), prompt_tokens, output_tokens.

    python scenarios/traces/make_example_trace.py [OUT_PATH]   # default: example-trace.csv beside this file

`tests/test_workload.py` reruns `main` and checks that the output matches the committed CSV byte for byte.
"""

import sys
from pathlib import Path

import numpy as np

from sdsl_sim.workload import SHAREGPT_LIKE, parse_length

SEED = 20231116
REQUESTS = 200
RATE_PER_S = 2.0
DEFAULT_OUT = Path(__file__).with_name("example-trace.csv")


def make_rows(seed: int = SEED, requests: int = REQUESTS, rate_per_s: float = RATE_PER_S):
    """(arrival_s, prompt_tokens, output_tokens) arrays for a Poisson trace with ShareGPT-like lengths."""
    rng = np.random.default_rng(seed)
    arrival_s = np.cumsum(rng.exponential(1.0 / rate_per_s, size=requests))
    prompt = parse_length(SHAREGPT_LIKE["prompt_tokens"], "SHAREGPT_LIKE['prompt_tokens']").draw(rng, requests)
    output = parse_length(SHAREGPT_LIKE["output_tokens"], "SHAREGPT_LIKE['output_tokens']").draw(rng, requests)
    return arrival_s, prompt, output


def main(out_path=DEFAULT_OUT) -> Path:
    """Write the trace to `out_path` and return the path."""
    out_path = Path(out_path)
    lines = ["arrival_s,prompt_tokens,output_tokens"]
    lines += [f"{t:.6f},{p},{o}" for t, p, o in zip(*make_rows())]
    # newline="\n" so the bytes, and the reproduction test, do not depend on the platform
    with open(out_path, "w", encoding="ascii", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    return out_path


if __name__ == "__main__":
    print(main(*sys.argv[1:2]))
