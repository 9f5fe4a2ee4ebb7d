"""`sdsl-sim analytic ...`: the closed-form SDSL model with no hardware (sdsl_sim.analytic).

The library is imported inside the handlers: it loads scipy, which every other command would pay for
while the parser is built."""

from ..errors import InputError
from ..units import parse_count
from . import add_json_flag, add_train_tokens, alpha_type, arg_type, command, count_type, gamma_type, parse_list


def _targets(text: str) -> list[float]:
    return parse_list(text, lambda part: parse_count(part, "target size"))


def _check_pair(target_params: float, draft_params: float) -> None:
    if draft_params >= target_params:
        raise InputError(
            f"--draft-params {draft_params:g} must be smaller than --target-params {target_params:g}"
        )


def throughput(args) -> dict:
    from .. import analytic

    _check_pair(args.target_params, args.draft_params)
    c = args.draft_params / args.target_params
    gamma_opt = float(analytic.optimal_gamma(args.alpha, c))
    if args.gamma is None:
        gamma = gamma_opt
        tokens_per_flop = float(analytic.optimal_throughput_tokens_per_flop(args.alpha, args.target_params, args.draft_params))
    else:
        gamma = args.gamma
        tokens_per_flop = float(analytic.throughput_tokens_per_flop(args.alpha, gamma, args.target_params, args.draft_params))
    return {
        "alpha": args.alpha,
        "target_params": args.target_params,
        "draft_params": args.draft_params,
        "gamma": gamma,
        "gamma_opt": gamma_opt,
        "best_integer_gamma": analytic.best_integer_gamma(args.alpha, c),
        "speculation_helps": bool(analytic.speculation_helps(args.alpha, c)),
        "expected_tokens_per_iteration": float(analytic.expected_tokens_per_iteration(args.alpha, gamma)),
        "throughput_tokens_per_flop": tokens_per_flop,
        "speedup_vs_autoregressive": tokens_per_flop * 2 * args.target_params,
    }


def nstar(args) -> dict:
    from .. import analytic

    result = analytic.n_star(args.target_params, args.train_tokens)
    return {
        "target_params": result.target_params,
        "train_tokens": result.train_tokens,
        "n_star_params": result.n_star_params,
        "n_star_linear": float(analytic.n_star_linear(args.target_params)),
        "alpha_at_n_star": result.alpha_at_n_star,
        "gamma_opt_at_n_star": result.gamma_opt_at_n_star,
        "speedup_at_n_star": result.speedup_at_n_star,
        "draft_perplexity": result.draft_perplexity,
        "target_perplexity": result.target_perplexity,
    }


def fit_nstar(args) -> dict:
    from .. import analytic

    fit = analytic.fit_n_star(args.train_tokens, args.targets or analytic.PAPER_TARGET_PARAMS)
    return {
        "train_tokens": args.train_tokens,
        "mu": fit.mu,
        "m0": fit.m0_params,
        "r2": fit.r2,
        "points": [
            {"target_params": m, "n_star_params": n} for m, n in zip(fit.target_params, fit.n_star_params)
        ],
    }


def register(subparsers) -> None:
    parser = command(subparsers, "analytic", "closed-form SDSL model (no hardware)",
                     "The paper's closed form, where a pass costs time in proportion to parameters: the "
                     "Lambert-W optimal lookahead and throughput (throughput), the optimal draft size N* "
                     "(nstar) and its linear fit over target sizes (fit-nstar).",
                     ("sdsl-sim analytic throughput --alpha 0.8 --target-params 70B --draft-params 277M",
                      "sdsl-sim analytic nstar --target-params 70B --train-tokens 15T --json"))
    commands = parser.add_subparsers(dest="analytic_command", required=True, metavar="COMMAND")

    p = command(commands, "throughput", "Lambert-W optimum or Leviathan's speedup at a gamma",
                "Throughput per FLOP and speedup at the Lambert-W optimal lookahead (or Leviathan's speedup "
                "at --gamma) for acceptance alpha and a target of M and draft of N parameters.",
                ("sdsl-sim analytic throughput --alpha 0.8 --target-params 70B --draft-params 277M",
                 "sdsl-sim analytic throughput --alpha 0.6 --target-params 7e10 --draft-params 1B --gamma 4 --json"))
    p.add_argument("--alpha", type=alpha_type, required=True, help="acceptance rate in (0, 1)")
    p.add_argument("--target-params", type=count_type("size"), required=True, metavar="M")
    p.add_argument("--draft-params", type=count_type("size"), required=True, metavar="N")
    p.add_argument("--gamma", type=gamma_type(), help="integer lookahead; default: the real-valued optimum")
    add_json_flag(p)
    p.set_defaults(handler=throughput)

    p = command(commands, "nstar", "throughput-optimal draft size for a target",
                "The draft size N* that maximises throughput per FLOP for a target of M parameters, both "
                "trained on D tokens, with alpha from the SDSL law.",
                ("sdsl-sim analytic nstar --target-params 70B",
                 "sdsl-sim analytic nstar --target-params 405B --train-tokens 15T --json"))
    p.add_argument("--target-params", type=count_type("size"), required=True, metavar="M")
    add_train_tokens(p)
    add_json_flag(p)
    p.set_defaults(handler=nstar)

    p = command(commands, "fit-nstar", "fit N* = mu M + M0 over target sizes",
                "Fit the paper's linear law N* = mu M + M0 to the analytic N* of a list of target sizes.",
                ("sdsl-sim analytic fit-nstar", "sdsl-sim analytic fit-nstar --targets 7B,13B,70B --train-tokens 2T --json"))
    add_train_tokens(p)
    p.add_argument(
        "--targets",
        type=arg_type(_targets),
        help="comma-separated target sizes (default: the paper's 13)",
    )
    add_json_flag(p)
    p.set_defaults(handler=fit_nstar)
