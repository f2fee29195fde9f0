// The RapidFire dashboard. It loads the experiment's history from the HTTP API, then follows /api/events (server-sent
// events) to update without reloading. Against a finished experiment it is a viewer: the same API, no events.
// Plain JavaScript, no build step; uPlot (vendor/) draws the charts.
'use strict';

(() => {
  const $ = id => document.getElementById(id);

  // ---- state --------------------------------------------------------------------------------------------------------

  const state = {
    status: null,          // StatusView of /api/status; null until loaded
    statusAt: 0,           // when it was received (this page's clock)
    reachable: true,       // whether the host answers
    runs: new Map(),       // run_id -> RunView
    metrics: new Map(),    // run_id -> { train: Map(key -> values), sorted, gap, epochs: Map(mode -> Map(epoch -> values)) }
    trainKeys: new Set(),  // metric names seen in train minibatches
    valKeys: new Set(),    // metric names seen in closed validation epochs
    icLog: new Map(),      // op_id -> ControlLogEntry
    log: [],               // experiment.log lines, oldest first
    warnings: [],
    hidden: new Set(),     // run ids hidden from the charts (legend clicks)
    sort: { key: 'run', desc: false },
    loaded: false,
  };
  const MAX_LOG = 1000;

  // ---- formatting ---------------------------------------------------------------------------------------------------

  /** A JSON number of the API: NaN and infinities arrive as strings. */
  const num = v => typeof v === 'number' ? v
    : v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity
    : v == null || v === '' ? null : Number(v);
  const finite = v => Number.isFinite(v) ? v : null;

  function fmt(value) {
    const v = num(value);
    if (v == null) return '';
    if (Number.isNaN(v)) return 'NaN';
    if (!Number.isFinite(v)) return v > 0 ? '∞' : '−∞';
    if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
    const a = Math.abs(v);
    if (a >= 1e5 || a < 1e-3) return v.toExponential(2);
    return String(Number(v.toPrecision(4)));
  }

  /** A knob's value as the CLI's tables show it: strings without quotes, anything else as JSON. */
  const knobText = v => v == null ? '' : typeof v === 'string' ? v : JSON.stringify(v);
  const knobTitle = path => path.replace('.args.', '.');
  const capitalize = s => s ? s[0].toUpperCase() + s.slice(1) : '';
  const statusText = r => capitalize(r.status) + (r.ended_by ? ` (${r.ended_by})` : '');
  const time = utc => utc ? new Date(utc).toLocaleTimeString([], { hour12: false }) : '';

  function duration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const pad = n => String(n).padStart(2, '0');
    return `${Math.floor(s / 3600)}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
  }

  // One colour per run id, the same in every chart, the legend and the table.
  const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];
  const color = id => id <= PALETTE.length ? PALETTE[id - 1] : `hsl(${Math.round((id * 137.508) % 360)} 65% 42%)`;

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'dataset') Object.assign(node.dataset, v);
      else if (k === 'style') node.style.cssText = v;
      else if (k in node) node[k] = v;
      else node.setAttribute(k, v);
    }
    node.append(...children);
    return node;
  }
  const swatch = id => el('span', { className: 'swatch', style: `background:${color(id)}` });

  // ---- the API ------------------------------------------------------------------------------------------------------

  async function call(path, options = {}) {
    const headers = { Accept: 'application/json' };
    if (options.body) headers['Content-Type'] = 'application/json';
    const response = await fetch(path, { ...options, headers });
    let body = null;
    try { body = await response.json(); } catch { /* no JSON body */ }
    return { ok: response.ok, status: response.status, body };
  }

  async function get(path) {
    const r = await call(path);
    if (!r.ok) throw new Error(r.body?.error ?? `GET ${path}: HTTP ${r.status}`);
    return r.body;
  }

  // ---- metrics ------------------------------------------------------------------------------------------------------

  function metricsOf(id) {
    let m = state.metrics.get(id);
    if (!m) {
      m = { train: new Map(), sorted: null, gap: false, epochs: new Map(), fetching: false, fetchedAt: 0 };
      state.metrics.set(id, m);
    }
    return m;
  }

  /** A minibatch point; the same (epoch, step) twice (history and event) is one point. */
  function addMinibatch(id, p) {
    if (p.mode !== 'train') return;
    const m = metricsOf(id);
    m.train.set(p.epoch * 1e7 + p.step, p.values);
    m.sorted = null;
    for (const k of Object.keys(p.values)) state.trainKeys.add(k);
  }

  function addEpoch(id, p) {
    const m = metricsOf(id);
    if (!m.epochs.has(p.mode)) m.epochs.set(p.mode, new Map());
    m.epochs.get(p.mode).set(p.epoch, p.values);
    if (p.mode === 'validation') for (const k of Object.keys(p.values)) state.valKeys.add(k);
  }

  /**
   * A run's train minibatches in order: the chart's x is their count (1, 2, 3, …). A hole between two points (events
   * sent before this page subscribed, not yet in the journal's history) is remembered, and the history is fetched again.
   */
  function trainPoints(m) {
    if (!m.sorted) {
      const keys = [...m.train.keys()].sort((a, b) => a - b);
      m.gap = keys.some((k, i) => {
        if (i === 0) return false;
        const [e0, s0, e1, s1] = [Math.floor(keys[i - 1] / 1e7), keys[i - 1] % 1e7, Math.floor(k / 1e7), k % 1e7];
        return !((e1 === e0 && s1 === s0 + 1) || (e1 === e0 + 1 && s1 === 1));
      });
      m.sorted = keys.map(k => m.train.get(k));
    }
    return m.sorted;
  }

  function addHistory(id, history) {
    for (const p of history.minibatches) addMinibatch(id, p);
    for (const p of history.epochs) addEpoch(id, p);
  }

  async function fetchMetrics(id) {
    const m = metricsOf(id);
    if (m.fetching) return;
    m.fetching = true;
    m.fetchedAt = Date.now();
    try {
      addHistory(id, await get(`/api/runs/${id}/metrics`));
      dirty('charts');
    } catch { /* the next run event tries again */ } finally {
      m.fetching = false;
    }
  }

  // ---- loading and events -------------------------------------------------------------------------------------------

  let generation = 0;
  let queue = null; // events that arrive while the history loads: applied after it

  async function reload() {
    const gen = ++generation;
    queue = [];
    try {
      const [status, runs, icLog, log] = await Promise.all([
        get('/api/status'), get('/api/runs?all=true'), get('/api/ic-log'), get('/api/log?tail=500')]);
      const histories = await Promise.all(runs.map(r => get(`/api/runs/${r.run_id}/metrics`).catch(() => null)));
      if (gen !== generation) return;
      state.status = status;
      state.statusAt = Date.now();
      state.reachable = true;
      state.runs = new Map(runs.map(r => [r.run_id, r]));
      state.metrics = new Map();
      state.trainKeys = new Set();
      state.valKeys = new Set();
      runs.forEach((r, i) => { metricsOf(r.run_id); if (histories[i]) addHistory(r.run_id, histories[i]); });
      state.icLog = new Map(icLog.map(e => [e.op_id, e]));
      state.log = log.lines;
      const known = new Set(state.log.slice(-200));
      const pending = queue;
      queue = null;
      for (const [name, data] of pending) if (!(name === 'log' && known.has(data.line))) apply(name, data);
      state.loaded = true;
      document.body.dataset.ready = 'true';
      dirty('header', 'runs', 'ic', 'log');
    } catch (e) {
      if (gen !== generation) return;
      queue = null;
      state.reachable = false;
      dirty('header');
      setTimeout(() => { if (gen === generation) reload(); }, 3000);
    }
  }

  function receive(name, data) {
    if (name === 'hello' || name === 'gap') reload(); // (re)subscribed, or events were lost: the history again
    else if (queue) queue.push([name, data]);
    else apply(name, data);
  }

  const handlers = {
    run(r) {
      const known = state.runs.has(r.run_id);
      state.runs.set(r.run_id, r);
      const m = metricsOf(r.run_id);
      trainPoints(m); // finds a hole
      if (!known || (m.gap && Date.now() - m.fetchedAt > 3000)) fetchMetrics(r.run_id);
      dirty('runs');
    },
    minibatch(p) { addMinibatch(p.run_id, p); dirty('charts'); },
    epoch(p) { addEpoch(p.run_id, p); dirty('charts'); },
    ic(e) { state.icLog.set(e.op_id, e); dirty('ic'); if (e.new_run_id) dirty('runs'); }, // a clone's parent column
    log(e) {
      state.log.push(e.line);
      if (state.log.length > MAX_LOG) state.log.splice(0, state.log.length - MAX_LOG);
      dirty('log');
    },
    warning(e) { state.warnings.push(e.message); dirty('warnings'); },
    pruned() { /* the run event shows the status; the log line says why */ },
  };

  function apply(name, data) { handlers[name]?.(data); }

  function connect() {
    const source = new EventSource('/api/events');
    for (const name of ['hello', 'gap', ...Object.keys(handlers)])
      source.addEventListener(name, ev => receive(name, JSON.parse(ev.data)));
    source.onopen = () => { $('connection').textContent = ''; };
    source.onerror = () => {
      $('connection').textContent = 'live updates interrupted, retrying…';
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 3000); // refused for good: try a new one
    };
  }

  async function pollStatus() {
    try {
      const status = await get('/api/status');
      const changed = state.status != null && state.status.fitting !== status.fitting;
      state.status = status;
      state.statusAt = Date.now();
      state.reachable = true;
      if (changed) reload(); // a fit started or ended: the runs' final states
    } catch {
      state.reachable = false;
    }
    dirty('header', 'runs');
  }

  // ---- rendering ----------------------------------------------------------------------------------------------------

  const dirtyParts = new Set();
  let renderTimer = 0;

  function dirty(...parts) {
    parts.forEach(p => dirtyParts.add(p));
    if (!renderTimer) renderTimer = setTimeout(render, 150);
  }

  function render() {
    renderTimer = 0;
    const parts = new Set(dirtyParts);
    dirtyParts.clear();
    if (parts.has('header')) renderHeader();
    if (parts.has('runs')) { renderRuns(); renderLegend(); }
    if (parts.has('runs') || parts.has('charts')) renderCharts();
    if (parts.has('ic')) renderIcLog();
    if (parts.has('log')) renderLog();
    if (parts.has('warnings')) renderWarnings();
  }

  const fitting = () => state.reachable && state.status?.fitting === true;

  function renderHeader() {
    const s = state.status;
    $('experiment-name').textContent = s?.name ?? '';
    if (s?.name) document.title = `${s.name} · RapidFire`;
    const badge = $('experiment-state');
    badge.textContent = !state.reachable ? 'host unreachable' : !s ? 'loading…' : s.fitting ? 'fitting' : 'not running';
    badge.className = 'badge' + (!state.reachable ? ' unreachable' : s?.fitting ? ' fitting' : '');
    const op = $('experiment-operation');
    if (!state.reachable) {
      op.textContent = 'its process has ended, or does not answer';
      op.title = '';
    } else if (s?.fitting) {
      // Elapsed on the server's clock: its time when it answered, plus the time since on this page's clock.
      const elapsed = Date.parse(s.server_time_utc) - Date.parse(s.started_utc) + (Date.now() - state.statusAt);
      op.textContent = s.operation + (s.started_utc ? ` · ${duration(elapsed)}` : '');
      op.title = s.summary ?? '';
    } else if (s?.ended_utc) {
      op.textContent = `last operation ended ${time(s.ended_utc)}` +
        (s.started_utc ? ` after ${duration(Date.parse(s.ended_utc) - Date.parse(s.started_utc))}` : '');
      op.title = s.summary ?? '';
    } else op.textContent = '';
  }

  // The runs table keeps one row element per run and updates its cells: a click on a button is never lost to a redraw.
  const table = { signature: '', rows: new Map(), columns: [] };

  function shownRuns() {
    const showDeleted = $('show-deleted').checked;
    return [...state.runs.values()].filter(r => showDeleted || r.status !== 'deleted');
  }

  function knobColumns(runs) {
    const paths = [];
    for (const r of runs) for (const k of Object.keys(r.knobs)) if (!paths.includes(k)) paths.push(k);
    if ($('all-knobs').checked || runs.length < 2) return paths;
    return paths.filter(k => new Set(runs.map(r => JSON.stringify(r.knobs[k] ?? null))).size > 1);
  }

  function columnsFor(runs) {
    const validation = [];
    for (const r of runs) for (const k of Object.keys(r.validation ?? {})) if (!validation.includes(k)) validation.push(k);
    validation.sort((a, b) => (a !== 'loss') - (b !== 'loss') || a.localeCompare(b));
    const progress = r => r.max_epochs && r.chunks_per_epoch
      ? (r.epochs_done * r.chunks_per_epoch + (r.status === 'completed' ? 0 : r.chunks_done)) / (r.max_epochs * r.chunks_per_epoch) : 0;
    return [
      { key: 'run', title: 'run', sort: r => r.run_id, text: r => String(r.run_id),
        build: (td, r) => td.append(swatch(r.run_id), String(r.run_id)) },
      { key: 'status', title: 'status', sort: r => statusText(r), text: r => statusText(r),
        build: (td, r) => { td.className = `status-${r.status}`; td.title = r.error ?? ''; td.textContent = statusText(r); } },
      { key: 'progress', title: 'progress', sort: progress, text: r => `${r.progress}|${progress(r)}`,
        build: (td, r) => td.append(r.progress, el('span', { className: 'progress' },
          el('span', { style: `width:${Math.round(100 * Math.min(1, progress(r)))}%` }))) },
      ...(runs.some(r => parentOf(r.run_id)) ? [{ key: 'parent', title: 'parent', sort: r => parentOf(r.run_id)?.run_id ?? null,
        text: r => parentText(parentOf(r.run_id)), build: (td, r) => {
          const op = parentOf(r.run_id);
          td.dataset.testid = `run-parent-${r.run_id}`; td.title = op?.origin ?? ''; td.textContent = parentText(op);
        } }] : []),
      ...knobColumns(runs).map(k => ({ key: `knob:${k}`, title: knobTitle(k), sort: r => r.knobs[k] ?? null, text: r => knobText(r.knobs[k]) })),
      { key: 'train_loss', title: 'train loss', numeric: true, sort: r => num(r.train_loss), text: r => fmt(r.train_loss) },
      ...validation.map(k => ({ key: `val:${k}`, title: `val ${k}`, numeric: true, sort: r => num(r.validation?.[k]), text: r => fmt(r.validation?.[k]) })),
    ];
  }

  /** The IC operation that created run `runId` (a clone, by a user or by PBT), from the IC log; null for a run of the group. */
  function parentOf(runId) {
    for (const e of state.icLog.values()) if (e.new_run_id === runId && e.status === 'applied') return e;
    return null;
  }

  /** A clone's parent as the runs table shows it: `4 (warm, pbt)`. */
  function parentText(op) {
    if (!op) return '';
    const how = [op.operation === 'clone-warm' ? 'warm' : null, op.origin ? op.origin.split(' ')[0] : null].filter(Boolean);
    return how.length ? `${op.run_id} (${how.join(', ')})` : String(op.run_id);
  }

  function compare(a, b) {
    const missing = v => v == null || (typeof v === 'number' && Number.isNaN(v));
    if (missing(a) || missing(b)) return missing(a) - missing(b); // missing last, whatever the direction
    if (typeof a === 'number' && typeof b === 'number') return a - b;
    return String(typeof a === 'string' ? a : JSON.stringify(a)).localeCompare(String(typeof b === 'string' ? b : JSON.stringify(b)), undefined, { numeric: true });
  }

  function renderRuns() {
    const runs = shownRuns();
    const columns = columnsFor(runs);
    const signature = columns.map(c => c.key).join('\u0000');
    const thead = $('runs-table').tHead.rows[0];
    const tbody = $('runs-table').tBodies[0];
    if (signature !== table.signature) {
      table.signature = signature;
      table.columns = columns;
      table.rows.clear();
      tbody.replaceChildren();
      thead.replaceChildren(...columns.map(c => el('th', { dataset: { key: c.key }, title: 'sort', onclick: () => sortBy(c.key) }, c.title)),
        el('th', { className: 'actions' }, 'control'));
    } else table.columns = columns; // same keys; their closures see the current runs
    for (const th of thead.cells) {
      th.classList.toggle('sorted', th.dataset.key === state.sort.key);
      th.classList.toggle('desc', th.dataset.key === state.sort.key && state.sort.desc);
    }

    const column = columns.find(c => c.key === state.sort.key) ?? columns[0];
    const sorted = [...runs].sort((a, b) => {
      const [va, vb] = [column.sort(a), column.sort(b)];
      const missing = v => v == null || (typeof v === 'number' && Number.isNaN(v));
      const order = missing(va) || missing(vb) ? compare(va, vb) : (state.sort.desc ? -1 : 1) * compare(va, vb);
      return order || a.run_id - b.run_id;
    });

    const terms = $('runs-filter').value.toLowerCase().split(/\s+/).filter(Boolean);
    const live = new Set(runs.map(r => r.run_id));
    for (const [id, row] of table.rows) if (!live.has(id)) { row.remove(); table.rows.delete(id); }
    let shown = 0;
    sorted.forEach((r, i) => {
      const row = table.rows.get(r.run_id) ?? newRow(r);
      updateRow(row, r, columns);
      const text = [...columns.map(c => c.text(r)), ...Object.entries(r.knobs).map(([k, v]) => `${knobTitle(k)}=${knobText(v)}`)]
        .join(' ').toLowerCase();
      row.hidden = !terms.every(t => text.includes(t));
      if (!row.hidden) shown++;
      if (tbody.rows[i] !== row) tbody.insertBefore(row, tbody.rows[i] ?? null);
    });
    $('runs-empty').hidden = state.runs.size > 0;
    $('runs-count').textContent = runs.length ? `${shown} of ${runs.length} runs` : '';
  }

  function sortBy(key) {
    state.sort = { key, desc: state.sort.key === key ? !state.sort.desc : false };
    renderRuns();
  }

  function newRow(r) {
    const id = r.run_id;
    const button = (op, label) => el('button', { type: 'button', dataset: { op, testid: `${op}-run-${id}` }, onclick: () => operate(id, op) }, label);
    const row = el('tr', { dataset: { runId: id, testid: `run-row-${id}` } },
      ...table.columns.map(c => el('td', { className: c.numeric ? 'num' : '', dataset: { key: c.key } })),
      el('td', { className: 'actions' }, button('stop', 'Stop'), button('resume', 'Resume'), button('delete', 'Delete'), button('clone', 'Clone…')));
    row.cells[1].dataset.testid = `run-status-${id}`;
    table.rows.set(id, row);
    return row;
  }

  function updateRow(row, r, columns) {
    columns.forEach((c, i) => {
      const td = row.cells[i];
      const text = c.text(r);
      if (td.dataset.text === text) return;
      td.dataset.text = text;
      if (c.build) { td.replaceChildren(); c.build(td, r); } else td.textContent = text;
    });
    row.classList.toggle('deleted', r.status === 'deleted');
    const live = fitting();
    const why = live ? '' : 'the experiment is not running';
    for (const b of row.querySelectorAll('td.actions button')) {
      const applies = { stop: ['new', 'ongoing'].includes(r.status), resume: r.status === 'stopped' }[b.dataset.op] ?? r.status !== 'deleted';
      b.disabled = !live || !applies;
      b.title = why;
    }
  }

  // Rebuilt only when what it shows changes: a button replaced under the pointer (every chunk updates the runs) loses
  // the click that landed on it.
  let legendSignature = '';
  function renderLegend() {
    const runs = shownRuns();
    const signature = JSON.stringify(runs.map(r => [r.run_id, r.knobs, state.hidden.has(r.run_id)]));
    if (signature === legendSignature) return;
    legendSignature = signature;
    $('legend').replaceChildren(...runs.map(r => {
      const knobs = Object.entries(r.knobs).map(([k, v]) => `${knobTitle(k)}=${knobText(v)}`).join(', ');
      return el('button', {
        type: 'button', title: `run ${r.run_id}: ${knobs}\n(click to hide or show in the charts)`,
        dataset: { testid: `legend-run-${r.run_id}` }, 'aria-pressed': String(!state.hidden.has(r.run_id)),
        onclick: () => {
          if (!state.hidden.delete(r.run_id)) state.hidden.add(r.run_id);
          renderLegend();
          renderCharts();
        },
      }, swatch(r.run_id), `run ${r.run_id}`);
    }));
  }

  // ---- charts -------------------------------------------------------------------------------------------------------

  const charts = {
    train: { el: $('train-chart'), select: $('train-metric'), readout: $('train-readout'), x: 'train minibatch', keys: () => state.trainKeys,
      empty: 'No train minibatches yet.', plot: null, signature: '' },
    val: { el: $('val-chart'), select: $('val-metric'), readout: $('val-readout'), x: 'epoch', keys: () => state.valKeys,
      empty: 'No validation epochs yet.', plot: null, signature: '' },
  };

  function seriesData(chart, ids, metric) {
    if (chart === charts.train) {
      const ys = ids.map(id => trainPoints(metricsOf(id)).map(v => finite(num(v[metric]))));
      const n = Math.max(0, ...ys.map(y => y.length));
      return [Array.from({ length: n }, (_, i) => i + 1), ...ys.map(y => Array.from({ length: n }, (_, i) => y[i] ?? null))];
    }
    const epochs = ids.map(id => metricsOf(id).epochs.get('validation') ?? new Map());
    const n = Math.max(0, ...epochs.flatMap(e => [...e.keys()]));
    const x = Array.from({ length: n }, (_, i) => i + 1);
    return [x, ...epochs.map(e => x.map(epoch => finite(num(e.get(epoch)?.[metric]))))];
  }

  function updateSelect(chart) {
    const keys = [...chart.keys()].sort((a, b) => (a !== 'loss') - (b !== 'loss') || a.localeCompare(b));
    const current = [...chart.select.options].map(o => o.value);
    if (keys.join('\u0000') !== current.join('\u0000')) {
      const selected = chart.select.value;
      chart.select.replaceChildren(...keys.map(k => el('option', { value: k }, k)));
      chart.select.value = keys.includes(selected) ? selected : keys[0] ?? '';
    }
    return chart.select.value;
  }

  function renderChart(chart) {
    const ids = shownRuns().map(r => r.run_id);
    const metric = updateSelect(chart);
    const data = seriesData(chart, ids, metric);
    const points = data.slice(1).reduce((n, y) => n + y.filter(v => v != null).length, 0);
    chart.el.dataset.series = String(metric && data[0].length ? ids.length : 0);
    chart.el.dataset.points = String(points);
    chart.el.dataset.metric = metric;
    if (!metric || data[0].length === 0) {
      chart.plot?.destroy();
      chart.plot = null;
      chart.signature = '';
      chart.el.replaceChildren(el('div', { className: 'empty' }, chart.empty));
      return;
    }
    const signature = `${metric}|${ids.join(',')}`;
    if (!chart.plot || signature !== chart.signature) {
      chart.plot?.destroy();
      chart.el.replaceChildren();
      chart.signature = signature;
      chart.plot = new uPlot(chartOptions(chart, ids, metric), data, chart.el);
    } else chart.plot.setData(data);
    ids.forEach((id, i) => {
      if (chart.plot.series[i + 1].show === state.hidden.has(id)) chart.plot.setSeries(i + 1, { show: !state.hidden.has(id) });
    });
    chart.el.dataset.visibleSeries = String(ids.filter(id => !state.hidden.has(id)).length);
  }

  function chartOptions(chart, ids, metric) {
    const axis = { stroke: '#6b7385', grid: { stroke: '#eef0f4' }, ticks: { stroke: '#dde1e8' } };
    const counts = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6]; // x is a count: whole ticks
    return {
      width: Math.max(300, chart.el.clientWidth),
      height: 280,
      legend: { show: false },
      scales: { x: { time: false } },
      cursor: { drag: { x: true, y: false } },
      axes: [{ ...axis, label: chart.x, incrs: counts }, { ...axis, label: metric, size: 64, values: (u, ticks) => ticks.map(fmt) }],
      series: [{ label: chart.x }, ...ids.map(id => ({
        label: `run ${id}`, stroke: color(id), width: 1.5, show: !state.hidden.has(id), value: (u, v) => fmt(v),
        points: chart === charts.val ? { show: true, size: 6 } : {},
      }))],
      hooks: { setCursor: [u => readout(chart, u, ids)] },
    };
  }

  function readout(chart, u, ids) {
    const i = u.cursor.idx;
    if (i == null) { chart.readout.textContent = ''; return; }
    const values = ids.map((id, s) => [id, u.data[s + 1][i]]).filter(([id, v]) => v != null && !state.hidden.has(id));
    chart.readout.textContent = `${chart.x} ${u.data[0][i]}: ` + values.map(([id, v]) => `run ${id} ${fmt(v)}`).join(' · ');
  }

  function renderCharts() {
    renderChart(charts.train);
    renderChart(charts.val);
  }

  // ---- logs ---------------------------------------------------------------------------------------------------------

  function renderLog() {
    const pre = $('experiment-log');
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = state.log.join('\n');
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }

  function renderIcLog() {
    const entries = [...state.icLog.values()].sort((a, b) => b.op_id - a.op_id); // newest first
    $('ic-log').tBodies[0].replaceChildren(...entries.map(e => el('tr', { className: `status-${e.status}` },
      el('td', {}, String(e.op_id)), el('td', { title: e.requested_utc }, time(e.requested_utc)), el('td', {}, String(e.run_id)),
      el('td', {}, e.operation + (e.origin ? ' (automatic)' : '')), el('td', { title: e.origin || '' }, e.arguments), el('td', {}, e.status),
      el('td', {}, e.outcome + (e.new_run_id && !e.outcome.includes(`run ${e.new_run_id}`) ? ` (new run ${e.new_run_id})` : '') +
        (e.origin ? `; ${e.origin}` : '')))));
  }

  function renderWarnings() {
    const box = $('warnings');
    box.hidden = state.warnings.length === 0;
    box.textContent = state.warnings.slice(-5).map(w => `warning: ${w}`).join('\n');
  }

  // ---- IC operations ------------------------------------------------------------------------------------------------

  function outcomeText(r) {
    const o = r.body;
    if (o && 'op_id' in o) {
      const newRun = o.new_run_id && !o.message.includes(`run ${o.new_run_id}`) ? ` (new run ${o.new_run_id})` : '';
      return { text: `op ${o.op_id}: ${o.operation} run ${o.run_id}: ${o.status} — ${o.message}${newRun}`, rejected: o.status === 'rejected' };
    }
    return { text: o?.error ?? `the host answered HTTP ${r.status}`, rejected: true };
  }

  function showMessage(box, { text, rejected }) {
    box.hidden = false;
    box.textContent = text;
    box.classList.toggle('rejected', rejected);
  }

  async function post(id, op, body) {
    try {
      const r = await call(`/api/runs/${id}/${op}`, { method: 'POST', body: body ? JSON.stringify(body) : undefined });
      const outcome = outcomeText(r);
      showMessage($('control-message'), outcome);
      return { ok: r.ok, outcome };
    } catch (e) {
      const outcome = { text: `run ${id} ${op}: the experiment's host did not answer (${e.message})`, rejected: true };
      showMessage($('control-message'), outcome);
      return { ok: false, outcome };
    }
  }

  async function operate(id, op) {
    if (op === 'clone') return openClone(id);
    if (op === 'delete' && !confirm(`Delete run ${id}? It ends Deleted and leaves the live views (its files stay).`)) return;
    await post(id, op);
  }

  function openClone(id) {
    const run = state.runs.get(id);
    if (!run) return;
    const dialog = $('clone-dialog');
    dialog.dataset.runId = id;
    $('clone-parent').textContent = id;
    $('clone-warm').checked = false;
    $('clone-message').hidden = true;
    $('clone-knobs').tBodies[0].replaceChildren(...Object.entries(run.knobs).map(([path, value]) => {
      const original = knobText(value);
      const input = el('input', { value: original, dataset: { path, original, testid: `clone-knob-${path}` }, 'aria-label': path,
        oninput: () => input.classList.toggle('changed', input.value !== original) });
      return el('tr', {}, el('td', {}, path), el('td', {}, input));
    }));
    dialog.showModal();
  }

  async function submitClone(event) {
    event.preventDefault();
    const dialog = $('clone-dialog');
    const set = {};
    for (const input of $('clone-knobs').querySelectorAll('input'))
      if (input.value !== input.dataset.original) set[input.dataset.path] = input.value;
    $('clone-submit').disabled = true;
    try {
      const { ok, outcome } = await post(Number(dialog.dataset.runId), 'clone', { set, warm: $('clone-warm').checked });
      if (ok) dialog.close();
      else showMessage($('clone-message'), outcome);
    } finally {
      $('clone-submit').disabled = false;
    }
  }

  // ---- start --------------------------------------------------------------------------------------------------------

  $('runs-filter').addEventListener('input', renderRuns);
  for (const id of ['show-deleted', 'all-knobs']) $(id).addEventListener('change', () => { renderRuns(); renderLegend(); renderCharts(); });
  for (const chart of Object.values(charts)) chart.select.addEventListener('change', () => renderChart(chart));
  $('clone-form').addEventListener('submit', submitClone);
  $('clone-cancel').addEventListener('click', () => $('clone-dialog').close());
  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      for (const chart of Object.values(charts)) chart.plot?.setSize({ width: Math.max(300, chart.el.clientWidth), height: 280 });
    }, 100);
  });

  connect();
  setTimeout(() => { if (!state.loaded && queue === null) reload(); }, 2000); // no event stream: load anyway
  setInterval(pollStatus, 2000);
  setInterval(() => { if (state.status?.fitting) renderHeader(); }, 1000);

  window.rapidfire = { state, charts, reload };
})();
