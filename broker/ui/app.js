/* The mom dashboard: signs in through /v1/auth/token (or takes a pasted
 * token, kept in sessionStorage), then polls /v1/cluster, /v1/queues,
 * /v1/topics and /metrics (for the queue rates) every two
 * seconds, and drives the message forms and the live tail (an EventSource
 * on the topic's event stream). Every API error is shown to the person.
 * Plain DOM, no library; text is always set with textContent.
 * SPDX-License-Identifier: MIT */
'use strict';

(() => {
  const TOKEN_KEY = 'mom.token';
  const POLL_MS = 2000;
  const HISTORY_MS = 5 * 60 * 1000;
  const TAIL_KEEP = 200;
  const MAX_ERRORS = 6;
  const MAX_ROWS = 200; /* rows per table; a node may hold thousands */

  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;

  let token = sessionStorage.getItem(TOKEN_KEY);
  let pollTimer = null;
  let polling = false;
  let lastNode = null;
  let metrics = 'unknown'; /* 'yes' once /metrics answered, 'no' after a 404 */
  let metricsWhy = ''; /* why the last read of /metrics gave no counters */
  const history = new Map(); /* queue -> {depth, rate1, rate2, last} */
  const topicHistory = new Map(); /* topic -> {rate, last} */
  let tail = null; /* {name, ctl} while tailing */

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  /* ---- errors shown to the person ---- */

  /* key: errors of one source replace each other and clear on success. */
  function showError(message, key) {
    const box = $('errors');
    let item = key ? box.querySelector(`[data-key="${key}"]`) : null;
    if (!item) {
      item = document.createElement('div');
      item.className = 'error';
      if (key) item.dataset.key = key;
      const text = document.createElement('span');
      const close = document.createElement('button');
      close.type = 'button';
      close.textContent = 'Dismiss';
      close.setAttribute('aria-label', 'Dismiss this error');
      close.addEventListener('click', () => item.remove());
      item.append(text, close);
      box.prepend(item);
      while (box.children.length > MAX_ERRORS) box.lastElementChild.remove();
    }
    /* a poll that keeps failing the same way is not announced again */
    if (item.dataset.message !== message) {
      item.dataset.message = message;
      item.firstChild.textContent = `${new Date().toLocaleTimeString()}: ${message}`;
    }
  }

  /* An error from api(): shown once (a 401 was shown when it signed out). */
  function report(err, key) {
    if (!err.shown) showError(err.message, key);
  }

  function clearError(key) {
    const item = $('errors').querySelector(`[data-key="${key}"]`);
    if (item) item.remove();
  }

  /* ---- the API ---- */

  function noteNode(res) {
    const node = res.headers.get('X-Mom-Node');
    if (node) lastNode = node;
    renderNodeLine();
  }

  async function api(method, path, opts = {}) {
    const headers = {};
    if (token && opts.auth !== false) headers.Authorization = 'Bearer ' + token;
    let body;
    if (opts.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(opts.json);
    } else if (opts.body !== undefined) {
      headers['Content-Type'] = 'text/plain; charset=utf-8';
      body = opts.body;
    }
    const url = opts.query ? `${path}?${new URLSearchParams(opts.query)}` : path;
    let res;
    try {
      res = await fetch(url, {method, headers, body, signal: opts.signal, cache: 'no-store',
                              credentials: 'omit'});
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError(0, 'network', `${method} ${path}: cannot reach the node (${e.message})`);
    }
    noteNode(res);
    const text = await res.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (e) {
        data = null;
      }
    }
    if (!res.ok) {
      const err = data && data.error;
      const code = err && err.code ? err.code : String(res.status);
      const why = err && err.message ? err.message : (typeof err === 'string' ? err : text.slice(0, 200));
      const error = new ApiError(res.status, code, `${method} ${path}: ${res.status} ${code}: ${why}`);
      if (res.status === 401 && opts.auth !== false && token) {
        signOut();
        showError(`${error.message}. Sign in again.`, 'login');
        error.shown = true;
      }
      throw error;
    }
    return data;
  }

  /* ---- sign in and out ---- */

  function tokenUser(t) {
    try {
      const part = t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(part)).sub || '?';
    } catch (e) {
      return '?';
    }
  }

  function renderNodeLine() {
    const who = token ? `Signed in as ${tokenUser(token)}` : 'Not signed in';
    $('node-line').textContent = lastNode ? `${who} · answered by node ${lastNode}` : who;
  }

  function showApp(on) {
    $('login').hidden = on;
    $('app').hidden = !on;
    $('nav').hidden = !on;
    $('logout').hidden = !on;
    renderNodeLine();
  }

  function signIn(t) {
    token = t;
    sessionStorage.setItem(TOKEN_KEY, t);
    $('login-pass').value = '';
    $('token-text').value = '';
    showApp(true);
    clearError('login');
    poll();
    $('main').focus({preventScroll: true});
  }

  function signOut() {
    token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    stopTail('Not tailing.');
    clearTimeout(pollTimer);
    history.clear();
    topicHistory.clear();
    showApp(false);
  }

  $('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const d = await api('POST', '/v1/auth/token', {
        auth: false,
        json: {username: $('login-user').value, password: $('login-pass').value},
      });
      signIn(d.access_token);
    } catch (err) {
      report(err, 'login');
    }
  });

  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const t = $('token-text').value.trim().replace(/^Bearer\s+/i, '');
    if (t) signIn(t);
  });

  $('logout').addEventListener('click', () => {
    signOut();
    $('login-user').focus();
  });

  /* ---- small DOM helpers ---- */

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function row(cells) {
    const tr = document.createElement('tr');
    for (const c of cells) {
      if (c instanceof Node) {
        const td = document.createElement('td');
        td.append(c);
        tr.append(td);
      } else {
        tr.append(el('td', c, typeof c === 'number' ? 'num' : undefined));
      }
    }
    return tr;
  }

  function fillOptions(id, names) {
    const list = $(id);
    list.replaceChildren(...names.map((n) => {
      const o = document.createElement('option');
      o.value = n;
      return o;
    }));
  }

  /* A small SVG line of [time, value] points over the last five minutes. */
  function sparkline(points, label, now, fmt) {
    const W = 120, H = 28;
    const ns = 'http://www.w3.org/2000/svg';
    const wrap = el('span');
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('width', W);
    svg.setAttribute('height', H);
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.setAttribute('role', 'img');
    const values = points.map((p) => p[1]);
    const lo = Math.min(0, ...values);
    const hi = Math.max(lo + 1, ...values);
    const last = values.length ? values[values.length - 1] : null;
    svg.setAttribute('aria-label', last === null ? `${label}: no data yet`
      : `${label}, last minutes: highest ${fmt(Math.max(...values))}, now ${fmt(last)}`);
    const base = document.createElementNS(ns, 'line');
    base.setAttribute('x1', 0);
    base.setAttribute('x2', W);
    base.setAttribute('y1', H - 1);
    base.setAttribute('y2', H - 1);
    svg.append(base);
    if (points.length) {
      /* the x axis spans the data kept (at least 30 s, at most five minutes) */
      const span = Math.min(HISTORY_MS, Math.max(30000, now - points[0][0]));
      const line = document.createElementNS(ns, 'polyline');
      line.setAttribute('points', points.map(([t, v]) => {
        const x = W - ((now - t) / span) * W;
        const y = H - 2 - ((v - lo) / (hi - lo)) * (H - 4);
        return `${x.toFixed(1)},${y.toFixed(1)}`;
      }).join(' '));
      svg.append(line);
    }
    wrap.append(svg, el('span', last === null ? '—' : fmt(last), 'spark-value'));
    return wrap;
  }

  const fmtInt = (v) => String(Math.round(v));
  const fmtRate = (v) => (v < 10 ? v.toFixed(1) : String(Math.round(v)));

  /* ---- cluster ---- */

  async function refreshCluster() {
    const c = await api('GET', '/v1/cluster');
    const summary = [
      ['Answered by node', c.node_id],
      ['Its role', c.role],
      ['Term', c.term],
      ['Leader', c.leader === null || c.leader === undefined ? 'none known' : `node ${c.leader}`],
      ['Commit index', c.commit_index],
      ['Applied index', c.applied_index],
    ];
    if (c.abstaining) summary.push(['Abstaining', 'yes (rejoining)']);
    $('cluster-summary').replaceChildren(...summary.map(([k, v]) => {
      const d = el('div');
      d.append(el('dt', k), el('dd', v));
      return d;
    }));
    const rows = (c.nodes || []).map((m) => {
      const self = m.id === c.node_id;
      let lag = 'n/a';
      if (self) lag = Math.max(0, c.commit_index - c.applied_index);
      else if (c.role === 'leader') lag = Math.max(0, c.commit_index - m.match_index);
      const contact = self ? 'this node' : (m.last_contact_ms === null || m.last_contact_ms === undefined
        ? 'never' : `${m.last_contact_ms} ms ago`);
      const health = el('span', m.healthy ? 'healthy' : 'unreachable', m.healthy ? 'ok' : 'bad');
      /* a follower does not track the others' match index */
      const match = self || c.role === 'leader' ? m.match_index : 'n/a';
      const tr = row([`node ${m.id}${self ? ' (this one)' : ''}`, m.address, m.role,
                      match, lag, contact, health]);
      tr.dataset.role = m.role;
      tr.dataset.node = m.id;
      if (m.role === 'leader') tr.classList.add('leader');
      return tr;
    });
    $('members').tBodies[0].replaceChildren(...rows);
  }

  /* ---- queues ---- */

  function parseLabels(text) {
    const labels = {};
    const re = /(\w+)="((?:[^"\\]|\\.)*)"/g;
    let m;
    while ((m = re.exec(text))) labels[m[1]] = m[2].replace(/\\(.)/g, (_, ch) => (ch === 'n' ? '\n' : ch));
    return labels;
  }

  /* Per-queue publish and ack counters from /metrics, or null (and why in
   * metricsWhy). */
  async function queueCounters() {
    if (metrics === 'no') return null;
    let res;
    try {
      res = await fetch('/metrics', {cache: 'no-store', credentials: 'omit'});
    } catch (e) {
      metricsWhy = `/metrics could not be read (${e.message})`;
      return null;
    }
    if (res.status === 404) {
      metrics = 'no';
      metricsWhy = 'this node does not serve /metrics';
      return null;
    }
    if (!res.ok) {
      metricsWhy = `/metrics answered ${res.status}`;
      return null;
    }
    metrics = 'yes';
    const out = {published: new Map(), acked: new Map()};
    for (const line of (await res.text()).split('\n')) {
      const m = /^mom_queue_(published|acked)_total\{([^}]*)\}\s+(\S+)/.exec(line);
      if (!m) continue;
      const q = parseLabels(m[2]).queue;
      if (q !== undefined) out[m[1]].set(q, Number(m[3]));
    }
    return out;
  }

  function pushPoint(list, t, v) {
    list.push([t, v]);
    while (list.length && list[0][0] < t - HISTORY_MS) list.shift();
  }

  async function refreshQueues() {
    const [d, counters] = await Promise.all([api('GET', '/v1/queues'), queueCounters()]);
    const now = Date.now();
    const seen = new Set();
    const rateNames = counters ? ['Published / s', 'Acked / s']
      : ['Net depth change / s', 'Acked / s'];
    $('rate1-h').textContent = rateNames[0];
    $('rate2-h').textContent = rateNames[1];
    $('rates-note').textContent = counters
      ? 'Rates come from the /metrics counters of this node.'
      : `No rates: ${metricsWhy}. The first chart shows the net change of depth between polls instead.`;
    const rows = d.queues.slice(0, MAX_ROWS).map((q) => {
      seen.add(q.name);
      let h = history.get(q.name);
      if (!h) {
        h = {depth: [], rate1: [], rate2: [], last: null};
        history.set(q.name, h);
      }
      pushPoint(h.depth, now, q.depth);
      const cur = {t: now, depth: q.depth,
                   pub: counters ? counters.published.get(q.name) : undefined,
                   ack: counters ? counters.acked.get(q.name) : undefined};
      if (h.last && now > h.last.t) {
        const dt = (now - h.last.t) / 1000;
        if (counters) {
          if (cur.pub !== undefined && h.last.pub !== undefined)
            pushPoint(h.rate1, now, Math.max(0, (cur.pub - h.last.pub) / dt));
          if (cur.ack !== undefined && h.last.ack !== undefined)
            pushPoint(h.rate2, now, Math.max(0, (cur.ack - h.last.ack) / dt));
        } else {
          pushPoint(h.rate1, now, (cur.depth - h.last.depth) / dt);
        }
      }
      h.last = cur;
      const tr = row([q.name, q.depth, q.in_flight, q.delayed,
                      sparkline(h.depth, `Depth of ${q.name}`, now, fmtInt),
                      sparkline(h.rate1, `${rateNames[0]} of ${q.name}`, now, fmtRate),
                      counters ? sparkline(h.rate2, `Acked per second of ${q.name}`, now, fmtRate) : '—']);
      tr.dataset.queue = q.name;
      return tr;
    });
    for (const name of history.keys()) if (!seen.has(name)) history.delete(name);
    const body = $('queue-table').tBodies[0];
    if (rows.length) body.replaceChildren(...rows);
    else body.replaceChildren(row(['No queues yet.', '', '', '', '', '', '']));
    $('queue-more').textContent = d.queues.length > MAX_ROWS
      ? `Showing the first ${MAX_ROWS} of ${d.queues.length} queues.` : '';
    fillOptions('queue-names', d.queues.map((q) => q.name));
    return d.queues.map((q) => q.name);
  }

  /* ---- topics ---- */

  async function refreshTopics() {
    const d = await api('GET', '/v1/topics');
    const now = Date.now();
    const shown = d.topics.slice(0, MAX_ROWS);
    const subs = await Promise.all(shown.map((t) => (t.subscriptions && t.subscriptions.length
      ? api('GET', `/v1/topics/${enc(t.name)}/subscriptions`).then((x) => x.subscriptions)
      : Promise.resolve([]))));
    const seen = new Set();
    const rows = shown.map((t, i) => {
      seen.add(t.name);
      /* offsets only grow: their change between polls is the publish rate */
      let h = topicHistory.get(t.name);
      if (!h) {
        h = {rate: [], last: null};
        topicHistory.set(t.name, h);
      }
      if (h.last && now > h.last.t)
        pushPoint(h.rate, now, Math.max(0, (t.next_offset - h.last.next) * 1000 / (now - h.last.t)));
      h.last = {t: now, next: t.next_offset};
      const list = el('ul', null, 'subs');
      for (const s of subs[i]) list.append(el('li', `${s.name} (lag ${s.lag})`));
      const tr = row([t.name, t.messages, t.bytes, `${t.first_offset} – ${t.next_offset}`,
                      sparkline(h.rate, `Published per second to ${t.name}`, now, fmtRate),
                      subs[i].length ? list : 'none']);
      tr.dataset.topic = t.name;
      return tr;
    });
    for (const name of topicHistory.keys()) if (!seen.has(name)) topicHistory.delete(name);
    const body = $('topic-table').tBodies[0];
    if (rows.length) body.replaceChildren(...rows);
    else body.replaceChildren(row(['No topics yet.', '', '', '', '', '']));
    $('topic-more').textContent = d.topics.length > MAX_ROWS
      ? `Showing the first ${MAX_ROWS} of ${d.topics.length} topics.` : '';
    fillOptions('topic-names', d.topics.map((t) => t.name));
    return d.topics.map((t) => t.name);
  }

  /* ---- the poll loop ---- */

  async function guarded(key, fn) {
    try {
      const v = await fn();
      clearError(key);
      return v;
    } catch (e) {
      if (token) report(e, key);
      return null;
    }
  }

  async function poll() {
    clearTimeout(pollTimer);
    if (!token || polling) return;
    polling = true;
    try {
      const [, queues, topics] = await Promise.all([
        guarded('cluster', refreshCluster),
        guarded('queues', refreshQueues),
        guarded('topics', refreshTopics),
      ]);
      if (queues && topics) fillOptions('names', [...new Set([...queues, ...topics])]);
    } finally {
      polling = false;
      if (token) pollTimer = setTimeout(poll, POLL_MS);
    }
  }

  /* ---- create ---- */

  function onCreate(formId, inputId, kind) {
    $(formId).addEventListener('submit', async (e) => {
      e.preventDefault();
      const name = $(inputId).value.trim();
      try {
        await api('PUT', `/v1/${kind}/${enc(name)}`);
        $(inputId).value = '';
        clearError(kind + '-create');
        poll();
      } catch (err) {
        report(err, kind + '-create');
      }
    });
  }
  onCreate('queue-create', 'queue-new', 'queues');
  onCreate('topic-create', 'topic-new', 'topics');

  /* ---- messages ---- */

  function bodyText(m) {
    return m.encoding === 'base64' ? `(base64) ${m.body}` : m.body;
  }

  function messageItem(m, meta) {
    const li = el('li');
    li.append(el('span', meta, 'meta'), el('span', bodyText(m), 'body'));
    return li;
  }

  $('publish-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const kind = document.querySelector('input[name=kind]:checked').value;
    const name = $('publish-name').value.trim();
    try {
      const r = await api('POST', `/v1/${kind}/${enc(name)}/messages`, {body: $('publish-body').value});
      const where = kind === 'queues' ? `queue ${name}, seq ${r.seq}` : `topic ${name}, offset ${r.offset}`;
      $('publish-result').textContent = `Published to ${where} (id ${r.id}).`;
      poll();
    } catch (err) {
      $('publish-result').textContent = 'Not published.';
      report(err);
    }
  });

  $('receive-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = $('receive-name').value.trim();
    const list = $('received');
    try {
      const d = await api('POST', `/v1/queues/${enc(name)}/receive`,
                          {query: {max: $('receive-max').value || '1', wait_ms: '0'}});
      list.replaceChildren(...d.messages.map((m) => {
        const li = messageItem(m, `seq ${m.seq}, delivery ${m.delivery_count}`);
        const ack = el('button', 'Ack', 'small');
        ack.type = 'button';
        ack.setAttribute('aria-label', `Ack message ${m.seq}`);
        ack.addEventListener('click', async () => {
          try {
            await api('DELETE', `/v1/queues/${enc(name)}/messages/${enc(m.receipt)}`);
            ack.replaceWith(el('span', ' acked', 'ok'));
            poll();
          } catch (err) {
            report(err);
          }
        });
        li.append(ack);
        return li;
      }));
      $('receive-result').textContent = d.messages.length
        ? `${d.messages.length} message(s) leased from ${name}; ack each one or it comes back after its visibility timeout.`
        : `No message is ready in ${name}.`;
      poll();
    } catch (err) {
      $('receive-result').textContent = 'Nothing received.';
      report(err);
    }
  });

  $('peek-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = $('peek-name').value.trim();
    try {
      const d = await api('GET', `/v1/topics/${enc(name)}/messages`,
                          {query: {from: $('peek-from').value.trim() || 'earliest', max: '20'}});
      $('peeked').replaceChildren(...d.messages.map((m) => messageItem(m, `offset ${m.offset}`)));
      $('peek-result').textContent = `${d.messages.length} message(s); the next offset is ${d.next_offset}.`;
    } catch (err) {
      $('peek-result').textContent = 'Nothing read.';
      report(err);
    }
  });

  /* ---- live tail: an EventSource on the topic's event stream. It cannot
   * send headers, so the token goes in access_token (stream routes only,
   * never logged); after a dropped connection it reconnects by itself with
   * Last-Event-ID and misses nothing. ---- */

  function stopTail(status) {
    if (tail) tail.es.close();
    tail = null;
    $('tail-start').disabled = false;
    $('tail-stop').disabled = true;
    if (status) $('tail-status').textContent = status;
  }

  /* EventSource reports no status: when it gives up, ask the API why. */
  async function tailRefused(me) {
    try {
      await api('GET', `/v1/topics/${enc(me.name)}`);
      showError(`The stream of ${me.name} was refused; try again.`, 'tail');
    } catch (err) {
      report(err, 'tail');
    }
    if (tail === me) stopTail(`Tail of ${me.name} stopped.`);
  }

  function runTail(name) {
    stopTail();
    const query = new URLSearchParams({from: 'latest', access_token: token});
    const me = {name, es: new EventSource(`/v1/topics/${enc(name)}/stream?${query}`), count: 0};
    tail = me;
    $('tail-start').disabled = true;
    $('tail-stop').disabled = false;
    $('tail-list').replaceChildren();
    $('tail-status').textContent = `Tailing ${name}: connecting.`;
    me.es.addEventListener('open', () => {
      if (tail !== me) return;
      clearError('tail');
      $('tail-status').textContent = me.count
        ? `Tailing ${name}: ${me.count} message(s) so far (reconnected).`
        : `Tailing ${name}: waiting for new messages.`;
    });
    me.es.addEventListener('message', (ev) => {
      if (tail !== me) return;
      const m = JSON.parse(ev.data);
      const list = $('tail-list');
      list.append(messageItem(m, `offset ${m.offset}`));
      while (list.children.length > TAIL_KEEP) list.firstElementChild.remove();
      me.count++;
      $('tail-status').textContent =
        `Tailing ${name}: ${me.count} message(s) so far, next offset ${m.offset + 1}.`;
    });
    me.es.addEventListener('error', () => {
      if (tail !== me) return;
      if (me.es.readyState === EventSource.CLOSED) {
        tailRefused(me);
      } else {
        /* the node went away or the topic's stream ended: it retries */
        $('tail-status').textContent = `Tailing ${name}: reconnecting.`;
      }
    });
  }

  $('tail-form').addEventListener('submit', (e) => {
    e.preventDefault();
    runTail($('tail-name').value.trim());
  });
  $('tail-stop').addEventListener('click', () => stopTail('Not tailing.'));

  /* ---- start ---- */

  showApp(Boolean(token));
  if (token) poll();
})();
