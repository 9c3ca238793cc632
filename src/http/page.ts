// The status page for a person (GET /): this device's view of the cluster, updated live from /status and
// /watch. Plain HTML, CSS and JavaScript served by the daemon itself (no framework, nothing from a CDN).

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>quorumd</title>
<link rel="stylesheet" href="/ui/app.css">
<script src="/ui/app.js" defer></script>
</head>
<body>
<header>
  <h1>quorumd <span id="device" class="muted"></span></h1>
  <div id="writable" class="badge" data-testid="writable">…</div>
</header>
<section id="auth" hidden>
  <p>This device's API listens beyond loopback: enter its token (<code>quorumd token</code> on the device prints it).</p>
  <form id="auth-form"><input id="token" type="password" autocomplete="off" placeholder="API token" size="50"> <button>Use token</button></form>
</section>
<main>
  <section class="facts">
    <div><span class="label">cluster</span> <span id="cluster"></span></div>
    <div><span class="label">epoch</span> <span id="epoch" data-testid="epoch"></span></div>
    <div><span class="label">role</span> <span id="role" data-testid="role"></span></div>
    <div><span class="label">quorum</span> <span id="quorum"></span></div>
    <div><span class="label">keys</span> <span id="keys"></span></div>
    <div><span class="label">sync</span> <span id="sync"></span></div>
    <div><span class="label">version</span> <span id="version"></span></div>
  </section>
  <section id="catchup" hidden>
    <h2>Catching up</h2>
    <progress id="catchup-bar" max="100" value="0"></progress> <span id="catchup-text"></span>
  </section>
  <section>
    <h2>Members</h2>
    <table>
      <thead><tr><th>device</th><th>role</th><th>state</th><th>round trip</th><th>in sync</th><th>last round</th><th>keys differing</th></tr></thead>
      <tbody id="members" data-testid="members"></tbody>
    </table>
  </section>
  <section class="split">
    <div>
      <h2>Cluster</h2>
      <svg id="picture" viewBox="-160 -130 320 260" role="img" aria-label="cluster picture"></svg>
      <p class="muted small">Lines: this device's connections (green alive, amber suspect, red down). A ring marks a member
      whose last anti-entropy round found differences (behind).</p>
    </div>
    <div>
      <h2>Recent changes</h2>
      <ol id="changes" data-testid="changes" class="changes"></ol>
    </div>
  </section>
  <p id="error" class="error" hidden></p>
