"""Pure Plotly figure builders: data in, figure out; no Streamlit, no models."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import plotly.graph_objects as go

_LAYOUT = dict(template="plotly_dark", margin=dict(l=10, r=10, t=40, b=10))


def topk_bar(labels: Sequence[str], probabilities: Sequence[float], title: str = "") -> go.Figure:
    """Horizontal bars, best class on top, probabilities as percentages."""
    fig = go.Figure(go.Bar(x=[p * 100 for p in probabilities][::-1], y=list(labels)[::-1],
                           orientation="h", text=[f"{p:.1%}" for p in probabilities][::-1],
                           textposition="auto", marker_color="#4f8cff"))
    fig.update_layout(title=title, xaxis_title="probability (%)", xaxis_range=[0, 100],
                      height=60 + 32 * len(labels), **_LAYOUT)
    return fig


def confusion_heatmap(matrix: np.ndarray, true_names: Sequence[str],
                      pred_names: Sequence[str], title: str = "Confusion matrix",
                      cells: Sequence[tuple[int, int]] | None = None) -> go.Figure:
    """Counts with true classes on rows and predicted classes on columns. `cells`: the
    (row, column) index each matrix cell stands for; with it, every non-empty cell carries an
    invisible clickable point whose customdata is that pair (Plotly selects points, not
    heatmap cells)."""
    fig = go.Figure(go.Heatmap(z=matrix, x=list(pred_names), y=list(true_names),
                               colorscale="Blues", text=matrix, texttemplate="%{text}",
                               hovertemplate="true %{y}<br>predicted %{x}<br>%{z}<extra></extra>"))
    if cells is not None:
        rows, cols = np.nonzero(matrix)
        fig.add_trace(go.Scatter(
            x=[pred_names[c] for c in cols], y=[true_names[r] for r in rows], mode="markers",
            marker=dict(size=28, color="rgba(0,0,0,0)", symbol="square"), showlegend=False,
            customdata=[list(cells[r * len(pred_names) + c]) for r, c in zip(rows, cols)],
            hovertemplate="true %{y}<br>predicted %{x}<br>click: its images<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="predicted", yaxis_title="true",
                      yaxis_autorange="reversed", height=max(320, 40 * len(true_names) + 120),
                      **_LAYOUT)
    return fig


def scene_timeline(times: Sequence[float], labels: Sequence[str], probabilities: Sequence[float],
                   segments: Sequence[tuple[float, float, str]], title: str = "") -> go.Figure:
    """Per-frame top class (markers, opacity = probability) above merged scene segments."""
    classes = list(dict.fromkeys(list(labels) + [s[2] for s in segments]))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=list(times), y=list(labels), mode="markers", name="frame top-1",
                             marker=dict(size=9, opacity=[max(0.25, p) for p in probabilities]),
                             customdata=[f"{p:.0%}" for p in probabilities],
                             hovertemplate="%{x:.2f} s: %{y} (%{customdata})<extra></extra>"))
    palette = ["#4f8cff", "#ff7f50", "#3cb371", "#ba55d3", "#ffd700", "#20b2aa", "#ff6b81"]
    for i, (start, end, label) in enumerate(segments):
        fig.add_trace(go.Scatter(x=[start, end], y=["scenes", "scenes"], mode="lines",
                                 line=dict(width=18, color=palette[classes.index(label)
                                                                    % len(palette)]),
                                 name=label, showlegend=False,
                                 hovertemplate=f"scene {i + 1}: {label}<br>{start:.1f}–{end:.1f} s"
                                               "<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="time (s)",
                      yaxis=dict(categoryorder="array", categoryarray=["scenes"] + classes),
                      height=140 + 28 * len(classes), **_LAYOUT)
    return fig


def curves(lines: Sequence[tuple[str, Sequence[float], Sequence[float]]], metric: str,
           x_title: str, log_y: bool = False,
           bands: Sequence[tuple[str, Sequence[float], Sequence[float], Sequence[float]]] = (),
           ) -> go.Figure:
    """Overlaid lines (name, x, y); optional bands (name, x, low, high) drawn beneath them."""
    fig = go.Figure()
    for name, x, low, high in bands:
        fig.add_trace(go.Scatter(x=list(x) + list(x)[::-1], y=list(high) + list(low)[::-1],
                                 fill="toself", line=dict(width=0), opacity=0.25,
                                 name=f"{name} min–max", hoverinfo="skip"))
    for name, x, y in lines:
        fig.add_trace(go.Scatter(x=list(x), y=list(y), mode="lines", name=name))
    fig.update_layout(title=metric, xaxis_title=x_title, yaxis_type="log" if log_y else "linear",
                      height=380, legend=dict(orientation="h", y=-0.25), **_LAYOUT)
    return fig


def parallel_coordinates(columns: dict[str, Sequence[float]], metric: str,
                         categories: dict[str, Sequence[str]] | None = None,
                         best: int | None = None,
                         brush: dict[str, Sequence[tuple[float, float]]] | None = None,
                         log: Collection[str] = ()) -> go.Figure:
    """One line per run across axes (the last one `metric`), coloured by the metric; WebGL,
    so ten thousand lines draw. `categories`: axes whose values are indices into these
    labels. `brush`: each axis's ranges, drawn as Plotly's brushes (a visitor drags more).
    `log`: axes whose values are log10 of the parameter, ticked as powers of ten."""
    categories, brush = categories or {}, brush or {}
    dims = []
    for name, col in columns.items():
        dim = dict(label=name, values=[None if v != v else v for v in col])
        if name in categories:
            dim.update(tickvals=list(range(len(categories[name]))),
                       ticktext=list(categories[name]))
        elif name in log and np.isfinite(col).any():
            powers = list(range(int(np.ceil(np.nanmin(col) - 1e-9)),
                                int(np.floor(np.nanmax(col) + 1e-9)) + 1))
            dim.update(tickvals=powers,
                       ticktext=[f"1e{p}" for p in powers])
        if brush.get(name):
            ranges = [list(r) for r in brush[name]]
            dim["constraintrange"] = ranges[0] if len(ranges) == 1 else ranges
        dims.append(dim)
    values = list(columns[metric]) if metric in columns else []
    title = f"{metric} by config · {len(values):,} runs"
    if best is not None:
        title += f" · best {values[best]:.4g}"
    fig = go.Figure(go.Parcoords(line=dict(color=[None if v != v else v for v in values],
                                           colorscale="Viridis", showscale=True),
                                 dimensions=dims, unselected=dict(line=dict(opacity=0.05))))
    fig.update_layout(title=title, height=460, template="plotly_dark",
                      margin=dict(l=60, r=40, t=100, b=30))
    return fig


def summary_scatter(x: Sequence[float], y: Sequence[float], names: Sequence[str], x_title: str,
                    y_title: str, log_x: bool = False) -> go.Figure:
    """A point per run (WebGL): a box or lasso drawn on it selects runs."""
    fig = go.Figure(go.Scattergl(x=list(x), y=list(y), mode="markers", text=list(names),
                                 marker=dict(size=6, opacity=0.7),
                                 hovertemplate="%{text}<br>%{x}<br>%{y}<extra></extra>"))
    fig.update_layout(title=f"{y_title} against {x_title} · {len(names):,} runs",
                      xaxis_title=x_title, yaxis_title=y_title, dragmode="select",
                      xaxis_type="log" if log_x else "linear", height=420, **_LAYOUT)
    return fig


def interaction_bars(pairs: Sequence[str], strength: Sequence[float], metric: str) -> go.Figure:
    """Friedman's H per pair of parameters, strongest on top."""
    fig = go.Figure(go.Bar(x=list(strength)[::-1], y=list(pairs)[::-1], orientation="h",
                           text=[f"{h:.2f}" for h in list(strength)[::-1]],
                           textposition="auto", marker_color="#7aa2f7"))
    fig.update_layout(title=f"Interaction strength for {metric}", xaxis_title="H (0: none, "
                      "1: all interaction)", xaxis_range=[0, 1], height=80 + 30 * len(pairs),
                      **_LAYOUT)
    return fig


