"""The Jinja2 template of the nightly HTML page. A Python string, so a wheel install carries it."""

TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>orin-trt nightly #{{ run.id }}: {{ verdict }}</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 24px; color: #1f2328; }
  h1 { margin-bottom: 4px; }
  .meta { color: #57606a; font-size: 14px; }
  .verdict { display: inline-block; padding: 6px 14px; border-radius: 6px; font-weight: bold; color: white; }
  .verdict.OK { background: #1a7f37; }
  .verdict.REGRESSION { background: #d1242f; }
  table { border-collapse: collapse; margin: 8px 0 20px; font-size: 13px; }
  th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
  th { background: #f6f8fa; }
  tr.failed td, tr.regressed td { background: #ffebe9; }
  tr.improved td { background: #dafbe1; }
  img { max-width: 100%; border: 1px solid #d0d7de; margin: 6px 0; }
  .tradeoffs { display: flex; flex-wrap: wrap; gap: 12px; }
  pre { background: #f6f8fa; padding: 8px; font-size: 12px; overflow-x: auto; }
</style>
</head>
<body>
<h1>orin-trt nightly #{{ run.id }} <span id="verdict" class="verdict {{ verdict }}">{{ verdict }}</span></h1>
<p class="meta">
  started {{ run.started_utc.strftime("%Y-%m-%d %H:%M UTC") }} on {{ run.host or "?" }} ·
  git {{ (run.git_commit or "?")[:12] }} · L4T {{ run.l4t or "n/a" }} · builder {{ run.trt_version or "n/a" }} ·
  power mode {{ run.power_mode or "n/a" }} · exit code {{ run.exit_code }}
</p>

<h2>Regressions and failures ({{ flagged | length }})</h2>
{% if flagged %}
<table id="regressions">
  <tr><th>engine</th><th>metric</th><th>baseline (median)</th><th>tonight</th><th>change</th>
      <th>allowed (noise)</th><th>what changed since the last good run; tonight's conditions</th></tr>
  {% for d in flagged %}
  <tr class="{{ d.status }}">
    <td>{{ d.engine }}</td><td>{{ d.metric }}</td>
    {% if d.status == "failed" %}
    <td colspan="4">{{ d.message }}</td>
    {% else %}
    <td>{{ fmt(d.baseline) }} ({{ d.runs }} runs)</td><td>{{ fmt(d.current) }}</td>
    <td>{{ "%+.1f%%" | format(d.change_pct) }}</td><td>&plusmn;{{ fmt(d.threshold, 3) }} ({{ fmt(d.noise, 3) }})</td>
    {% endif %}
    <td>{{ d.changed | join(", ") or "nothing recorded" }}</td>
  </tr>
  {% endfor %}
</table>
{% else %}
<p>None: every judged metric is within its noise band of the baseline.</p>
{% endif %}

{% if improved %}
<h2>Improvements ({{ improved | length }})</h2>
<table id="improvements">
  <tr><th>engine</th><th>metric</th><th>baseline</th><th>tonight</th><th>change</th><th>what changed</th></tr>
  {% for d in improved %}
  <tr class="improved"><td>{{ d.engine }}</td><td>{{ d.metric }}</td><td>{{ fmt(d.baseline) }}</td>
    <td>{{ fmt(d.current) }}</td><td>{{ "%+.1f%%" | format(d.change_pct) }}</td>
    <td>{{ d.changed | join(", ") or "nothing recorded" }}</td></tr>
  {% endfor %}
</table>
{% endif %}

<h2>Tonight's results</h2>
<table id="results">
  <tr><th>engine</th><th>status</th><th>latency p50 ms (runner)</th><th>worst cosine</th><th>engine MB</th>
      <th>J / inference</th><th>throttled</th><th>host load (1 min)</th><th>error</th></tr>
  {% for r in rows %}
  <tr class="{{ r.status }}">
    <td>{{ r.engine }}</td><td>{{ r.status }}</td><td>{{ r.latency }}</td><td>{{ r.cosine }}</td>
    <td>{{ r.engine_mb }}</td><td>{{ r.energy }}</td><td>{{ r.throttled }}</td><td>{{ r.load }}</td>
    <td>{{ r.error or "" }}</td>
  </tr>
  {% endfor %}
</table>
{% for note in notes %}<p class="meta">{{ note }}</p>{% endfor %}

<h2>Trends</h2>
{% for engine, png in trends %}
<img class="trend" alt="trends of {{ engine }}" src="data:image/png;base64,{{ png }}">
{% endfor %}

<h2>Latency against accuracy</h2>
<div class="tradeoffs">
{% for model, png in tradeoffs %}
<img class="tradeoff" alt="latency against accuracy for {{ model }}" src="data:image/png;base64,{{ png }}">
{% else %}
<p>No model produced both a latency and an accuracy tonight.</p>
{% endfor %}
</div>

<h2>Batch sweep</h2>
<div class="tradeoffs">
{% for label, png in sweeps %}
<img class="sweep" alt="batch sweep of {{ label }}" src="data:image/png;base64,{{ png }}">
{% else %}
<p>No engine ran at more than one batch size tonight.</p>
{% endfor %}
</div>

<h2>TensorRT depth</h2>
{% if depth %}
<table id="depth">
  <tr><th>engine</th><th>p50 ms</th><th>CUDA graph p50 ms</th><th>H2D / compute / D2H ms</th><th>avg W</th>
      <th>J / inference</th><th>RAM MB</th><th>throttling</th><th>layer precisions</th><th>reformat layers</th>
      <th>devices</th><th>top layers</th></tr>
  {% for d in depth %}
  <tr><td>{{ d.engine }}</td><td>{{ d.p50 }}</td><td>{{ d.graph_p50 }}</td><td>{{ d.split }}</td><td>{{ d.power }}</td>
      <td>{{ d.energy }}</td><td>{{ d.ram }}</td><td>{{ d.throttle }}</td><td>{{ d.precisions }}</td>
      <td>{{ d.reformats }}</td><td>{{ d.devices }}</td><td>{{ d.top }}</td></tr>
  {% endfor %}
</table>
{% else %}
<p>Not measured tonight: TensorRT profiling depth and tegrastats run where TensorRT executes (the devkit).</p>
{% endif %}

<h2>Power state</h2>
<pre>{{ power_state | tojson(indent=2) }}</pre>
</body>
</html>
"""
