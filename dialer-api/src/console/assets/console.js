// The operator console's page script: draws the live snapshot the server streams
// (GET /console/live, server-sent events), asks for confirmation and sends actions
// (POST /console/actions with the session's CSRF token). Data goes into the page as text
// nodes only, never as markup, so nothing a client submitted can run here.
'use strict';

(function () {
  const main = document.getElementById('console');
  if (!main) return;
  const csrf = main.dataset.csrf;
  const $ = (id) => document.getElementById(id);
  const SVG = 'http://www.w3.org/2000/svg';

  // ---- small DOM helpers ----
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function button(label, cls) {
    const b = el('button', cls, label);
    b.type = 'button';
    return b;
  }
  function num(n) {
    return Number(n).toLocaleString('en-US');
  }
  function capped(n, cap) {
    return n >= cap ? num(cap) + '+' : num(n);
  }
  function rate(n) {
    return (Math.round(n * 10) / 10).toFixed(1);
  }

  // Rows are kept per key and updated in place, so a button found a moment ago is still the
  // same button when clicked, whatever arrived in between.
  function syncRows(tbody, items, keyOf, make, update) {
    const old = new Map();
    for (const tr of Array.from(tbody.rows)) old.set(tr.dataset.key, tr);
    items.forEach((item, i) => {
      const key = keyOf(item);
      let tr = old.get(key);
      if (tr) {
        old.delete(key);
      } else {
        tr = make(item);
        tr.dataset.key = key;
      }
      update(tr, item);
      if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] || null);
    });
    for (const tr of old.values()) tr.remove();
  }

  function cells(tr, names) {
    const c = {};
    for (const n of names) {
      c[n] = el('td', n);
      tr.appendChild(c[n]);
    }
    tr.c = c;
    return c;
  }

  // ---- the result line and the confirmation dialog ----
  function showResult(kind, text) {
    const r = $('result');
    r.hidden = false;
    r.className = 'result ' + kind;
    r.textContent = text;
  }

  const dialog = $('confirm');
  let pending = null;
  function confirmThen(text, run) {
    $('confirm-text').textContent = text;
    pending = run;
    dialog.returnValue = '';
    dialog.showModal();
  }
  dialog.addEventListener('close', () => {
    const run = pending;
    pending = null;
    if (dialog.returnValue === 'ok' && run) run();
  });

  async function act(body, label) {
    showResult('pending', label + ' ...');
    try {
      const r = await fetch('/console/actions', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
        body: JSON.stringify(body),
      });
      const answer = await r.json().catch(() => ({}));
      if (r.ok) {
        showResult('ok', answer.message || 'done');
      } else if (r.status === 401) {
        location.assign('/console');
      } else {
        showResult('error', (answer.message || 'HTTP ' + r.status) + ' (' + label + ')');
      }
    } catch (e) {
      showResult('error', label + ': the console cannot be reached (' + e.message + ')');
    }
  }

  function action(btn, question, body, label) {
    btn.addEventListener('click', () => confirmThen(question(), () => act(body(), label())));
  }

  // ---- batches ----
  function makeBatch(b) {
    const tr = el('tr');
    const c = cells(tr, ['account', 'batch', 'status', 'progress', 'answered', 'busy',
      'no-answer', 'failed', 'not-dialed', 'who', 'waiting', 'actions']);
    c.account.textContent = b.account;
    const bar = el('div', 'bar');
    const fill = el('div', 'fill');
    bar.appendChild(fill);
    c.progress.appendChild(bar);
    c.progress.appendChild(el('span', 'progress-text'));
    const key = b.account + '/' + b.batch_id;
    const target = { account: b.account, batch_id: b.batch_id };
    const buttons = {
      pause: button('Pause', 'pause'),
      resume: button('Resume', 'resume'),
      cancel: button('Cancel', 'cancel danger'),
      dispatch: button('Dispatch', 'dispatch'),
    };
    for (const [name, btn] of Object.entries(buttons)) {
      action(btn, () => name.charAt(0).toUpperCase() + name.slice(1) + ' batch ' + key + '?',
        () => Object.assign({ action: name }, target), () => name + ' ' + key);
      c.actions.appendChild(btn);
    }
    tr.buttons = buttons;
    return tr;
  }

  function updateBatch(tr, b) {
    const c = tr.c;
    c.batch.textContent = b.name ? b.batch_id + ' (' + b.name + ')' : String(b.batch_id);
    c.status.textContent = b.status;
    c.status.className = 'status status-' + b.status;
    const pct = b.total > 0 ? Math.round((100 * b.done) / b.total) : 0;
    const fill = c.progress.querySelector('.fill');
    fill.style.width = pct + '%';
    c.progress.querySelector('.bar').dataset.percent = String(pct);
    c.progress.querySelector('.progress-text').textContent =
      num(b.done) + ' / ' + num(b.total) + ' (' + pct + '%)';
    c.answered.textContent = num(b.answered);
    c.busy.textContent = num(b.busy);
    c['no-answer'].textContent = num(b.no_answer);
    c.failed.textContent = num(b.failed);
    c['not-dialed'].textContent = num(b.not_dialed);
    c.who.textContent = b.human + b.machine > 0 ? num(b.human) + ' / ' + num(b.machine) : '-';
    c.waiting.textContent = b.waiting_reason || '';
    const open = b.status !== 'completed' && b.status !== 'cancelled';
    tr.buttons.pause.hidden = !(b.status === 'pending' || b.status === 'dispatching');
    tr.buttons.resume.hidden = b.status !== 'paused';
    tr.buttons.cancel.hidden = !open;
    tr.buttons.dispatch.hidden = b.status !== 'pending';
  }

  // ---- accounts ----
  function makeAccount(a) {
    const tr = el('tr');
    const c = cells(tr, ['account', 'status', 'cps', 'channels', 'backlog', 'failed', 'actions']);
    c.account.textContent = a.account;
    const dispatch = button('Dispatch all', 'dispatch');
    action(dispatch, () => 'Dispatch every queued call of ' + a.account + '?',
      () => ({ action: 'dispatch', account: a.account }), () => 'dispatch ' + a.account);
    const replay = button('Replay failed callbacks', 'replay');
    action(replay, () => 'Send every failed callback of ' + a.account + ' again?',
      () => ({ action: 'replay_failed', account: a.account }), () => 'replay ' + a.account);
    c.actions.append(dispatch, replay);
    tr.replay = replay;
    return tr;
  }

  function updateAccount(tr, a, cap) {
    const c = tr.c;
    c.status.textContent = a.status;
    c.cps.textContent = rate(a.cps) + ' / ' + num(a.max_cps);
    c.channels.textContent = num(a.channels) + ' / ' + num(a.max_channels);
    c.backlog.textContent = capped(a.backlog, cap);
    c.failed.textContent = capped(a.failed_callbacks, cap);
    c.failed.classList.toggle('alert', a.failed_callbacks > 0);
    tr.replay.disabled = a.failed_callbacks === 0;
  }

  // ---- servers ----
  function makeServer(s) {
    const tr = el('tr');
    const c = cells(tr, ['server', 'state', 'cps', 'channels', 'capacity', 'holder', 'actions']);
    c.server.textContent = s.code;
    const disable = button('Disable', 'disable danger');
    action(disable, () => 'Disable server ' + s.code + '? No new call will go to it.',
      () => ({ action: 'disable_server', server: s.code }), () => 'disable ' + s.code);
    const enable = button('Enable', 'enable');
    action(enable, () => 'Enable server ' + s.code + '?',
      () => ({ action: 'enable_server', server: s.code }), () => 'enable ' + s.code);
    c.actions.append(disable, enable);
    tr.toggle = { disable, enable };
    return tr;
  }

  function updateServer(tr, s) {
    const c = tr.c;
    c.state.textContent = s.state.replace('_', ' ');
    c.state.className = 'state state-' + s.state;
    c.cps.textContent = rate(s.cps) + ' / ' + num(s.max_cps);
    c.channels.textContent = num(s.channels) + ' / ' + num(s.max_channels);
    c.capacity.textContent =
      s.capacity_factor === null ? '-' : Math.round(s.capacity_factor * 100) + '%';
    c.holder.textContent = s.holder || '-';
    tr.toggle.disable.hidden = !s.enabled;
    tr.toggle.enable.hidden = s.enabled;
  }

  // ---- audit ----
  function renderAudit(entries) {
    const rows = entries.map((e) => {
      const tr = el('tr', 'result-' + e.result);
      for (const v of [new Date(e.at).toLocaleTimeString(), e.operator, e.action, e.target,
        e.result, e.detail]) {
        tr.appendChild(el('td', null, v));
      }
      return tr;
    });
    $('audit').tBodies[0].replaceChildren(...rows);
  }

  // ---- plots ----
  function svgEl(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Lines over the last hour; nulls break a line. `lines`: [{values, cls}].
  function plot(svg, lines, unit) {
    const W = 640, H = 180, L = 48, R = 8, T = 10, B = 22;
    const all = lines.flatMap((l) => l.values).filter((v) => v !== null);
    const max = Math.max(1, ...all);
    const n = Math.max(1, ...lines.map((l) => l.values.length));
    const x = (i) => L + ((W - L - R) * i) / Math.max(1, n - 1);
    const y = (v) => H - B - ((H - T - B) * v) / max;
    const parts = [
      svgEl('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, class: 'axis' }),
      svgEl('line', { x1: L, y1: T, x2: L, y2: H - B, class: 'axis' }),
      svgEl('text', { x: L - 4, y: T + 8, class: 'tick', 'text-anchor': 'end' },
        (max >= 10 ? Math.round(max) : rate(max)) + unit),
      svgEl('text', { x: L - 4, y: H - B, class: 'tick', 'text-anchor': 'end' }, '0'),
      svgEl('text', { x: L, y: H - 6, class: 'tick' }, '-60 min'),
      svgEl('text', { x: W - R, y: H - 6, class: 'tick', 'text-anchor': 'end' }, 'now'),
    ];
    for (const line of lines) {
      let points = [];
      const flush = () => {
        if (points.length > 1) {
          parts.push(svgEl('polyline', { points: points.join(' '), class: 'line ' + line.cls }));
        } else if (points.length === 1) {
          const [px, py] = points[0].split(',');
          parts.push(svgEl('circle', { cx: px, cy: py, r: 2, class: 'dot ' + line.cls }));
        }
        points = [];
      };
      line.values.forEach((v, i) => {
        if (v === null) flush();
        else points.push(x(i).toFixed(1) + ',' + y(v).toFixed(1));
      });
      flush();
    }
    svg.replaceChildren(...parts);
  }

  function legend(fig, items) {
    const span = fig.querySelector('.legend');
    if (!span || span.childElementCount) return;
    for (const [cls, label] of items) {
      const item = el('span', 'key ' + cls, label);
      span.appendChild(item);
    }
  }

  function renderPlots(s) {
    plot($('plot-cps'), [{ values: s.cps, cls: 'cps' }], '/s');
    plot($('plot-outcomes'), [
      { values: s.answered, cls: 'answered' },
      { values: s.busy, cls: 'busy' },
      { values: s.no_answer, cls: 'no-answer' },
      { values: s.failed, cls: 'failed' },
    ], '');
    legend($('plot-outcomes').parentNode, [['answered', 'answered'], ['busy', 'busy'],
      ['no-answer', 'no answer'], ['failed', 'failed']]);
    plot($('plot-latency'), [
      { values: s.latency_p50_ms, cls: 'p50' },
      { values: s.latency_p95_ms, cls: 'p95' },
    ], ' ms');
  }

  // ---- the snapshot ----
  function render(snap) {
    syncRows($('batches').tBodies[0], snap.batches, (b) => b.account + '/' + b.batch_id,
      makeBatch, updateBatch);
    $('more-batches').textContent = snap.more_batches > 0
      ? 'and ' + num(snap.more_batches) + ' more batches not shown' : '';
    syncRows($('accounts').tBodies[0], snap.accounts, (a) => a.account, makeAccount,
      (tr, a) => updateAccount(tr, a, snap.count_cap));
    syncRows($('servers').tBodies[0], snap.servers, (s) => s.code, makeServer, updateServer);
    renderAudit(snap.audit);
    renderPlots(snap.series);
    $('updated').textContent = 'updated ' + new Date(snap.at).toLocaleTimeString();
    main.dataset.snapshotAt = snap.at;
  }

  function setConn(text, ok) {
    const c = $('conn');
    c.textContent = text;
    c.classList.toggle('ok', ok);
  }

  function connect() {
    const source = new EventSource('/console/live');
    source.onopen = () => setConn('live', true);
    source.onmessage = (e) => {
      let snap;
      try {
        snap = JSON.parse(e.data);
      } catch (err) {
        return;
      }
      setConn('live', true);
      render(snap);
    };
    source.onerror = () => {
      setConn('reconnecting', false);
      // Closed for good (the stream was refused: the session ended): the page itself goes
      // to the sign-in form if so, or reconnects.
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(() => location.assign('/console'), 3000);
      }
    };
  }

  connect();
})();