def metrics_bars(stats: dict[str, dict[str, float]], keys: Sequence[str]) -> go.Figure:
    """Grouped bars: one group per metric key, one bar per model."""
    fig = go.Figure([go.Bar(name=model, x=list(keys), y=[values[k] for k in keys],
                            text=[f"{values[k]:.3f}" for k in keys], textposition="outside")
                     for model, values in stats.items()])
    fig.update_layout(barmode="group", yaxis_range=[0, 1.1], height=360, **_LAYOUT)
    return fig


def pr_curves(curves: Sequence[tuple[str, Sequence[float], Sequence[float]]],
              title: str = "Precision–recall (IoU 0.5)") -> go.Figure:
    fig = go.Figure([go.Scatter(x=list(r), y=list(p), mode="lines", name=name)
                     for name, r, p in curves])
    fig.update_layout(title=title, xaxis_title="recall", yaxis_title="precision",
                      xaxis_range=[0, 1], yaxis_range=[0, 1.05], height=360, **_LAYOUT)
    return fig


def f1_curves(curves: Sequence[tuple[str, Sequence[float], Sequence[float]]]) -> go.Figure:
    fig = go.Figure([go.Scatter(x=list(t), y=list(f1), mode="lines", name=name)
                     for name, t, f1 in curves])
    fig.update_layout(title="F1 against confidence threshold", xaxis_title="confidence",
                      yaxis_title="F1", xaxis_range=[0, 1], yaxis_range=[0, 1.05], height=360,
                      **_LAYOUT)
    return fig