</main>
</body>
</html>
`;

export const PAGE_CSS = `
:root { --ok: #1a7f37; --warn: #b07800; --bad: #c62828; --muted: #667; font-family: system-ui, sans-serif; }
body { margin: 0 auto; max-width: 1100px; padding: 1rem 1.5rem; color: #222; background: #fafafa; }
header { display: flex; align-items: center; justify-content: space-between; }
h1 { font-size: 1.4rem; margin: 0.2rem 0; } h2 { font-size: 1.05rem; margin: 1.2rem 0 0.4rem; }
.muted { color: var(--muted); font-weight: normal; } .small { font-size: 0.8rem; }
.badge { padding: 0.4rem 0.9rem; border-radius: 1rem; color: white; font-weight: 600; background: var(--muted); }
.badge.ok { background: var(--ok); } .badge.bad { background: var(--bad); }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 0.3rem 1.5rem; margin-top: 0.8rem; }
.label { display: inline-block; width: 5.5rem; color: var(--muted); }
table { border-collapse: collapse; width: 100%; background: white; }
th, td { text-align: left; padding: 0.35rem 0.6rem; border-bottom: 1px solid #e4e4e8; font-size: 0.9rem; }
td.mono, .mono { font-family: ui-monospace, monospace; }
.state-alive { color: var(--ok); font-weight: 600; } .state-suspect { color: var(--warn); font-weight: 600; }
.state-down { color: var(--bad); font-weight: 600; } .state-self { color: var(--muted); }
.split { display: grid; grid-template-columns: 1fr 1fr; gap: 2rem; }
svg { width: 100%; max-width: 420px; background: white; border: 1px solid #e4e4e8; border-radius: 0.5rem; }
.changes { font-family: ui-monospace, monospace; font-size: 0.85rem; max-height: 260px; overflow: auto; padding-left: 1.5rem; }
.error { color: var(--bad); } progress { width: 60%; }
@media (max-width: 700px) { .split { grid-template-columns: 1fr; } }
`;

export const PAGE_JS = `'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const short = (peer) => (peer ? '…' + peer.slice(-8) : '');
  const token = () => localStorage.getItem('quorumd-token') || '';
  const headers = () => (token() ? { Authorization: 'Bearer ' + token() } : {});
  const fmt = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '–');
  const changes = [];
  const CHANGES_SHOWN = 30;

  function text(el, value) { el.textContent = value; }
  function cell(row, value, cls) { const td = document.createElement('td'); td.textContent = value; if (cls) td.className = cls; row.appendChild(td); return td; }

  async function api(path) {
    const res = await fetch(path, { headers: headers() });
    if (res.status === 401) { $('auth').hidden = false; throw new Error('this API needs its token'); }
    if (!res.ok) throw new Error(path + ': HTTP ' + res.status);
    return res.json();
  }

  function render(s) {
    text($('device'), short(s.peerId));
    document.title = 'quorumd ' + short(s.peerId);
    const writable = s.quorum && s.quorum.writable;
    const badge = $('writable');
    badge.className = 'badge ' + (writable ? 'ok' : 'bad');
    text(badge, writable ? 'quorum writable: yes' : 'quorum writable: NO');
    text($('cluster'), s.clusterId || '(none yet)');
    text($('epoch'), String(s.epoch));
    text($('role'), s.role);
    const q = s.quorum || {};
    text($('quorum'), q.reachable + ' of ' + q.voters + ' voters alive, ' + q.needed + ' needed' + (q.joint ? ' (voter change in progress)' : ''));
    text($('keys'), fmt(s.keys) + ' live, ' + fmt(s.tombstones) + ' tombstones');
    const ae = s.antiEntropy || {};
    text($('sync'), (ae.converged ? 'converged' : 'not converged') + ', ' + fmt(ae.hints && ae.hints.queued) + ' hints queued');
    text($('version'), s.version + ', up ' + Math.round((s.uptimeMs || 0) / 1000) + ' s');
    const c = s.catchUp;
    $('catchup').hidden = !c;
    if (c) {
      $('catchup-bar').value = c.percent || 0;
      text($('catchup-text'), c.state + ': ' + fmt(c.keysHeld) + ' of ' + fmt(c.totalKeys) + ' keys' + (c.bytesPerSec ? ', ' + (c.bytesPerSec / 1e6).toFixed(1) + ' MB/s' : ''));
    }
    const members = [].concat((s.voters || []).map((m) => Object.assign({ role: 'voter' }, m)), (s.learners || []).map((m) => Object.assign({ role: 'learner' }, m)));
    const body = $('members');
    body.replaceChildren();
    for (const m of members) {
      const row = document.createElement('tr');
      row.dataset.peer = m.peerId;
      row.dataset.state = m.self ? 'self' : m.state;
      cell(row, short(m.peerId) + (m.self ? ' (this device)' : ''), 'mono').title = m.peerId;
      cell(row, m.role);
      cell(row, m.self ? 'self' : m.state, 'state-' + (m.self ? 'self' : m.state));
      cell(row, m.self || m.rttMs == null ? '–' : m.rttMs + ' ms');
      const sync = m.sync || {};
      cell(row, m.self ? '–' : sync.matched === true ? 'yes' : sync.matched === false ? 'no' : 'unknown');
      cell(row, sync.lastRoundAgoMs == null ? '–' : (sync.lastRoundAgoMs / 1000).toFixed(1) + ' s ago');
      cell(row, sync.keysDiffering == null ? '–' : fmt(sync.keysDiffering));
      body.appendChild(row);
    }
    drawPicture(members);
  }

  function drawPicture(members) {
    const svg = $('picture');
    const ns = 'http://www.w3.org/2000/svg';
    svg.replaceChildren();
    const self = members.find((m) => m.self);
    const others = members.filter((m) => !m.self);
    const place = new Map();
    place.set(self ? self.peerId : '', { x: 0, y: 0 });
    others.forEach((m, i) => {
      const angle = (2 * Math.PI * i) / Math.max(1, others.length) - Math.PI / 2;
      place.set(m.peerId, { x: Math.cos(angle) * 100, y: Math.sin(angle) * 90 });
    });
    const colour = (state) => (state === 'alive' ? '#1a7f37' : state === 'suspect' ? '#b07800' : '#c62828');
    for (const m of others) {
      const p = place.get(m.peerId);
      const line = document.createElementNS(ns, 'line');
      line.setAttribute('x1', '0'); line.setAttribute('y1', '0');
      line.setAttribute('x2', String(p.x)); line.setAttribute('y2', String(p.y));
      line.setAttribute('stroke', colour(m.connected ? m.state : 'down'));
      line.setAttribute('stroke-width', '2');
      if (!m.connected) line.setAttribute('stroke-dasharray', '4 4');
      svg.appendChild(line);
    }
    for (const m of members) {
      const p = place.get(m.self ? (self ? self.peerId : '') : m.peerId);
      const behind = !m.self && m.sync && (m.sync.matched === false || m.sync.keysDiffering > 0);
      const circle = document.createElementNS(ns, 'circle');
      circle.setAttribute('cx', String(p.x)); circle.setAttribute('cy', String(p.y));
      circle.setAttribute('r', m.self ? '16' : '13');
      circle.setAttribute('fill', m.self ? '#3949ab' : colour(m.state));
      if (behind) { circle.setAttribute('stroke', '#b07800'); circle.setAttribute('stroke-width', '4'); }
      const title = document.createElementNS(ns, 'title');
      title.textContent = m.peerId + ' (' + m.role + ', ' + (m.self ? 'this device' : m.state) + (behind ? ', behind' : '') + ')';
      circle.appendChild(title);
      svg.appendChild(circle);
      const label = document.createElementNS(ns, 'text');
      label.setAttribute('x', String(p.x)); label.setAttribute('y', String(p.y + (m.self ? 30 : 27)));
      label.setAttribute('text-anchor', 'middle'); label.setAttribute('font-size', '10');
      label.textContent = short(m.peerId) + (m.role === 'learner' ? ' (L)' : '');
      svg.appendChild(label);
    }
  }

  async function refresh() {
    try {
      render(await api('/status'));
      $('error').hidden = true;
    } catch (error) {
      $('error').hidden = false;
      text($('error'), 'cannot read /status: ' + error.message);
    }
  }

  function showChange(e) {
    changes.unshift(e);
    changes.length = Math.min(changes.length, CHANGES_SHOWN);
    const list = $('changes');
    list.replaceChildren();
    for (const c of changes) {
      const li = document.createElement('li');
      li.textContent = c.at.slice(11, 19) + '  ' + c.kind.padEnd(8) + ' ' + c.key + (c.siblings > 1 ? '  (' + c.siblings + ' siblings)' : '');
      list.appendChild(li);
    }
  }

  // /watch read with fetch (EventSource cannot send the token), resuming with Last-Event-ID.
  async function watch() {
    let lastId;
    for (;;) {
      try {
        const h = headers();
        if (lastId) h['Last-Event-ID'] = lastId;
        const res = await fetch('/watch', { headers: h });
        if (!res.ok) throw new Error('HTTP ' + res.status);
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffer.indexOf('\\n\\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const fields = {};
            for (const line of block.split('\\n')) { const at = line.indexOf(': '); if (at > 0) fields[line.slice(0, at)] = line.slice(at + 2); }
            if (fields.id) lastId = fields.id;
            if (fields.event === 'change' && fields.data) showChange(JSON.parse(fields.data));
          }
        }
      } catch (error) {
        // reconnect below
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }

  $('auth-form').addEventListener('submit', (event) => {
    event.preventDefault();
    localStorage.setItem('quorumd-token', $('token').value.trim());
    $('auth').hidden = true;
    refresh();
  });
  refresh();
  setInterval(refresh, 1000);
  watch();
})();
`;
