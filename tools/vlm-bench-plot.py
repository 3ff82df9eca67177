#!/usr/bin/env python3
"""Draws vlm-bench's JSON reports as an SVG bar chart: each measured figure as
a fraction of the machine limit that bounds it (the matmul peak or GEMV
bandwidth of the dtype it ran in), per backend and precision, with issue 6's
70 % target marked. Several reports (e.g. a bf16 run and an f32 run, or the
git-base-vatex and llava-onevision-0.5b presets) are drawn together, each
figure for the models that report it; the limits shown are the first
report's.
Standard library only.

    tools/vlm-bench-plot.py bench-bf16.json [bench-f32.json ...] docs/performance.svg

A file named "-" is standard input (a report) or standard output (the SVG).
"""
import json
import sys
from xml.sax.saxutils import escape

# (ratio key, label, how the absolute figure is printed)
BARS = [
    ("tower_vs_matmul_peak", "vision tower", lambda m: f"{m['tower_gflops']:.0f} GFLOP/s"),
    ("encode_vs_matmul_peak", "vision_ms (tower + visual KV)", lambda m: f"{m['encode_gflops']:.0f} GFLOP/s"),
    ("decode_vs_gemv", "decode step", lambda m: f"{m['decode_gbps']:.1f} GB/s"),
    ("end_to_end_bound_vs_measured", "caption end to end", lambda m: f"{m['total_ms']['median']:.0f} ms"),
    ("prefill_vs_matmul_peak", "prefill", lambda m: f"{m['prefill_gflops']:.0f} GFLOP/s"),
]
COLOURS = {"onednn bf16": "#1f4e8c", "onednn f32": "#6f9fd8", "blas f32": "#c9803a"}
W, BAR_H, GAP, LEFT, RIGHT, TOP = 760, 18, 14, 230, 40, 60


def svg(report):
    models = report["models"]
    bars = [(key, label, absolute, [m for m in models if key in m["ratios"]]) for key, label, absolute in BARS]
    bars = [b for b in bars if b[3]]
    plot_w = W - LEFT - RIGHT
    rows = sum(len(ms) * BAR_H + GAP for _, _, _, ms in bars)
    h = TOP + rows + 50
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{h}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">'
           f'{escape(report["preset"])}: measured / machine limit (1.0 = at the limit)</text>']
    for frac in (0, 0.25, 0.5, 0.75, 1.0):
        x = LEFT + frac * plot_w
        out.append(f'<line x1="{x}" y1="{TOP - 8}" x2="{x}" y2="{TOP + rows}" stroke="#ddd"/>')
        out.append(f'<text x="{x}" y="{TOP + rows + 16}" text-anchor="middle">{frac:.2f}</text>')
    x70 = LEFT + 0.7 * plot_w
    out.append(f'<line x1="{x70}" y1="{TOP - 8}" x2="{x70}" y2="{TOP + rows}" stroke="#b22" '
               f'stroke-dasharray="4 3"/>')
    out.append(f'<text x="{x70}" y="{TOP - 12}" text-anchor="middle" fill="#b22">70 % target</text>')
    y = TOP
    for key, label, absolute, ms in bars:
        out.append(f'<text x="{LEFT - 8}" y="{y + BAR_H * len(ms) / 2 + 4}" '
                   f'text-anchor="end">{escape(label)}</text>')
        for m in ms:
            r = m["ratios"][key]
            bw = max(0.0, min(r, 1.0)) * plot_w
            kind = f'{m["backend"]} {m.get("precision", "f32")}'
            colour = COLOURS.get(kind, "#777")
            name = f'{m["_preset"]}: {kind}' if report["_mixed"] else kind
            out.append(f'<rect x="{LEFT}" y="{y}" width="{bw:.1f}" height="{BAR_H - 3}" fill="{colour}"/>')
            out.append(f'<text x="{LEFT + bw + 4:.1f}" y="{y + BAR_H - 6}" font-size="11">'
                       f'{escape(name)} {r:.2f} ({escape(absolute(m))})</text>')
            y += BAR_H
        y += GAP
    lim = report.get("limits", {})
    note = (f'limits: oneDNN matmul f32 {lim.get("onednn_matmul_f32_gflops", 0):.0f} / '
            f'bf16 {lim.get("onednn_matmul_bf16_gflops", 0):.0f} GFLOP/s, '
            f'OpenBLAS sgemm {lim.get("openblas_sgemm_gflops", 0):.0f} GFLOP/s, '
            f'GEMV f32 {lim.get("gemv_f32_gbps", 0):.1f} / bf16 {lim.get("gemv_bf16_gbps", 0):.1f} GB/s')
    out.append(f'<text x="{W / 2}" y="{h - 12}" text-anchor="middle" fill="#555">{escape(note)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    reports = []
    for path in sys.argv[1:-1]:
        if path == "-":
            reports.append(json.load(sys.stdin))
        else:
            with open(path) as f:
                reports.append(json.load(f))
    report = dict(reports[0])
    report["models"] = [dict(m, _preset=r["preset"]) for r in reports for m in r["models"]]
    presets = list(dict.fromkeys(r["preset"] for r in reports))
    report["_mixed"] = len(presets) > 1
    report["preset"] = " and ".join(presets)
    if sys.argv[-1] == "-":
        sys.stdout.write(svg(report))
    else:
        with open(sys.argv[-1], "w") as f:
            f.write(svg(report))


if __name__ == "__main__":
    main()