def iou_histogram(ious: dict[str, Sequence[float]]) -> go.Figure:
    fig = go.Figure([go.Histogram(x=list(v), name=f"{name} (mean {np.mean(v):.3f})"
                                  if len(v) else name, xbins=dict(start=0.5, end=1.0, size=0.025),
                                  opacity=0.7) for name, v in ious.items()])
    fig.update_layout(title="IoU of matched true positives", xaxis_title="IoU",
                      yaxis_title="detections", barmode="overlay", height=340, **_LAYOUT)
    return fig


def error_bars(deltas: dict[str, dict[str, float]]) -> go.Figure:
    """ΔAP50 per error type, one bar per model."""
    fig = go.Figure([go.Bar(name=model, x=list(d), y=[v * 100 for v in d.values()],
                            text=[f"{v * 100:.1f}" for v in d.values()], textposition="outside")
                     for model, d in deltas.items()])
    fig.update_layout(title="AP50 gained by fixing each error type (points)", barmode="group",
                      yaxis_title="ΔAP50 (points)", height=360, **_LAYOUT)
    return fig


def importance_bars(parameters: Sequence[str], importance: Sequence[float],
                    correlation: Sequence[float], metric: str,
                    low: Sequence[float] | None = None, high: Sequence[float] | None = None,
                    floor: float | None = None) -> go.Figure:
    """W&B-style parameter importance: forest importance bars, most important on top, each
    coloured by the sign of its correlation with the metric (green +, red -); with `low` and
    `high`, each bar's interval, and `floor` (the noise probe's upper bound) as a line."""
    names, imp, cor = list(parameters)[::-1], list(importance)[::-1], list(correlation)[::-1]
    colours = ["#3cb371" if c == c and c >= 0 else "#ff6b6b" for c in cor]
    text = [f"corr {c:+.2f}" if c == c else "corr n/a" for c in cor]
    error = None
    if low is not None and high is not None:
        lo, hi = list(low)[::-1], list(high)[::-1]
        error = dict(type="data", symmetric=False, array=[h - v for h, v in zip(hi, imp)],
                     arrayminus=[v - w for v, w in zip(imp, lo)])
    fig = go.Figure(go.Bar(x=imp, y=names, orientation="h", marker_color=colours, text=text,
                           textposition="auto", error_x=error,
                           hovertemplate="%{y}<br>importance %{x:.3f}<br>%{text}<extra></extra>"))
    if floor is not None:
        fig.add_vline(x=floor, line_dash="dash", line_color="#888888",
                      annotation_text="noise floor", annotation_position="bottom right")
    fig.update_layout(title=f"Parameter importance for {metric}", xaxis_title="importance "
                      "(random forest)", height=80 + 28 * len(names), **_LAYOUT)
    return fig


def sanity_curves(rows) -> go.Figure:
    """Rank correlation of each method's map with its trained-model map as layers are
    randomised top-down (rows: step, randomised, method, spearman, ssim)."""
    fig = go.Figure()
    for method, part in rows.groupby("method", sort=False):
        fig.add_trace(go.Scatter(x=part["step"], y=part["spearman"], mode="lines+markers",
                                 name=method, customdata=part[["randomised", "ssim"]],
                                 hovertemplate="%{customdata[0]} random<br>Spearman %{y:.2f}"
                                               "<br>SSIM %{customdata[1]:.2f}"))
    steps = rows.drop_duplicates("step")
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=40, b=10),
                      title="Map similarity to the trained model's, layers randomised top-down",
                      yaxis=dict(title="Spearman rank correlation", range=[-1, 1]),
                      xaxis=dict(title="randomised down to", tickvals=steps["step"],
                                 ticktext=steps["randomised"]))
    return fig


