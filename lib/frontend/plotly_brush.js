// Lens: reports the brushes a visitor draws on a parallel-coordinates chart back to Python.
// The chart itself is an ordinary st.plotly_chart (WebGL); this component draws nothing. It
// finds that chart's plot element by its Streamlit key and listens to Plotly's
// `plotly_restyle` events, which Plotly emits when a brush on an axis changes. Each report is
// {version, axes: {label: [[low, high], ...]}} (an axis without a brush is left out); version
// is the one Python passed, so Python can ignore a brush it has since cleared.
export default function (component) {
  const { data, setStateValue } = component;
  const selector = `.st-key-${data.chart_key} .js-plotly-plot`;
  let timer = null;

  function report(plot) {
    const trace = (plot.data || [])[0];
    if (!trace || !trace.dimensions) return;
    const axes = {};
    for (const dim of trace.dimensions) {
      let range = dim.constraintrange;
      if (!range || !range.length) continue;
      if (!Array.isArray(range[0])) range = [range];
      axes[dim.label] = range.map((r) => [Number(r[0]), Number(r[1])]);
    }
    setStateValue("brush", { version: data.version, axes: axes });
  }

  function attach() {
    const plot = document.querySelector(selector);
    if (!plot || plot.__lensBrush || typeof plot.on !== "function") return;
    plot.__lensBrush = true;
    plot.on("plotly_restyle", () => {
      clearTimeout(timer);
      timer = setTimeout(() => report(plot), 250);   // one report per brush, not per move
    });
  }

  attach();
  const watch = setInterval(attach, 500);   // the chart is drawn (and redrawn) after us
  return () => {
    clearInterval(watch);
    clearTimeout(timer);
  };
}
