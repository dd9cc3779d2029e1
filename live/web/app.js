// app.js -- imgfeed-live's page: an EventSource on /events fills a grid of
// the newest pictures (newest first, at most MAX_TILES kept); a click shows
// a picture's hashes, its post's text and link.  The viewer's choices
// (topics, minimum width, NSFW shown) are kept in localStorage; topic=
// arguments of the page's own URL (a shared link) choose the topics.
//
// Hostile data: every text from a site goes in with textContent, never as
// HTML; a picture or link URL is used only when it is http(s) or a path of
// this server's /files/.  The browser reconnects by itself and sends
// Last-Event-ID, so the server resumes where the stream broke.
'use strict';

(function () {
  const MAX_TILES = 300;
  const BACKLOG = 100;
  const STORE = 'imgfeed-live';
  const $ = (id) => document.getElementById(id);
  const grid = $('grid');
  let source = null;
  let paused = false;
  let held = [];
  let stamps = [];

  function load() {
    try {
      return JSON.parse(localStorage.getItem(STORE)) || {};
    } catch (e) {
      return {};
    }
  }

  function save() {
    try {
      localStorage.setItem(STORE, JSON.stringify({
        topics: $('topics').value, minWidth: minWidth(), nsfw: $('nsfw').checked,
      }));
    } catch (e) { /* private mode: choices are not kept */ }
  }

  function minWidth() {
    const w = parseInt($('minwidth').value, 10);
    return w > 0 ? w : 0;
  }

  function topics() {
    const list = $('topics').value.split(',').map((s) => s.trim()).filter(Boolean);
    return list.length ? list : ['#'];
  }

  function safeUrl(u) {
    if (typeof u !== 'string') return null;
    if (/^https?:\/\/[^\s]+$/i.test(u)) return u;
    if (/^\/files\/[0-9a-f]{40}\.[a-z0-9]{2,5}$/.test(u)) return u;
    return null;
  }

  function when(t) {
    return t ? new Date(t * 1000).toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'}) : '';
  }

  function setConn(text) {
    $('conn').textContent = text;
  }

  function connect() {
    if (source) source.close();
    const q = new URLSearchParams();
    topics().forEach((t) => q.append('topic', t));
    q.set('backlog', String(BACKLOG));
    source = new EventSource('/events?' + q.toString());
    source.addEventListener('open', () => setConn('live'));
    source.addEventListener('error', () => {
      setConn(source.readyState === EventSource.CLOSED ? 'closed (bad topics?)' : 'reconnecting…');
    });
    source.addEventListener('item', (m) => {
      let ev;
      try {
        ev = JSON.parse(m.data);
      } catch (e) {
        return;
      }
      if (!ev || !Array.isArray(ev.images)) return;
      if (paused) {
        held.push(ev);
        if (held.length > MAX_TILES) held.shift();
      } else {
        add(ev);
      }
    });
    source.addEventListener('dropped', (m) => {
      let n = 0;
      try {
        n = JSON.parse(m.data).dropped;
      } catch (e) { /* nothing */ }
      $('notice').textContent = ' · ' + n + ' skipped: this page fell behind';
    });
  }

  function fits(tile) {
    return Number(tile.dataset.width) >= minWidth();
  }

  function add(ev) {
    for (const img of ev.images) {
      stamps.push(Date.now());
      const src = safeUrl(img.file) || safeUrl(img.url);
      if (!src) continue;
      const tile = document.createElement('figure');
      tile.className = 'tile' + (ev.nsfw ? ' nsfw' : '');
      tile.dataset.width = String(Number(img.width) || 0);
      const im = document.createElement('img');
      im.loading = 'lazy';
      im.decoding = 'async';
      im.referrerPolicy = 'no-referrer';
      im.alt = String(ev.site) + '/' + String(ev.board);
      im.src = src;
      const cap = document.createElement('figcaption');
      const meta = document.createElement('span');
      meta.textContent = ev.site + '/' + ev.board + ' · ' + (img.width || '?') + '×' + (img.height || '?') +
        ' · ' + when(ev.time);
      const text = document.createElement('span');
      text.className = 'text';
      text.textContent = ev.text || '';
      cap.append(meta, text);
      tile.title = ev.text || '';
      tile.append(im, cap);
      tile.hidden = !fits(tile);
      tile.addEventListener('click', () => show(ev, img, src));
      grid.prepend(tile);
    }
    while (grid.children.length > MAX_TILES) grid.lastElementChild.remove();
    $('shown').textContent = String(grid.children.length);
    rate();
  }

  function show(ev, img, src) {
    $('d-img').src = src;
    $('d-open').href = src;
    $('d-where').textContent = ev.key + ' · ' + ev.id + ' · ' + new Date(ev.time * 1000).toLocaleString();
    const link = safeUrl(ev.link);
    $('d-link').hidden = !link;
    if (link) $('d-link').href = link;
    $('d-text').textContent = ev.text || '';
    const dl = $('d-fields');
    dl.replaceChildren();
    const fields = ['url', 'width', 'height', 'format', 'size', 'sha1', 'md5', 'crc32', 'ahash', 'dhash',
      'phash', 'whash'];
    for (const f of fields) {
      if (img[f] === undefined) continue;
      const dt = document.createElement('dt');
      dt.textContent = f;
      const dd = document.createElement('dd');
      dd.textContent = String(img[f]);
      dl.append(dt, dd);
    }
    $('details').hidden = false;
  }

  function rate() {
    const now = Date.now();
    stamps = stamps.filter((t) => now - t < 60000);
    $('rate').textContent = String(stamps.length);
  }

  function start() {
    const s = load();
    const linked = new URLSearchParams(location.search).getAll('topic'); // a shared link's topics win
    if (linked.length) $('topics').value = linked.join(', ');
    else if (typeof s.topics === 'string' && s.topics) $('topics').value = s.topics;
    if (s.minWidth > 0) $('minwidth').value = String(s.minWidth);
    $('nsfw').checked = s.nsfw === true;
    document.body.classList.toggle('hide-nsfw', !$('nsfw').checked);
    $('controls').addEventListener('submit', (e) => {
      e.preventDefault();
      save();
      connect();
    });
    $('topics').addEventListener('change', () => {
      save();
      connect();
    });
    $('minwidth').addEventListener('input', () => {
      save();
      for (const t of grid.children) t.hidden = !fits(t);
    });
    $('nsfw').addEventListener('change', () => {
      save();
      document.body.classList.toggle('hide-nsfw', !$('nsfw').checked);
    });
    $('pause').addEventListener('click', () => {
      paused = !paused;
      $('pause').textContent = paused ? 'Resume' : 'Pause';
      if (!paused) {
        const h = held;
        held = [];
        h.forEach(add);
      }
    });
    $('close').addEventListener('click', () => {
      $('details').hidden = true;
    });
    $('details').addEventListener('click', (e) => {
      if (e.target === $('details')) $('details').hidden = true;
    });
    setInterval(rate, 1000);
    connect();
  }

  start();
}());
