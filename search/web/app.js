// app.js -- imgfeed-search's page: sends the image (POST /search) or its URL
// (GET /search?url=) and draws the answer as a grid.  Every text of the
// archive goes in with textContent and every link is checked to be http(s),
// so hostile text stays text.
'use strict';

const $ = (id) => document.getElementById(id);

function httpUrl(u) {
  try {
    const p = new URL(u);
    return p.protocol === 'http:' || p.protocol === 'https:' ? p.href : null;
  } catch (e) {
    return null;
  }
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function status(text, error) {
  const s = $('status');
  s.textContent = text;
  s.classList.toggle('error', !!error);
}

function params() {
  const q = new URLSearchParams();
  q.set('hash', $('hash').value);
  const k = parseInt($('k').value, 10);
  if (k > 0) q.set('k', String(k));
  const d = $('maxd').value.trim();
  if (d !== '') q.set('max_distance', d);
  return q;
}

function when(t) {
  if (!t) return '';
  const d = new Date(t * 1000);
  return isNaN(d) ? '' : d.toISOString().replace('T', ' ').slice(0, 16);
}

function card(r) {
  const c = el('article', 'hit');
  const img = httpUrl(r.url);
  const post = httpUrl(r.link) || img;
  const pic = el(post ? 'a' : 'div', 'pic');
  if (post) {
    pic.href = post;
    pic.target = '_blank';
    pic.rel = 'noopener noreferrer';
  }
  if (img) {
    const i = el('img');
    i.loading = 'lazy';
    i.referrerPolicy = 'no-referrer';
    i.alt = '';
    i.src = img;
    pic.appendChild(i);
  }
  c.appendChild(pic);
  const m = el('div', 'meta');
  m.appendChild(el('span', 'dist' + (r.distance === 0 ? ' d0' : ''),
    r.distance === 0 ? 'identical (0 bits)' : r.distance + ' bits apart'));
  const where = [r.site, r.board ? '/' + r.board + '/' : '', r.type, r.id].filter(Boolean).join(' ');
  m.appendChild(el('span', 'where', where || r.table));
  const size = [r.width && r.height ? r.width + '×' + r.height : '', r.format, when(r.time)]
    .filter(Boolean).join(' · ');
  if (size) m.appendChild(el('span', 'size', size));
  if (r.text) m.appendChild(el('p', 'text', r.text));
  if (post) {
    const a = el('a', '', r.link ? 'the post' : 'the image');
    a.href = post;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    m.appendChild(a);
  }
  c.appendChild(m);
  return c;
}

function show(answer) {
  const grid = $('results');
  grid.replaceChildren();
  const rs = answer.results || [];
  for (const r of rs) grid.appendChild(card(r));
  const q = answer.query || {};
  let s = rs.length + (rs.length === 1 ? ' image' : ' images');
  if (q.max_distance !== undefined) s += ' within ' + q.max_distance + ' of ' + q.bits + ' bits';
  s += ' (' + (answer.took_ms || 0).toFixed(1) + ' ms)';
  if (answer.warning) s += ' · ' + answer.warning;
  status(s, false);
  document.body.dataset.results = String(rs.length);
}

async function ask(request) {
  status('searching…', false);
  try {
    const res = await request;
    const body = await res.json().catch(() => ({ error: 'the server answered ' + res.status }));
    if (!res.ok) {
      $('results').replaceChildren();
      status(body.error || ('error ' + res.status), true);
      document.body.dataset.results = 'error';
      return;
    }
    show(body);
  } catch (e) {
    status('cannot reach the server: ' + e.message, true);
    document.body.dataset.results = 'error';
  }
}

function searchFile(file) {
  if (!file) return;
  const p = $('preview');
  if (p.src) URL.revokeObjectURL(p.src);
  p.src = URL.createObjectURL(file);
  p.hidden = false;
  ask(fetch('/search?' + params().toString(), { method: 'POST', body: file }));
}

function searchUrl(u) {
  const q = params();
  q.set('url', u);
  ask(fetch('/search?' + q.toString()));
}

async function stats() {
  try {
    const s = await (await fetch('/stats')).json();
    $('stats').textContent = s.state === 'serving'
      ? s.images.toLocaleString() + ' images of ' + s.items.toLocaleString() + ' posts'
      : 'loading the archive: ' + (s.load ? s.load.rows.toLocaleString() : 0) + ' images so far';
  } catch (e) {
    $('stats').textContent = 'server unreachable';
  }
}

function init() {
  const drop = $('drop');
  $('file').addEventListener('change', (e) => searchFile(e.target.files[0]));
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    if (e.dataTransfer.files.length) searchFile(e.dataTransfer.files[0]);
    else {
      const u = e.dataTransfer.getData('text/uri-list') || e.dataTransfer.getData('text/plain');
      if (u) searchUrl(u.trim());
    }
  });
  $('byurl').addEventListener('submit', (e) => {
    e.preventDefault();
    const u = $('url').value.trim();
    if (u) searchUrl(u);
  });
  document.addEventListener('paste', (e) => {
    const f = e.clipboardData && e.clipboardData.files[0];
    if (f) searchFile(f);
  });
  stats();
  setInterval(stats, 10000);
  document.body.dataset.ready = '1';
}

init();