def object_timeline(frames: Sequence[int], times: Sequence[float], objects: Sequence[int],
                    names: Sequence[str], areas: Sequence[float],
                    colors: dict[int, tuple[int, int, int]]) -> go.Figure:
    """When each tracked object is on screen (a strip per object, named with its id, one mark
    per frame it is seen, a dotted line where it was hidden and then found again) above its
    area over time; rows share the time axis."""
    from plotly.subplots import make_subplots  # heavy: imported on first use
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.45, 0.55],
                        vertical_spacing=0.06)
    order = list(dict.fromkeys(objects))
    for obj in order:
        keep = [i for i, o in enumerate(objects) if o == obj]
        name = f"{names[keep[0]]} #{obj}"
        color = "rgb({},{},{})".format(*colors[obj])
        x = [times[i] for i in keep]
        seen = sorted(keep, key=lambda i: frames[i])
        step = min((frames[b] - frames[a] for a, b in zip(seen, seen[1:])), default=1)
        for a, b in zip(seen, seen[1:]):          # hidden between two sightings
            if frames[b] - frames[a] > step:
                fig.add_trace(go.Scatter(
                    x=[times[a], times[b]], y=[name, name], mode="lines", name="hidden",
                    legendgroup="hidden", showlegend=False, hoverinfo="text",
                    hovertext=f"{name}: hidden, frames {frames[a] + 1}–{frames[b] - 1}",
                    line=dict(color=color, dash="dot", width=1)), row=1, col=1)
        fig.add_trace(go.Scattergl(x=x, y=[name] * len(keep), mode="markers", name=name,
                                   legendgroup=str(obj), marker=dict(color=color, size=6,
                                                                     symbol="line-ns-open"),
                                   customdata=[frames[i] for i in keep],
                                   hovertemplate="%{y}: frame %{customdata} (%{x:.2f} s)"
                                                 "<extra></extra>"), row=1, col=1)
        fig.add_trace(go.Scattergl(x=x, y=[areas[i] for i in keep], mode="markers",
                                   name=name, legendgroup=str(obj), showlegend=False,
                                   marker=dict(color=color, size=3),
                                   hovertemplate="%{x:.2f} s: %{y} px<extra></extra>"),
                      row=2, col=1)
    fig.update_yaxes(title_text="area (px)", row=2, col=1)
    fig.update_xaxes(title_text="time (s)", row=2, col=1)
    fig.update_layout(height=260 + 24 * len(order), **_LAYOUT)
    return fig


def interval_whiskers(rows: Sequence[dict], keys: Sequence[str],
                      title: str = "Leaderboard with 95% intervals") -> go.Figure:
    """One marker per (model, metric) with its interval as asymmetric whiskers; `rows`:
    {"model", key, f"{key} low", f"{key} high"} per model."""
    fig = go.Figure()
    for row in rows:
        values = [row[k] for k in keys]
        fig.add_trace(go.Scatter(
            x=list(keys), y=values, mode="markers", name=row["model"], marker_size=10,
            error_y=dict(type="data", symmetric=False,
                         array=[row[f"{k} high"] - row[k] for k in keys],
                         arrayminus=[row[k] - row[f"{k} low"] for k in keys])))
    fig.update_layout(title=title, yaxis_title="value", scattermode="group", **_LAYOUT)
    return fig


def delta_bars(labels: Sequence[str], delta: Sequence[float], low: Sequence[float],
               high: Sequence[float], title: str) -> go.Figure:
    """Horizontal bars of a difference per item (B − A) with its interval; an interval that
    holds 0 is drawn grey."""
    colors = ["#888888" if lo <= 0 <= hi else ("#3fb950" if d > 0 else "#f85149")
              for d, lo, hi in zip(delta, low, high)]
    fig = go.Figure(go.Bar(
        x=list(delta), y=list(labels), orientation="h", marker_color=colors,
        error_x=dict(type="data", symmetric=False,
                     array=[h - d for d, h in zip(delta, high)],
                     arrayminus=[d - lo for d, lo in zip(delta, low)])))
    fig.update_layout(title=title, xaxis_title="B − A", height=80 + 24 * len(labels),
                      yaxis_autorange="reversed", **_LAYOUT)
    return fig


