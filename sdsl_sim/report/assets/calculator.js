// The sdsl-sim calculator: the SDSL closed form in the browser, ported line by line from
// sdsl_sim/analytic (optimum.py, leviathan.py, laws.py, nstar.py) so that it gives the Python values.
// Constants come from the page (#sdsl-constants), written from the Python model.
// Inputs come from the URL query (?alpha=0.7&target_params=7e10&draft_params=2.77e8&gamma=4&train_tokens=1e13)
// and the sliders; every input and result is also shown as an element with data-key and data-value.
(function () {
  "use strict";
  const K = JSON.parse(document.getElementById("sdsl-constants").textContent);
  const INPUTS = ["alpha", "target_params", "draft_params", "gamma", "train_tokens"];
  const SUFFIX = { K: 1e3, M: 1e6, B: 1e9, G: 1e9, T: 1e12 };

  // ------------------------------------------------------------ the model (sdsl_sim/analytic)

  // g(t) = t - ln(1 + t) without cancellation for small t (optimum._t_minus_log1p).
  function tMinusLog1p(t) {
    if (t < 1e-3) return t * t * (0.5 - t * (1 / 3 - t * (0.25 - t * (0.2 - t / 6))));
    return t - Math.log1p(t);
  }

  // t = v - 1 with v = -W_{-1}(-exp(-(1 + delta))), in log space (optimum.neg_lambertw_m1_of_neg_exp):
  // v - ln v = 1 + delta, Newton from the branch-point series or the asymptotic start.
  function negLambertWm1OfNegExp(delta) {
    const u = 1 + delta;
    let t = delta < 2 ? Math.sqrt(2 * delta) + (2 * delta) / 3 : u + Math.log(u + Math.log(u)) - 1;
    t = Math.max(t, 1e-300);
    for (let i = 0; i < 4; i++) t = t - ((t - Math.log1p(t) - delta) * (1 + t)) / t;
    return t - ((tMinusLog1p(t) - delta) * (1 + t)) / t;
  }

  function lambertSolution(alpha, c) {
    const logInvAlpha = -Math.log(alpha);
    const delta = (1 / c - 1) * logInvAlpha;
    return [negLambertWm1OfNegExp(delta), logInvAlpha];
  }

  function optimalGamma(alpha, c) {
    const [t, logInvAlpha] = lambertSolution(alpha, c);
    return Math.max(Math.log1p(t) / logInvAlpha - 1, 0);
  }

  // S* = (1/c) ln(1/alpha) / ((1 - alpha) v); exactly 1 where no lookahead helps.
  function optimalSpeedup(alpha, c) {
    const [t, logInvAlpha] = lambertSolution(alpha, c);
    const s = logInvAlpha / (c * (1 - alpha) * (1 + t));
    return Math.log1p(t) / logInvAlpha - 1 > 0 ? s : 1;
  }

  // Leviathan eq. 1 and Theorem 3.8.
  function expectedTokens(alpha, gamma) { return -Math.expm1((gamma + 1) * Math.log(alpha)) / (1 - alpha); }
  function leviathanSpeedup(alpha, gamma, c) { return expectedTokens(alpha, gamma) / (gamma * c + 1); }

  function bestIntegerGamma(alpha, c) {
    const g = optimalGamma(alpha, c), lo = Math.floor(g), hi = Math.ceil(g);
    return leviathanSpeedup(alpha, hi, c) > leviathanSpeedup(alpha, lo, c) ? hi : lo;
  }

  function perplexity(params, tokens) {
    const L = K.perplexity_law;
    return Math.exp(L.e + L.a / params ** L.alpha + L.b / tokens ** L.beta);
  }

  function alphaFromPerplexity(draftPpl, targetPpl) {
    const L = K.alpha_law;
    return L.a * draftPpl + L.b * targetPpl + L.c;
  }

  // S*(N) for the law's alpha, 0 where that alpha leaves (0, 1) (nstar._speedup_of_draft).
  function speedupOfDraft(logDraft, target, targetPpl, tokens) {
    const draft = Math.exp(logDraft);
    const alpha = alphaFromPerplexity(perplexity(draft, tokens), targetPpl);
    return alpha > 0 && alpha < 1 ? optimalSpeedup(alpha, draft / target) : 0;
  }

  // scipy.optimize.minimize_scalar(method="bounded"): Brent's bounded search, ported step for step
  // (scipy/optimize/_optimize.py, _minimize_scalar_bounded) so that it stops where scipy stops.
  function minimizeBounded(f, x1, x2, xatol) {
    const sqrtEps = Math.sqrt(2.2e-16), goldenMean = 0.5 * (3 - Math.sqrt(5));
    let a = x1, b = x2, fulc = a + goldenMean * (b - a), nfc = fulc, xf = fulc;
    let rat = 0, e = 0, x = xf, fx = f(x), num = 1;
    let ffulc = fx, fnfc = fx, xm = 0.5 * (a + b);
    let tol1 = sqrtEps * Math.abs(xf) + xatol / 3, tol2 = 2 * tol1;
    const sign = (v) => Math.sign(v) + (v === 0 ? 1 : 0);
    while (Math.abs(xf - xm) > tol2 - 0.5 * (b - a)) {
      let golden = true;
      if (Math.abs(e) > tol1) {
        golden = false;
        let r = (xf - nfc) * (fx - ffulc), q = (xf - fulc) * (fx - fnfc), p = (xf - fulc) * q - (xf - nfc) * r;
        q = 2 * (q - r);
        if (q > 0) p = -p;
        q = Math.abs(q);
        r = e;
        e = rat;
        if (Math.abs(p) < Math.abs(0.5 * q * r) && p > q * (a - xf) && p < q * (b - xf)) {
          rat = (p + 0) / q;
          x = xf + rat;
          if (x - a < tol2 || b - x < tol2) rat = tol1 * sign(xm - xf);
        } else {
          golden = true;
        }
      }
      if (golden) {
        e = xf >= xm ? a - xf : b - xf;
        rat = goldenMean * e;
      }
      x = xf + sign(rat) * Math.max(Math.abs(rat), tol1);
      const fu = f(x);
      num += 1;
      if (fu <= fx) {
        if (x >= xf) a = xf; else b = xf;
        fulc = nfc; ffulc = fnfc; nfc = xf; fnfc = fx; xf = x; fx = fu;
      } else {
        if (x < xf) a = x; else b = x;
        if (fu <= fnfc || nfc === xf) {
          fulc = nfc; ffulc = fnfc; nfc = x; fnfc = fu;
        } else if (fu <= ffulc || fulc === xf || fulc === nfc) {
          fulc = x; ffulc = fu;
        }
      }
      xm = 0.5 * (a + b);
      tol1 = sqrtEps * Math.abs(xf) + xatol / 3;
      tol2 = 2 * tol1;
      if (num >= 500) break;
    }
    return xf;
  }

  // N*(M, D): a log-spaced scan brackets the maximum of S*(N), the bounded search refines it (nstar.n_star).
  function nStar(target, tokens) {
    const S = K.n_star_search, targetPpl = perplexity(target, tokens);
    const start = Math.log(target * S.low_fraction), stop = Math.log(target * S.high_fraction);
    const step = (stop - start) / (S.grid_points - 1);
    const grid = Array.from({ length: S.grid_points }, (_, i) => (i === S.grid_points - 1 ? stop : i * step + start));
    const speedups = grid.map((x) => speedupOfDraft(x, target, targetPpl, tokens));
    let i = 0;
    speedups.forEach((s, j) => { if (s > speedups[i]) i = j; });
    if (!(speedups[i] > 1)) return null; // no draft size helps: the law's alpha gives no speedup > 1
    const lo = grid[Math.max(i - 1, 0)], hi = grid[Math.min(i + 1, grid.length - 1)];
    const draft = Math.exp(minimizeBounded((x) => -speedupOfDraft(x, target, targetPpl, tokens), lo, hi, S.xatol));
    const alpha = alphaFromPerplexity(perplexity(draft, tokens), targetPpl);
    const c = draft / target;
    return { n_star_params: draft, alpha_at_n_star: alpha, gamma_opt_at_n_star: optimalGamma(alpha, c),
             speedup_at_n_star: optimalSpeedup(alpha, c) };
  }

  // Everything the page shows, for one set of inputs (the same quantities as `sdsl-sim analytic
  // throughput` and `analytic nstar`); throws an Error naming a bad input.
  function compute(v) {
    if (!(v.alpha > 0 && v.alpha < 1)) throw new Error(`alpha ${v.alpha} is outside (0, 1)`);
    if (!(v.target_params > 0)) throw new Error(`target_params ${v.target_params} must be positive`);
    if (!(v.draft_params > 0 && v.draft_params < v.target_params)) {
      throw new Error(`draft_params ${v.draft_params} must be positive and smaller than target_params ${v.target_params}`);
    }
    if (!(v.train_tokens > 0)) throw new Error(`train_tokens ${v.train_tokens} must be positive`);
    const c = v.draft_params / v.target_params, gammaOpt = optimalGamma(v.alpha, c);
    const atOptimum = v.gamma === "opt";
    const gamma = atOptimum ? gammaOpt : v.gamma;
    const tokensPerFlop = atOptimum ? optimalSpeedup(v.alpha, c) / (2 * v.target_params)
      : leviathanSpeedup(v.alpha, gamma, c) / (2 * v.target_params);
    const best = bestIntegerGamma(v.alpha, c);
    const lawAlpha = alphaFromPerplexity(perplexity(v.draft_params, v.train_tokens), perplexity(v.target_params, v.train_tokens));
    const star = nStar(v.target_params, v.train_tokens) || { n_star_params: NaN, alpha_at_n_star: NaN, gamma_opt_at_n_star: NaN, speedup_at_n_star: NaN };
    return {
      alpha: v.alpha, target_params: v.target_params, draft_params: v.draft_params, gamma, train_tokens: v.train_tokens,
      gamma_opt: gammaOpt, best_integer_gamma: best, speculation_helps: best > 0,
      expected_tokens_per_iteration: expectedTokens(v.alpha, gamma), throughput_tokens_per_flop: tokensPerFlop,
      speedup_vs_autoregressive: tokensPerFlop * 2 * v.target_params, speedup_at_gamma_opt: optimalSpeedup(v.alpha, c),
      alpha_from_law: lawAlpha > 0 && lawAlpha < 1 ? lawAlpha : NaN,
      n_star_linear: K.linear_law.mu * v.target_params + K.linear_law.m0_params, ...star,
    };
  }

  // ------------------------------------------------------------ inputs

  function parseNumber(key, text) {
    const s = String(text).trim().replace(/_/g, "");
    let scale = 1, body = s;
    if (s && SUFFIX[s.slice(-1).toUpperCase()]) { scale = SUFFIX[s.slice(-1).toUpperCase()]; body = s.slice(0, -1); }
    const value = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(body) ? Number(body) * scale : NaN;
    if (!isFinite(value)) throw new Error(`${key} ${JSON.stringify(text)} is not a number; expected e.g. 0.7, 7e10, 70B or 277M`);
    return value;
  }

  function parseGamma(text) {
    if (["opt", "auto", "optimal", ""].includes(String(text).trim().toLowerCase())) return "opt";
    const g = parseNumber("gamma", text);
    if (!Number.isInteger(g) || g < 0 || g > K.max_gamma) throw new Error(`gamma ${text} is not an integer in [0, ${K.max_gamma}]`);
    return g;
  }

  const parse = (key, text) => (key === "gamma" ? parseGamma(text) : parseNumber(key, text));
  const state = { ...K.defaults };
  const errors = {};

  function readQuery() {
    const query = new URLSearchParams(window.location.search);
    for (const key of INPUTS) {
      if (!query.has(key)) continue;
      try { state[key] = parse(key, query.get(key)); } catch (err) { errors[key] = err.message; }
    }
  }

  function writeQuery() {
    const query = new URLSearchParams(INPUTS.map((k) => [k, String(state[k])]));
    try { window.history.replaceState(null, "", "?" + query.toString()); } catch (err) { /* a file: URL may refuse */ }
  }

  // ------------------------------------------------------------ the page

  const fmt = window.sdslChart.fmt;
  const field = (key, kind) => document.querySelector(`[data-input="${key}"][data-kind="${kind}"]`);

  function show(key, value) {
    const node = document.querySelector(`[data-key="${key}"]`);
    if (!node) return;
    node.dataset.value = String(value); // the shortest text that reads back as the same double
    node.textContent = typeof value === "boolean" ? (value ? "yes" : "no")
      : Number.isNaN(value) ? "—" : key === "gamma" && state.gamma === "opt" ? fmt(value) + " (γ*)" : fmt(value);
  }

  // The shortest text that reads back as the same number: 7e10 rather than 70000000000.
  const exact = (v) => (Math.abs(v) >= 1e5 ? v.toExponential().replace("e+", "e") : String(v));

  function syncFields() {
    for (const key of INPUTS) {
      const text = field(key, "text"), range = field(key, "range");
      if (text && document.activeElement !== text) text.value = key === "gamma" && state.gamma === "opt" ? "opt" : exact(state[key]);
      if (range && state[key] !== "opt") range.value = range.dataset.log ? Math.log10(state[key]) : state[key];
    }
    document.getElementById("gamma-opt").checked = state.gamma === "opt";
  }

  function update() {
    syncFields();
    const messages = Object.values(errors);
    let result = null;
    try { result = compute(state); } catch (err) { messages.push(err.message); }
    const error = document.getElementById("error");
    error.textContent = messages.join("; ");
    error.dataset.value = messages.join("; ");
    document.querySelectorAll("[data-key]").forEach((node) => {
      const key = node.dataset.key;
      if (key === "error") return;
      show(key, result ? result[key] : INPUTS.includes(key) && state[key] !== "opt" ? state[key] : NaN);
    });
    if (result) drawCharts(result);
  }

  function bind() {
    for (const key of INPUTS) {
      const text = field(key, "text"), range = field(key, "range");
      const set = (value) => {
        try { state[key] = parse(key, value); delete errors[key]; } catch (err) { errors[key] = err.message; }
        writeQuery();
        update();
      };
      if (text) text.addEventListener("change", () => set(text.value));
      if (range) range.addEventListener("input", () => set(range.dataset.log ? String(10 ** Number(range.value)) : range.value));
    }
    document.getElementById("gamma-opt").addEventListener("change", (event) => {
      state.gamma = event.target.checked ? "opt" : Math.round(optimalGammaOrZero());
      delete errors.gamma;
      writeQuery();
      update();
    });
    document.getElementById("use-law").addEventListener("click", () => {
      const law = Number(document.querySelector('[data-key="alpha_from_law"]').dataset.value);
      if (law > 0 && law < 1) { state.alpha = law; delete errors.alpha; writeQuery(); update(); }
    });
  }

  function optimalGammaOrZero() {
    try { return compute({ ...state, gamma: 0 }).gamma_opt; } catch (err) { return 0; }
  }

  // ------------------------------------------------------------ charts (drawn by chart.js)

  const CIRCLE = "M-0.5 0A0.5 0.5 0 1 0 0.5 0A0.5 0.5 0 1 0 -0.5 0Z";
  const STAR = "M0 -0.6L0.14 -0.19L0.57 -0.19L0.22 0.07L0.35 0.49L0 0.24L-0.35 0.49L-0.22 0.07L-0.57 -0.19L-0.14 -0.19Z";

  function niceTicks(lo, hi) {
    const span = hi - lo, step0 = 10 ** Math.floor(Math.log10(span / 5));
    const step = [1, 2, 5, 10].map((m) => m * step0).find((s) => span / s <= 6);
    const ticks = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) ticks.push(Number(v.toPrecision(12)));
    return ticks;
  }

  // A one-panel spec in chart.js's format (the one figspec.py writes), laid out here.
  function panel(title, xlabel, ylabel, xlog, marks, legend) {
    const W = 420, H = 260, box = [58, 26, 342, 180];
    const xs = [], ys = [];
    for (const m of marks) {
      if (m.xy) m.xy.forEach(([x, y]) => { xs.push(x); ys.push(y); });
      if (m.t === "hline") ys.push(m.v);
      if (m.t === "vline") xs.push(m.v);
    }
    let [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    const pad = (y1 - y0 || 1) * 0.08;
    [y0, y1] = [y0 - pad, y1 + pad];
    if (xlog) { x0 /= 1.3; x1 *= 1.3; } else { const p = (x1 - x0 || 1) * 0.04; x0 -= p; x1 += p; }
    const xt = xlog ? Array.from({ length: 20 }, (_, i) => 10 ** (i + 3)).filter((v) => v >= x0 && v <= x1) : niceTicks(x0, x1);
    const yt = niceTicks(y0, y1);
    const sx = (v) => box[0] + ((xlog ? Math.log10(v) - Math.log10(x0) : v - x0) / (xlog ? Math.log10(x1 / x0) : x1 - x0)) * box[2];
    const sy = (v) => box[1] + box[3] - ((v - y0) / (y1 - y0)) * box[3];
    const label = (v) => (xlog ? fmt(v) : String(v));
    const texts = [
      { s: title, x: box[0] + box[2] / 2, y: 12, size: 11, c: "#262626", rot: 0, bold: true },
      { s: xlabel, x: box[0] + box[2] / 2, y: box[1] + box[3] + 34, size: 10, c: "#262626", rot: 0 },
      { s: ylabel, x: 12, y: box[1] + box[3] / 2, size: 10, c: "#262626", rot: 90 },
      ...xt.map((v) => ({ s: label(v), x: sx(v), y: box[1] + box[3] + 14, size: 9, c: "#262626", rot: 0 })),
      ...yt.map((v) => ({ s: String(v), x: box[0] - 6 - 2.6 * String(v).length, y: sy(v), size: 9, c: "#262626", rot: 0 })),
    ];
    const axis = (scale, lim, ticks) => ({ scale, lim, ticks: ticks.map((v) => [v, String(v)]), grid: "#e3e3e3" });
    return {
      box: [W, H], texts: [], legend,
      axes: [{ box, bg: "#ffffff", frame: "#bbbbbb", x: axis(xlog ? "log" : "linear", [x0, x1], xt),
               y: axis("linear", [y0, y1], yt), xlabel, ylabel, title, marks, texts }],
    };
  }

  function drawCharts(r) {
    const c = r.draft_params / r.target_params;
    const top = Math.min(K.max_gamma, Math.max(12, Math.ceil(2 * r.gamma_opt) + 2));
    const curve = Array.from({ length: top + 1 }, (_, g) => [g, leviathanSpeedup(r.alpha, g, c)]);
    const chosen = typeof r.gamma === "number" ? [[r.gamma, r.speedup_vs_autoregressive]] : [];
    window.sdslChart.draw(document.getElementById("chart-gamma"), panel(
      "Speedup against lookahead", "lookahead γ (draft tokens per iteration)", "speedup (x)", false, [
        { t: "hline", k: null, v: 1, c: "#888888", w: 1, o: 1, dash: "3,2" },
        { t: "line", k: "Leviathan S(γ)", xy: curve, c: "#4c72b0", w: 1.6, o: 1, m: CIRCLE, ms: 5, mf: "#4c72b0", me: "#4c72b0", mw: 1 },
        { t: "points", k: "Lambert-W optimum γ*", xy: [[r.gamma_opt, r.speedup_at_gamma_opt]], shape: [STAR], sz: [14], fc: "#dd8452", fo: 1, ec: "#222222", eo: 1, w: 0.8 },
        ...(chosen.length && state.gamma !== "opt" ? [{ t: "points", k: "your γ", xy: chosen, shape: [CIRCLE], sz: [10], fc: null, fo: 1, ec: "#c44e52", eo: 1, w: 2 }] : []),
      ], [
        { toggles: true, key: "Leviathan S(γ)", c: "#4c72b0", line: true, m: CIRCLE, mf: "#4c72b0", me: "#4c72b0" },
        { toggles: true, key: "Lambert-W optimum γ*", c: "#dd8452", line: false, m: STAR, mf: "#dd8452", me: "#222222" },
        ...(chosen.length && state.gamma !== "opt" ? [{ toggles: true, key: "your γ", c: "#c44e52", line: false, m: CIRCLE, mf: null, me: "#c44e52" }] : []),
      ]));
    const S = K.n_star_search, targetPpl = perplexity(r.target_params, r.train_tokens);
    const lo = Math.log(r.target_params * S.low_fraction), hi = Math.log(r.target_params * S.high_fraction);
    const sizes = Array.from({ length: 121 }, (_, i) => lo + ((hi - lo) * i) / 120);
    const law = sizes.map((x) => [Math.exp(x), speedupOfDraft(x, r.target_params, targetPpl, r.train_tokens)]).filter(([, s]) => s > 0);
    const marks = [{ t: "line", k: "S* with the law's α(N)", xy: law, c: "#55a868", w: 1.8, o: 1, m: null }];
    const legend = [{ toggles: true, key: "S* with the law's α(N)", c: "#55a868", line: true, m: null }];
    if (isFinite(r.n_star_params)) {
      marks.push({ t: "points", k: "N*", xy: [[r.n_star_params, r.speedup_at_n_star]], shape: [STAR], sz: [14], fc: "#dd8452", fo: 1, ec: "#222222", eo: 1, w: 0.8 });
      legend.push({ toggles: true, key: "N*", c: "#dd8452", line: false, m: STAR, mf: "#dd8452", me: "#222222" });
    }
    marks.push({ t: "vline", k: "your draft", v: r.draft_params, c: "#c44e52", w: 1.2, o: 1, dash: "4,2" });
    legend.push({ toggles: true, key: "your draft", c: "#c44e52", line: true, dash: "4,2", m: null });
    if (law.length) {
      window.sdslChart.draw(document.getElementById("chart-draft"), panel(
        "Speedup at γ* against draft size (SDSL laws, this D)", "draft size N (parameters)", "speedup S* (x)", true, marks, legend));
    }
  }

  readQuery();
  bind();
  update();
})();
