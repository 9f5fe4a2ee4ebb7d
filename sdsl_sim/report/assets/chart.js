// Interactive charts of sdsl-sim report pages, drawn as SVG from the figure specs that
// sdsl_sim/report/figspec.py reads off the matplotlib figures (the same data as the PNGs).
// Hover a point, bar or cell for its values; click a legend entry to hide or show its series.
// No library and no network: the page inlines this file.
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg"; // the SVG namespace name, not a resource
  const HOVER_RADIUS = 14; // user units (points) within which the nearest point answers a hover
  let chartCount = 0;

  function el(tag, attrs, parent) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(name, value);
    }
    if (parent) parent.appendChild(node);
    return node;
  }

  // Numbers as a reader wants them in a tooltip: 4 significant digits, exponent form when large or small.
  function fmt(v) {
    if (v === null || v === undefined || !isFinite(v)) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3).replace(/\.?0+e/, "e").replace("e+", "e");
    return String(Number(v.toPrecision(4)));
  }

  // Data -> user units along one axis, linear or logarithmic, from the axis limits to [lo, hi].
  function scaleOf(axis, lo, hi) {
    const f = axis.scale === "log" ? Math.log10 : (v) => v;
    const a = f(axis.lim[0]), b = f(axis.lim[1]);
    return (v) => lo + ((f(v) - a) / (b - a)) * (hi - lo);
  }

  // Whether a data point can be drawn: not a NaN gap (null), not <= 0 on a log axis (matplotlib masks those).
  const drawable = (x, y, sx, sy) => x !== null && y !== null && isFinite(sx(x)) && isFinite(sy(y));

  function pathOf(points, sx, sy) {
    let d = "", pen = false;
    for (const [x, y] of points) {
      if (!drawable(x, y, sx, sy)) { pen = false; continue; }
      d += (pen ? "L" : "M") + sx(x).toFixed(2) + " " + sy(y).toFixed(2);
      pen = true;
    }
    return d;
  }

  // A text centred where matplotlib drew it; a multi-line one as lines 1.2 font sizes apart around that centre.
  function text(parent, t) {
    const node = el("text", {
      x: t.x, y: t.y, "font-size": t.size, fill: t.c, "text-anchor": "middle", "dominant-baseline": "central",
      "font-weight": t.bold ? "bold" : null, transform: t.rot ? `rotate(${-t.rot} ${t.x} ${t.y})` : null,
    }, parent);
    const lines = t.s.split("\n");
    lines.forEach((line, i) => {
      el("tspan", { x: t.x, y: (t.y + (i - (lines.length - 1) / 2) * 1.2 * t.size).toFixed(2) }, node).textContent = line;
    });
  }

  function marker(parent, shape, x, y, size, fill, stroke, width, extra) {
    return el("path", {
      d: shape, transform: `translate(${x.toFixed(2)} ${y.toFixed(2)}) scale(${size})`, fill: fill || "none",
      stroke: stroke || "none", "stroke-width": width, "vector-effect": "non-scaling-stroke", ...extra,
    }, parent);
  }

  // One axes: background, grid, marks (in matplotlib's draw order), frame, texts; returns hover targets.
  function drawAxes(svg, ax, id) {
    const [x0, y0, w, h] = ax.box;
    const sx = scaleOf(ax.x, x0, x0 + w), sy = scaleOf(ax.y, y0 + h, y0);
    const clip = el("clipPath", { id }, el("defs", {}, svg));
    el("rect", { x: x0, y: y0, width: w, height: h }, clip);
    const g = el("g", { class: "axes" }, svg);
    el("rect", { x: x0, y: y0, width: w, height: h, fill: ax.bg }, g);
    const plot = el("g", { "clip-path": `url(#${id})` }, g);
    for (const [v] of ax.x.grid ? ax.x.ticks : []) {
      el("line", { x1: sx(v), x2: sx(v), y1: y0, y2: y0 + h, stroke: ax.x.grid, "stroke-width": 0.8 }, plot);
    }
    for (const [v] of ax.y.grid ? ax.y.ticks : []) {
      el("line", { x1: x0, x2: x0 + w, y1: sy(v), y2: sy(v), stroke: ax.y.grid, "stroke-width": 0.8 }, plot);
    }
    const targets = [];
    const name = { x: ax.xlabel || "x", y: ax.ylabel || "y" };
    for (const m of ax.marks) {
      const group = el("g", { class: "mark mark-" + m.t, "data-series": m.k }, plot);
      drawMark(group, m, sx, sy, ax.box, targets, name);
    }
    if (ax.frame) el("rect", { x: x0, y: y0, width: w, height: h, fill: "none", stroke: ax.frame, "stroke-width": 1 }, g);
    for (const t of ax.texts) text(g, t);
    return { box: ax.box, targets };
  }

  function drawMark(g, m, sx, sy, box, targets, name) {
    const [x0, y0, w, h] = box;
    const stroke = { stroke: m.c, "stroke-width": m.w, "stroke-opacity": m.o, "stroke-dasharray": m.dash, fill: "none" };
    // a patch's own edge (a hollow bar is only its edge)
    const edge = m.w > 0 && m.eo > 0 ? { stroke: m.ec, "stroke-opacity": m.eo, "stroke-width": m.w } : {};
    const point = (x, y, label) => targets.push({ k: m.k, px: sx(x), py: sy(y), tip: label || `${name.x}: ${fmt(x)}\n${name.y}: ${fmt(y)}` });
    switch (m.t) {
      case "line":
        if (m.w > 0) el("path", { d: pathOf(m.xy, sx, sy), ...stroke }, g);
        for (const [x, y] of m.xy) {
          if (!drawable(x, y, sx, sy)) continue;
          if (m.m) marker(g, m.m, sx(x), sy(y), m.ms, m.mf, m.me, m.mw, { "fill-opacity": m.mo, "stroke-opacity": m.mo, class: "pt", "data-x": x, "data-y": y });
          point(x, y);
        }
        break;
      case "hline":
        el("line", { x1: x0, x2: x0 + w, y1: sy(m.v), y2: sy(m.v), ...stroke }, g);
        break;
      case "vline":
        el("line", { x1: sx(m.v), x2: sx(m.v), y1: y0, y2: y0 + h, ...stroke }, g);
        break;
      case "points":
        m.xy.forEach(([x, y], i) => {
          if (!drawable(x, y, sx, sy)) return;
          marker(g, m.shape[i], sx(x), sy(y), m.sz[i], m.fc, m.ec, m.w,
            { "fill-opacity": m.fo, "stroke-opacity": m.eo, class: "pt", "data-x": x, "data-y": y });
          point(x, y);
        });
        break;
      case "segs":
        el("path", { d: m.segs.map((s) => pathOf(s, sx, sy)).join(""), ...stroke }, g);
        break;
      case "poly":
        el("path", { d: m.pts.map((p) => pathOf(p, sx, sy) + "Z").join(""), fill: m.c, "fill-opacity": m.o, stroke: "none", ...edge }, g);
        break;
      case "hspan":
      case "vspan": {
        const [a, b] = m.t === "hspan" ? [sy(m.r[1]), sy(m.r[0])] : [sx(m.r[0]), sx(m.r[1])];
        const band = m.t === "hspan" ? { x: x0, width: w, y: a, height: b - a } : { y: y0, height: h, x: a, width: b - a };
        el("rect", { ...band, fill: m.c, "fill-opacity": m.o, ...edge }, g);
        break;
      }
      case "rect": {
        const [a, b, c, d] = m.r, left = Math.min(sx(a), sx(c)), top = Math.min(sy(b), sy(d));
        const r = { x: left, y: top, width: Math.abs(sx(c) - sx(a)), height: Math.abs(sy(d) - sy(b)) };
        el("rect", { ...r, fill: m.c, "fill-opacity": m.o, ...edge, class: "bar", "data-value": m.v }, g);
        targets.push({ k: m.k, rect: r, tip: `${m.name ? m.name + "\n" : ""}${name.y}: ${fmt(m.v)}` });
        break;
      }
      case "cells":
        for (const [a, b, c, d, colour, value, column, row] of m.cells) {
          const r = { x: Math.min(sx(a), sx(c)), y: Math.min(sy(b), sy(d)), width: Math.abs(sx(c) - sx(a)), height: Math.abs(sy(d) - sy(b)) };
          el("rect", { ...r, fill: colour, class: "cell", "data-value": value }, g);
          targets.push({ k: null, rect: r, tip: `${name.y}: ${row}\n${name.x}: ${column}\nvalue: ${fmt(value)}` });
        }
        break;
    }
  }

  function nearest(axes, x, y, hidden) {
    let best = null, bestDist = HOVER_RADIUS;
    for (const t of axes.targets) {
      if (t.k !== null && hidden.has(t.k)) continue;
      if (t.rect) {
        const r = t.rect;
        if (x >= r.x && x <= r.x + r.width && y >= r.y && y <= r.y + r.height) return t;
      } else {
        const dist = Math.hypot(t.px - x, t.py - y);
        if (dist < bestDist) { best = t; bestDist = dist; }
      }
    }
    return best;
  }

  // A legend swatch: a short line with the series' dash and marker, or a filled box.
  function swatch(entry) {
    const s = el("svg", { viewBox: "0 0 24 12", width: 24, height: 12, class: "swatch" });
    if (entry.box) el("rect", { x: 4, y: 1, width: 16, height: 10, fill: entry.c }, s);
    if (entry.line) el("line", { x1: 1, x2: 23, y1: 6, y2: 6, stroke: entry.c, "stroke-width": 2, "stroke-dasharray": entry.dash }, s);
    if (entry.m) marker(s, entry.m, 12, 6, 7, entry.mf, entry.me || entry.c, 1);
    if (!entry.box && !entry.line && !entry.m) el("circle", { cx: 12, cy: 6, r: 4, fill: entry.c }, s);
    return s;
  }

  // Draws `spec` into `holder` (again, replacing a drawing there): an SVG, a legend of toggle buttons, a tooltip.
  function draw(holder, spec) {
    const index = ++chartCount;
    holder.querySelectorAll(".chart-svg, .chart-legend, .chart-tip").forEach((n) => n.remove());
    const [width, height] = spec.box;
    const frame = document.createElement("div");
    frame.className = "chart-svg";
    holder.prepend(frame);
    const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": spec.title || "chart" }, frame);
    svg.style.maxWidth = (width * 110 / 72).toFixed(0) + "px"; // the PNG's size at its 110 dpi
    const axes = spec.axes.map((ax, i) => drawAxes(svg, ax, `c${index}a${i}`));
    for (const t of spec.texts) text(svg, t);
    const hidden = new Set();
    const tip = document.createElement("div");
    tip.className = "chart-tip";
    tip.hidden = true;
    frame.appendChild(tip);
    const ring = el("circle", { r: 5, class: "hover-ring", fill: "none", stroke: "#222", "stroke-width": 1.5, visibility: "hidden" }, svg);
    svg.addEventListener("mousemove", (event) => {
      const p = new DOMPoint(event.clientX, event.clientY).matrixTransform(svg.getScreenCTM().inverse());
      const ax = axes.find((a) => p.x >= a.box[0] && p.x <= a.box[0] + a.box[2] && p.y >= a.box[1] && p.y <= a.box[1] + a.box[3]);
      const hit = ax && nearest(ax, p.x, p.y, hidden);
      if (!hit) { tip.hidden = true; ring.setAttribute("visibility", "hidden"); return; }
      tip.textContent = (hit.k ? hit.k + "\n" : "") + hit.tip;
      tip.hidden = false;
      const where = frame.getBoundingClientRect();
      tip.style.left = (event.clientX - where.left + 12) + "px";
      tip.style.top = (event.clientY - where.top + 12) + "px";
      if (hit.rect) { ring.setAttribute("visibility", "hidden"); return; }
      ring.setAttribute("cx", hit.px);
      ring.setAttribute("cy", hit.py);
      ring.setAttribute("visibility", "visible");
    });
    svg.addEventListener("mouseleave", () => { tip.hidden = true; ring.setAttribute("visibility", "hidden"); });
    if (spec.legend.length) {
      const legend = document.createElement("div");
      legend.className = "chart-legend";
      for (const entry of spec.legend) {
        if (!entry.toggles) { // a style key (dashed: baseline): explains marks of several series
          const note = document.createElement("span");
          note.className = "legend-note";
          note.append(swatch(entry), document.createTextNode(entry.key));
          legend.appendChild(note);
          continue;
        }
        const button = document.createElement("button");
        button.type = "button";
        button.setAttribute("aria-pressed", "true");
        button.dataset.series = entry.key;
        button.append(swatch(entry), document.createTextNode(entry.key));
        button.addEventListener("click", () => {
          const off = !hidden.has(entry.key);
          off ? hidden.add(entry.key) : hidden.delete(entry.key);
          button.setAttribute("aria-pressed", String(!off));
          svg.querySelectorAll(".mark").forEach((g) => {
            if (g.getAttribute("data-series") === entry.key) g.classList.toggle("off", off);
          });
        });
        legend.appendChild(button);
      }
      frame.after(legend);
    }
    holder.dataset.rendered = String(spec.axes.reduce((n, a) => n + a.marks.length, 0));
  }

  window.sdslChart = { draw, fmt };
  document.querySelectorAll("figure.chart-figure").forEach((holder) => {
    const source = holder.querySelector("script.chart-spec");
    if (source) draw(holder, JSON.parse(source.textContent));
  });
})();