def reliability_diagram(curves: Sequence[tuple[str, Sequence[float], Sequence[float],
                                               Sequence[int]]],
                        title: str = "Reliability (IoU 0.5)") -> go.Figure:
    """Precision against mean confidence per confidence bin, one line per (name, confidence,
    precision, detections); the diagonal is perfect calibration; marker size grows with the
    bin's detections."""
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="calibrated",
                               line=dict(dash="dash", color="#888888")))
    for name, conf, precision, count in curves:
        total = max(sum(count), 1)
        fig.add_trace(go.Scatter(
            x=list(conf), y=list(precision), mode="lines+markers", name=name,
            marker_size=[6 + 24 * (c / total) ** 0.5 for c in count],
            customdata=list(count),
            hovertemplate="confidence %{x:.2f}<br>precision %{y:.2f}<br>%{customdata} "
                          "detections<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="mean confidence in bin",
                      yaxis_title="precision in bin", xaxis_range=[0, 1], yaxis_range=[0, 1.02],
                      **_LAYOUT)
    return fig


def metric_trend(x: Sequence[float], y: Sequence[float], fit_x: Sequence[float],
                 fit_y: Sequence[float], parameter: str, metric: str, log_x: bool,
                 r2: float) -> go.Figure:
    """A metric against one parameter, a point per run, with a fitted curve."""
    fig = go.Figure([
        go.Scatter(x=list(x), y=list(y), mode="markers", name="runs", marker_size=7,
                   marker_opacity=0.7),
        go.Scatter(x=list(fit_x), y=list(fit_y), mode="lines", name=f"quadratic fit, "
                   f"R² {r2:.2f}", line=dict(width=3))])
    fig.update_layout(title=f"{metric} against {parameter}", xaxis_title=parameter,
                      yaxis_title=metric, xaxis_type="log" if log_x else "linear", **_LAYOUT)
    return fig


def corruption_heatmap(values: np.ndarray, corruptions: Sequence[str],
                       severities: Sequence[int], title: str, value_name: str,
                       marks: np.ndarray | None = None) -> go.Figure:
    """A corruption × severity grid of one number (0-1, shown as %), e.g. a class's
    probability or AP. `marks`: cells to flag with a ✕ (e.g. where top-1 changed)."""
    text = [[f"{v:.0%}" + (" ✕" if marks is not None and marks[r, c] else "")
             for c, v in enumerate(row)] for r, row in enumerate(np.asarray(values))]
    fig = go.Figure(go.Heatmap(
        z=values, x=[f"severity {s}" for s in severities], y=list(corruptions), zmin=0,
        zmax=1, colorscale="Viridis", text=text, texttemplate="%{text}",
        hovertemplate=f"%{{y}} at %{{x}}<br>{value_name} %{{z:.1%}}<extra></extra>"))
    fig.update_layout(title=title, yaxis_autorange="reversed",
                      height=max(300, 26 * len(corruptions) + 120), **_LAYOUT)
    return fig


def embedding_map(x: np.ndarray, y: np.ndarray, rows: np.ndarray, colour: Sequence,
                  colour_name: str, selected: Collection[int] = (), title: str = "") -> go.Figure:
    """Points of an embedding map drawn with WebGL (`Scattergl`; numpy columns go to the
    browser as binary arrays): one trace per category when `colour` is text, one colour scale
    when it is numeric. Each point carries its row (`customdata`) for selections; `selected`
    rows are drawn selected."""
    x, y, rows = np.asarray(x, np.float32), np.asarray(y, np.float32), np.asarray(rows)
    colour = np.asarray(colour)
    chosen = np.isin(rows, np.fromiter(selected, np.int64)) if len(selected) else None
    hover = f"row %{{customdata}}<br>{colour_name} %{{meta}}<extra></extra>"
    fig = go.Figure()
    if colour.dtype.kind in "if":
        fig.add_trace(go.Scattergl(
            x=x, y=y, customdata=rows, mode="markers", name=colour_name,
            marker=dict(size=5, color=colour.astype(np.float32), colorscale="Viridis",
                        showscale=True, colorbar=dict(title=colour_name)),
            hovertemplate=f"row %{{customdata}}<br>{colour_name} %{{marker.color:.3f}}"
                          "<extra></extra>",
            selectedpoints=np.flatnonzero(chosen) if chosen is not None else None))
    else:
        for value in sorted(set(colour.tolist())):
            keep = colour == value
            fig.add_trace(go.Scattergl(
                x=x[keep], y=y[keep], customdata=rows[keep], mode="markers",
                name=str(value) or "(none)", meta=str(value), marker=dict(size=5),
                hovertemplate=hover,
                selectedpoints=np.flatnonzero(chosen[keep]) if chosen is not None else None))
    fig.update_layout(title=title, dragmode="lasso", height=520, xaxis_visible=False,
                      yaxis_visible=False, legend_title_text=colour_name, **_LAYOUT)
    return fig
