/*
 * app.js - the ME web console (docs/internals/me.md).
 *
 * Plain JavaScript, no framework and no build step, written for the ME's
 * Content-Security-Policy (script-src 'self', style-src 'self', no
 * inline code, no eval): every piece of data reaches the page through
 * textContent or a form control's value, never as markup.
 *
 * Sign-in is the browser's TLS client certificate: GET /api/v1/session
 * names the account and role and gives the CSRF token that every other
 * API request carries in X-MSSP-CSRF - reads too: the ME refuses a GET
 * without it, so that a page elsewhere cannot make the browser read (or
 * start a long operation) with our certificate.  The role only decides
 * which controls are shown; the ME checks every request itself.
 */
'use strict';

(function () {
  const API = '/api/v1';
  const STATS_REFRESH_MS = 5000;
  const BUSY_RETRIES = 2;       /* a read answered 503 (nothing done) is tried again */
  const BUSY_WAIT_MAX_S = 5;    /* at most this long per Retry-After */
  const AUDIT_PAGE = 500;       /* the store's largest list page */
  const AUDIT_MAX_PAGES = 200;  /* "Jump to latest" follows at most this many */
  const REVOKE_REASONS = ['unspecified', 'keyCompromise', 'affiliationChanged', 'superseded',
    'cessationOfOperation', 'privilegeWithdrawn'];
  const AP_MODES = ['synch', 'asynchClientServer', 'asynchServerServer'];

  /* Which roles may use which controls (the table of me.md). */
  const CAN = {
    userWrite: ['admin', 'ra'],
    apRead: ['admin', 'auditor'],
    apWrite: ['admin'],
    profileWrite: ['admin'],
    approvalRead: ['admin', 'auditor'],
    approvalWrite: ['admin'],
    auditRead: ['admin', 'auditor'],
  };

  const state = {
    account: null,
    role: null,
    node: null,
    csrf: null,
    timer: null, /* the dashboard's refresh */
    seq: 0,      /* render generation: a late answer of a left page is dropped */
    keepNotice: false,
    userQuery: '',
  };

  function can(what) {
    return CAN[what].indexOf(state.role) >= 0;
  }

  /* ---- DOM helpers ------------------------------------------------- */

  /* el('tag', {attr: value, class: 'x', on: {click: fn}}, child...):
   * children are nodes or strings (as text, never parsed). */
  function el(tag, attrs) {
    const n = document.createElement(tag);
    if (attrs) {
      for (const k of Object.keys(attrs)) {
        const v = attrs[k];
        if (v === undefined || v === null || v === false) continue;
        if (k === 'on') {
          for (const ev of Object.keys(v)) n.addEventListener(ev, v[ev]);
        } else if (k === 'class') {
          n.className = v;
        } else if (k === 'text') {
          n.textContent = v;
        } else if (k === 'value') {
          n.value = v;
        } else if (v === true) {
          n.setAttribute(k, '');
        } else {
          n.setAttribute(k, String(v));
        }
      }
    }
    for (let i = 2; i < arguments.length; i++) append(n, arguments[i]);
    return n;
  }

  function append(n, c) {
    if (c === undefined || c === null || c === false) return;
    if (Array.isArray(c)) {
      for (const x of c) append(n, x);
    } else if (c instanceof Node) {
      n.appendChild(c);
    } else {
      n.appendChild(document.createTextNode(String(c)));
    }
  }

  /* Replace a node's children (null and false children are skipped). */
  function fill(n) {
    n.textContent = '';
    for (let i = 1; i < arguments.length; i++) append(n, arguments[i]);
    return n;
  }

  function fmt(v) {
    if (v === undefined || v === null || v === '') return '\u2014';
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    if (Array.isArray(v)) return v.length ? v.map(fmt).join(', ') : '\u2014';
    if (typeof v === 'object') return JSON.stringify(v);
    /* ISO times as "2026-11-22 21:00:00Z": shorter, still UTC */
    if (typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(v)) {
      return v.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
    }
    return String(v);
  }

  function pick(o) {
    if (!o || typeof o !== 'object') return undefined;
    for (let i = 1; i < arguments.length; i++) {
      const v = o[arguments[i]];
      if (v !== undefined && v !== null && v !== '') return v;
    }
    return undefined;
  }

  /* A list from an answer that is an array or an object holding one. */
  function listOf(data) {
    if (Array.isArray(data)) return data;
    if (!data || typeof data !== 'object') return [];
    for (let i = 1; i < arguments.length; i++) {
      if (Array.isArray(data[arguments[i]])) return data[arguments[i]];
    }
    for (const k of Object.keys(data)) {
      if (Array.isArray(data[k])) return data[k];
    }
    return [];
  }

  /* Columns: the preferred keys some row has, then other scalar keys. */
  function autoColumns(rows, preferred, max) {
    const seen = new Set();
    const cols = [];
    for (const r of rows) {
      if (r && typeof r === 'object') for (const k of Object.keys(r)) seen.add(k);
    }
    for (const p of preferred) {
      if (seen.has(p)) cols.push(p);
    }
    /* The preferred columns fit a laptop screen; other members only
     * when the answer has none of them (an unexpected shape). */
    if (cols.length) return cols;
    for (const k of seen) {
      if (cols.length >= (max || 8)) break;
      if (cols.indexOf(k) >= 0) continue;
      const scalar = rows.every((r) => !r || r[k] === null || typeof r[k] !== 'object' ||
        Array.isArray(r[k]));
      if (scalar) cols.push(k);
    }
    return cols;
  }

  /* Columns of long unbroken values: may break anywhere. */
  const WRAP_KEYS = new Set(['subject', 'serial', 'cert_serial', 'detail', 'profiles', 'target',
    'message']);

  const LABELS = {
    msisdn: 'MSISDN', id_number: 'Identity number', lang: 'Language', aps: 'APs',
    ap_id: 'AP', ap_trans_id: 'AP transaction', key_sha256: 'Device key SHA-256',
    cert_serial: 'Certificate serial', cert_not_after: 'Certificate valid until',
    device_id: 'Device', key_id: 'Key', pin: 'PIN', alg: 'Algorithm', id: 'Id',
    loa: 'LoA', uri: 'URI', cert_profile: 'Certificate profile', jobs_open: 'Open jobs',
    transactions_open: 'Open transactions', keys_active: 'Active keys',
    users_suspended: 'Suspended users', approvals_pending: 'Pending approvals',
    not_before: 'Valid from', not_after: 'Valid until', ts: 'Time', seq: 'Seq',
  };

  function label(key) {
    if (LABELS[key]) return LABELS[key];
    const s = String(key).replace(/_/g, ' ');
    return s.charAt(0).toUpperCase() + s.slice(1);
  }

  /* table(caption, columns, rows, opts): columns are keys or
   * {key, label, render(row) -> node|string}; opts.actions(row) -> nodes;
   * opts.rowLink(row) -> href for the first column. */
  function table(caption, columns, rows, opts) {
    opts = opts || {};
    if (!rows.length) return el('p', { class: 'empty' }, opts.empty || 'No entries.');
    const cols = columns.map((c) => (typeof c === 'string' ? { key: c, label: label(c) } : c));
    const head = el('tr', null, cols.map((c) => el('th', { scope: 'col' }, c.label)));
    if (opts.actions) head.appendChild(el('th', { scope: 'col' }, 'Actions'));
    const body = el('tbody');
    for (const r of rows) {
      const tr = el('tr');
      cols.forEach((c, i) => {
        let content = c.render ? c.render(r) : cell(c.key, r[c.key]);
        if (i === 0 && opts.rowLink) {
          content = el('a', { href: opts.rowLink(r) }, content);
        }
        const a = i === 0 ? { scope: 'row' } : {};
        if (WRAP_KEYS.has(c.key)) a.class = 'wrap';
        tr.appendChild(el(i === 0 ? 'th' : 'td', a, content));
      });
      if (opts.actions) tr.appendChild(el('td', { class: 'actions' }, opts.actions(r)));
      if (opts.rowLink) {
        tr.classList.add('clickable');
        tr.addEventListener('click', (ev) => {
          if (ev.target.closest('a, button, input, select, textarea')) return;
          location.hash = opts.rowLink(r);
        });
      }
      body.appendChild(tr);
    }
    return el('div', { class: 'table-wrap' },
      el('table', { class: 'data' }, el('caption', opts.hideCaption ? { class: 'sr-only' } : null, caption),
        el('thead', null, head), body));
  }

  /* A table cell's content: long fingerprints shortened (the full value
   * in the title). */
  function cell(key, v) {
    if (typeof v === 'string' && /sha256$/.test(key) && v.length > 20) {
      return el('span', { class: 'mono', title: v }, v.slice(0, 16) + '\u2026');
    }
    if (key === 'state' && (typeof v === 'string' || typeof v === 'number')) return stateBadge(v);
    return fmt(v);
  }

  /* A definition list of an object's scalar fields. */
  function fields(obj, preferred, skip) {
    const dl = el('dl', { class: 'fields' });
    const keys = preferred.filter((k) => k in obj);
    for (const k of Object.keys(obj)) {
      if (keys.indexOf(k) < 0 && (!skip || skip.indexOf(k) < 0)) keys.push(k);
    }
    for (const k of keys) {
      const v = obj[k];
      if (v && typeof v === 'object' && !Array.isArray(v)) continue;
      if (Array.isArray(v) && v.some((x) => x && typeof x === 'object')) continue;
      dl.appendChild(el('dt', null, label(k)));
      dl.appendChild(el('dd', { 'data-field': k }, fmt(v)));
    }
    return dl;
  }

  function button(text, onclick, cls) {
    return el('button', { type: 'button', class: 'btn' + (cls ? ' ' + cls : ''), on: { click: onclick } }, text);
  }

  /* A button that asks once more in place before doing something. */
  function confirmButton(text, question, action, cls) {
    const box = el('span', { class: 'confirm' });
    const first = button(text, () => {
      fill(box,
        el('span', { class: 'confirm-q' }, question),
        button('Confirm', async (ev) => {
          ev.target.disabled = true;
          await action();
          ev.target.disabled = false;
        }, 'btn-danger'),
        button('Cancel', () => fill(box, first)));
    }, cls);
    box.appendChild(first);
    return box;
  }

  function input(id, text, attrs) {
    const a = Object.assign({ id: id, name: id }, attrs || {});
    return el('div', { class: 'field' }, el('label', { for: id }, text), el('input', a));
  }

  function textarea(id, text, attrs) {
    const a = Object.assign({ id: id, name: id }, attrs || {});
    return el('div', { class: 'field' }, el('label', { for: id }, text), el('textarea', a));
  }

  function selectField(id, text, options, attrs) {
    const s = el('select', Object.assign({ id: id, name: id }, attrs || {}),
      options.map((o) => (typeof o === 'string' ? el('option', { value: o }, o)
        : el('option', { value: o.value }, o.text))));
    return el('div', { class: 'field' }, el('label', { for: id }, text), s);
  }

  function stateBadge(v) {
    const s = stateText(v);
    return el('span', { class: 'badge badge-' + s.replace(/[^a-z]/g, '') }, s);
  }

  function stateText(v) {
    if (v === 1) return 'active';
    if (v === 2) return 'suspended';
    if (v === undefined || v === null || v === '') return 'unknown';
    return String(v).toLowerCase();
  }

  function section(title, ...children) {
    return el('section', { class: 'panel' }, el('h2', null, title), children);
  }

  function enc(s) {
    return encodeURIComponent(s);
  }

  /* ---- Messages ---------------------------------------------------- */

  function showError(err) {
    const b = document.getElementById('banner');
    let text;
    if (err instanceof ApiError) {
      text = err.status ? 'Error ' + err.status + (err.code ? ' (code ' + err.code + ')' : '') +
        ': ' + err.message : err.message;
    } else {
      text = 'Error: ' + (err && err.message ? err.message : String(err));
    }
    document.getElementById('banner-text').textContent = text;
    b.hidden = false;
  }

  function clearMessages() {
    document.getElementById('banner').hidden = true;
    document.getElementById('notice').hidden = true;
  }

  /* keep: the notice survives the navigation that follows (user created). */
  function notify(text, keep) {
    state.keepNotice = !!keep;
    document.getElementById('notice-text').textContent = text;
    document.getElementById('notice').hidden = false;
  }

  /* ---- API --------------------------------------------------------- */

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body) {
    const opt = {
      method: method,
      headers: { Accept: 'application/json' },
      credentials: 'same-origin',
      cache: 'no-store',
      redirect: 'error',
    };
    /* every request but the session itself (which gives the token) */
    if (path !== '/session') opt.headers['X-MSSP-CSRF'] = state.csrf || '';
    if (method !== 'GET') {
      opt.headers['Content-Type'] = 'application/json';
      opt.body = JSON.stringify(body === undefined ? {} : body);
    }
    let res;
    for (let tries = 0; ; tries++) {
      try {
        res = await fetch(API + path, opt);
      } catch (e) {
        throw new ApiError(0, 0, 'The management service did not answer (connection failed).');
      }
      /* 503 means nothing was done (the ME is busy with long operations):
       * a read waits as told and tries again; a change is left to the
       * operator.  (504 - outcome unknown - is never repeated blindly.) */
      if (res.status !== 503 || method !== 'GET' || tries >= BUSY_RETRIES) break;
      const after = parseInt(res.headers.get('Retry-After') || '1', 10);
      await new Promise((ok) => setTimeout(ok,
        1000 * Math.min(BUSY_WAIT_MAX_S, Number.isFinite(after) && after > 0 ? after : 1)));
    }
    let data = null;
    const text = await res.text();
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = null; }
    }
    if (!res.ok) {
      const er = data && data.error ? data.error : {};
      throw new ApiError(res.status, er.code, er.message || res.statusText || 'request refused');
    }
    return { status: res.status, data: data };
  }

  /* Run an action; show its error in the banner.  Returns the answer or null. */
  async function attempt(fn) {
    try {
      return await fn();
    } catch (e) {
      showError(e);
      return null;
    }
  }

  /* A dual-control answer (202 with an approval) as a notice. */
  function isPending(r) {
    return r && r.status === 202 && r.data && r.data.approval !== undefined;
  }

  function pendingNotice(r) {
    notify('Pending approval ' + r.data.approval + ': another administrator must approve this ' +
      'change on the Approvals page before it takes effect.');
  }

  /* ---- Router ------------------------------------------------------ */

  const routes = {
    dashboard: pageDashboard,
    users: pageUsers,
    aps: pageAps,
    approvals: pageApprovals,
    profiles: pageProfiles,
    audit: pageAudit,
  };

  function route() {
    const h = location.hash;
    if (h && !h.startsWith('#/')) return; /* an in-page anchor (skip link) */
    const parts = (h ? h.slice(2) : '').split('/').filter((p) => p !== '').map((p) => {
      try { return decodeURIComponent(p); } catch (e) { return p; }
    });
    const page = routes[parts[0]] ? parts[0] : 'dashboard';
    if (state.timer) {
      clearInterval(state.timer);
      state.timer = null;
    }
    state.seq++;
    for (const a of document.querySelectorAll('#nav a')) {
      if (a.dataset.page === page) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    const root = el('div', { class: 'page', 'data-page': page });
    fill(document.getElementById('view'), root);
    routes[page](root, parts.slice(1)).catch(showError);
  }

  function heading(root, text, ...extra) {
    const h = el('h1', { tabindex: '-1' }, text);
    root.appendChild(el('div', { class: 'page-head' }, h, el('div', { class: 'page-tools' }, extra)));
    return h;
  }

  function loading(root) {
    const p = el('p', { class: 'loading' }, 'Loading\u2026');
    root.appendChild(p);
    return p;
  }

  /* ---- Dashboard --------------------------------------------------- */

  async function pageDashboard(root) {
    heading(root, 'Dashboard');
    const counts = el('div', { class: 'counters' });
    const metrics = el('div');
    const stamp = el('p', { class: 'muted', id: 'stats-updated' });
    root.append(el('h2', { class: 'sr-only' }, 'Counters'), counts, stamp, metrics);

    async function refresh() {
      if (!root.isConnected) return;
      let r;
      try {
        r = await api('GET', '/stats');
      } catch (e) {
        showError(e);
        return;
      }
      if (!root.isConnected) return;
      const top = [];
      const groups = [];
      flattenStats(r.data || {}, '', top, groups);
      fill(counts, ...top.map(([k, v]) =>
        el('div', { class: 'counter', 'data-key': k },
          el('span', { class: 'counter-value' }, fmt(v)),
          el('span', { class: 'counter-label' }, label(k)))));
      fill(metrics, ...groups.map(([name, rows]) =>
        section(label(name), table(label(name), [{ key: 'k', label: 'Counter' },
          { key: 'v', label: 'Value' }], rows.map(([k, v]) => ({ k: k, v: v })),
        { hideCaption: true }))));
      stamp.textContent = 'Updated ' + new Date().toLocaleTimeString() +
        ' \u00b7 refreshed every ' + STATS_REFRESH_MS / 1000 + ' s';
    }
    await refresh();
    if (root.isConnected) state.timer = setInterval(refresh, STATS_REFRESH_MS);
  }

  /* Top-level numbers become counters; nested objects become tables of
   * their (flattened) values. */
  function flattenStats(obj, prefix, top, groups) {
    for (const k of Object.keys(obj)) {
      const v = obj[k];
      if (v && typeof v === 'object' && !Array.isArray(v)) {
        const rows = [];
        (function walk(o, p) {
          for (const kk of Object.keys(o)) {
            const vv = o[kk];
            if (vv && typeof vv === 'object' && !Array.isArray(vv)) walk(vv, p + kk + '.');
            else rows.push([p + kk, vv]);
          }
        })(v, '');
        if (prefix === '' && rows.every(([, x]) => typeof x === 'number') && rows.length <= 8 &&
          k !== 'metrics') {
          for (const [kk, vv] of rows) top.push([k + ' ' + kk, vv]);
        } else {
          groups.push([k, rows]);
        }
      } else if (v !== null && v !== undefined) {
        top.push([k, v]);
      }
    }
  }

  /* ---- Users ------------------------------------------------------- */

  async function pageUsers(root, args) {
    if (args[0] === 'new' && args.length === 1) return pageUserCreate(root);
    if (args.length >= 1) return pageUserDetail(root, args[0]);
    heading(root, 'Users', can('userWrite') ?
      el('a', { class: 'btn btn-primary', href: '#/users/new' }, 'Create user') : null);
    const q = state.userQuery;
    const form = el('form', { class: 'search', role: 'search' },
      el('label', { for: 'user-q' }, 'Search users'),
      el('input', { id: 'user-q', name: 'q', type: 'search', value: q,
        placeholder: 'MSISDN prefix or part of the name', autocomplete: 'off' }),
      el('button', { type: 'submit', class: 'btn' }, 'Search'));
    const results = el('div', { id: 'user-results' });
    root.append(form, results);
    async function search() {
      const v = form.elements.q.value.trim();
      state.userQuery = v;
      fill(results, el('p', { class: 'loading' }, 'Searching\u2026'));
      const r = await attempt(() => api('GET', '/users?q=' + enc(v) + '&limit=100'));
      if (!r) {
        fill(results);
        return;
      }
      const rows = listOf(r.data, 'users', 'items');
      fill(results, table('Users' + (v ? ' matching \u201c' + v + '\u201d' : ''), [
        { key: 'msisdn', label: 'MSISDN' },
        { key: 'name', label: 'Name', render: userName },
        { key: 'state', label: 'State', render: (u) => stateBadge(u.state) },
        { key: 'country', label: 'Country' },
      ], rows, {
        rowLink: (u) => '#/users/' + enc(u.msisdn),
        empty: 'No user matches.',
      }));
    }
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      clearMessages();
      search();
    });
    await search();
  }

  function userName(u) {
    const full = [u.given_name, u.surname].filter((x) => x).join(' ');
    return u.name || full || '\u2014';
  }

  async function pageUserCreate(root) {
    heading(root, 'Create user');
    if (!can('userWrite')) {
      root.appendChild(el('p', null, 'Your role may not create users.'));
      return;
    }
    const form = el('form', { class: 'form', id: 'user-create' },
      input('u-msisdn', 'MSISDN', { required: true, placeholder: '+35847001001', inputmode: 'tel',
        pattern: '\\+?[0-9]{6,15}', autocomplete: 'off' }),
      el('div', { class: 'row' },
        input('u-given_name', 'Given name', { autocomplete: 'off' }),
        input('u-surname', 'Surname', { autocomplete: 'off' })),
      input('u-name', 'Display name', { autocomplete: 'off' }),
      el('div', { class: 'row' },
        input('u-id_number', 'Identity number (certificate serialNumber)', { autocomplete: 'off' }),
        input('u-country', 'Country (ISO 3166, 2 letters)', { maxlength: 2, autocomplete: 'off' }),
        input('u-lang', 'Language', { placeholder: 'en', autocomplete: 'off' })),
      el('div', { class: 'buttons' },
        el('button', { type: 'submit', class: 'btn btn-primary' }, 'Create'),
        el('a', { class: 'btn', href: '#/users' }, 'Cancel')));
    root.appendChild(form);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearMessages();
      const body = {};
      for (const k of ['msisdn', 'given_name', 'surname', 'name', 'id_number', 'country', 'lang']) {
        const v = form.elements['u-' + k].value.trim();
        if (v !== '') body[k] = k === 'country' ? v.toUpperCase() : v;
      }
      const r = await attempt(() => api('POST', '/users', body));
      if (!r) return;
      if (isPending(r)) {
        pendingNotice(r);
        return;
      }
      const m = (r.data && (r.data.msisdn || (r.data.user && r.data.user.msisdn))) || body.msisdn;
      notify('User ' + m + ' created.', true);
      location.hash = '#/users/' + enc(m);
    });
    form.elements['u-msisdn'].focus();
  }

  async function pageUserDetail(root, msisdn) {
    const h = heading(root, 'User ' + msisdn);
    const codeBox = el('div', { id: 'activation', class: 'code-box', hidden: true });
    const body = el('div');
    root.append(codeBox, body);
    h.focus();
    await loadUser();

    async function loadUser() {
      const seq = state.seq;
      const r = await attempt(() => api('GET', '/users/' + enc(msisdn)));
      if (!r || seq !== state.seq) return;
      const d = r.data || {};
      const u = d.user && typeof d.user === 'object' ? d.user : d;
      let certs = null;
      if (!Array.isArray(d.certificates)) {
        const c = await attempt(() => api('GET', '/certificates?msisdn=' + enc(msisdn)));
        if (c) certs = listOf(c.data, 'certificates', 'items');
      } else {
        certs = d.certificates;
      }
      let profiles = [];
      if (can('userWrite')) {
        const p = await attempt(() => api('GET', '/profiles/registration'));
        if (p) profiles = listOf(p.data, 'profiles', 'items');
      }
      if (seq !== state.seq) return;
      render(d, u, certs, profiles);
    }

    async function act(method, path, payload, done) {
      clearMessages();
      const r = await attempt(() => api(method, path, payload));
      if (!r) return null;
      if (isPending(r)) pendingNotice(r);
      else if (done) notify(typeof done === 'function' ? done(r) : done);
      await loadUser();
      return r;
    }

    function render(d, u, certs, profiles) {
      const devices = listOf(d.devices);
      const keys = listOf(d.keys);
      const jobs = listOf(d.jobs);
      const txs = listOf(d.transactions);
      const st = stateText(u.state);
      const write = can('userWrite');
      const P = '/users/' + enc(msisdn);

      const tools = [];
      if (write) {
        if (st !== 'suspended') {
          tools.push(button('Suspend', () => act('POST', P + '/suspend', {}, 'User suspended.')));
        }
        if (st !== 'active') {
          tools.push(button('Resume', () => act('POST', P + '/resume', {}, 'User resumed.')));
        }
        tools.push(button('New activation code', async () => {
          clearMessages();
          const r = await attempt(() => api('POST', P + '/activation', {}));
          if (!r) return;
          showCode(r.data || {});
        }, 'btn-primary'));
        tools.push(confirmButton('Delete user\u2026',
          'Delete ' + msisdn + ' and revoke its certificates?', async () => {
            clearMessages();
            const r = await attempt(() => api('DELETE', P));
            if (!r) return;
            if (isPending(r)) pendingNotice(r);
            else notify('User ' + msisdn + ' deleted.', true);
            location.hash = '#/users';
          }, 'btn-danger'));
      }

      const identity = section('Identity',
        el('div', { class: 'state-line' }, 'State: ', el('span', { id: 'user-state' }, stateBadge(u.state))),
        fields(u, ['msisdn', 'name', 'given_name', 'surname', 'id_number', 'country', 'lang',
          'created', 'updated'], ['state', 'devices', 'keys', 'jobs', 'transactions', 'certificates']),
        tools.length ? el('div', { class: 'buttons', id: 'user-actions' }, tools) : null);

      const devSection = section('Devices', table('Devices', autoColumns(devices,
        ['device_id', 'id', 'state', 'push', 'key_sha256', 'created']), devices, {
        empty: 'No device is bound: create an activation code and give it to the user.',
        actions: write ? (dv) => confirmButton('Unbind', 'Unbind this device and disable its keys?',
          () => act('DELETE', P + '/devices/' + enc(pick(dv, 'device_id', 'id', 'device')), undefined,
            'Device unbound.')) : null,
      }));

      const keySection = section('Keys', table('Keys', autoColumns(keys,
        ['key_id', 'group', 'purpose', 'state', 'pin', 'cert_serial']), keys, {
        empty: 'No keys.',
        actions: write ? (k) => {
          const id = pick(k, 'key_id', 'id');
          if (!id || k.pin === false || stateText(k.state) !== 'active') return null;
          return button('Unblock PIN', () => act('POST', P + '/keys/' + enc(id) + '/unblock', {},
            (r) => 'PIN unblock job ' + fmt(r.data && r.data.job) + ' created: the phone asks the user for the PUK.'));
        } : null,
      }));
      if (write) keySection.appendChild(keyRequestForm(devices, profiles));

      let certRows = certs;
      if (!certRows) {
        certRows = keys.filter((k) => pick(k, 'cert_serial', 'serial'))
          .map((k) => ({ serial: pick(k, 'cert_serial', 'serial'), key_id: k.key_id, state: k.state }));
      }
      const certSection = section('Certificates', table('Certificates', autoColumns(certRows,
        ['serial', 'key_id', 'state', 'not_after', 'subject']), certRows, {
        empty: 'No certificates.',
        actions: write ? (c) => {
          const serial = pick(c, 'serial', 'cert_serial');
          const cs = stateText(pick(c, 'state', 'status'));
          if (!serial || cs === 'revoked') return null;
          return revokeControl(serial);
        } : null,
      }));

      const jobSection = section('Jobs', table('Jobs', autoColumns(jobs,
        ['job', 'id', 'kind', 'group', 'state', 'status', 'detail', 'updated']), jobs,
      { empty: 'No jobs.' }), el('div', { class: 'buttons' }, button('Refresh', () => {
        clearMessages();
        loadUser();
      })));

      const txSection = section('Recent transactions', table('Recent transactions', autoColumns(txs,
        ['id', 'ap_id', 'state', 'status', 'mode', 'profile', 'created']), txs,
      { empty: 'No transactions.' }));

      fill(body, identity, devSection, keySection, certSection, jobSection, txSection);

      function revokeControl(serial) {
        const box = el('span', { class: 'confirm' });
        const first = button('Revoke\u2026', () => {
          const id = 'reason-' + serial;
          fill(box,
            el('label', { for: id, class: 'inline-label' }, 'Reason'),
            el('select', { id: id }, REVOKE_REASONS.map((x) => el('option', { value: x }, x))),
            button('Revoke certificate', (ev) => {
              const reason = document.getElementById(id).value;
              ev.target.disabled = true;
              act('POST', '/certificates/' + enc(serial) + '/revoke', { reason: reason },
                'Certificate ' + serial + ' revoked (' + reason + ').');
            }, 'btn-danger'),
            button('Cancel', () => fill(box, first)));
        });
        box.appendChild(first);
        return box;
      }
    }

    function keyRequestForm(devices, profiles) {
      const names = profiles.map((p) => (typeof p === 'string' ? p : p.name)).filter((x) => x);
      const devIds = devices.map((dv) => pick(dv, 'device_id', 'id', 'device')).filter((x) => x);
      const form = el('form', { class: 'form inline-form', id: 'key-request' },
        el('h3', null, 'Request keys'),
        el('div', { class: 'row' },
          selectField('kr-profile', 'Registration profile', names.length ? names : [{ value: '', text: '(none defined)' }]),
          devIds.length > 1 ? selectField('kr-device', 'Device', devIds) : null,
          el('div', { class: 'field field-button' },
            el('button', { type: 'submit', class: 'btn', disabled: names.length ? null : true }, 'Request keys'))));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const b = { registration_profile: form.elements['kr-profile'].value };
        if (form.elements['kr-device']) b.device = form.elements['kr-device'].value;
        await act('POST', '/users/' + enc(msisdn) + '/keys', b, (r) => {
          const jobs = listOf(r.data, 'jobs');
          return jobs.length + ' key-generation job' + (jobs.length === 1 ? '' : 's') +
            ' created: ' + jobs.map((j) => fmt(pick(j, 'job', 'id'))).join(', ') +
            '. The phone generates the keys when it is online.';
        });
      });
      return form;
    }

    function showCode(d) {
      fill(codeBox,
        el('h2', null, 'Activation code'),
        el('p', { class: 'code', id: 'activation-code' }, fmt(d.code)),
        el('p', null, 'Shown once: give it to the user now. ' +
          (d.expires ? 'It expires at ' + d.expires + '.' : '') +
          ' A new code replaces an unused one.'));
      codeBox.hidden = false;
    }
  }

  /* ---- APs --------------------------------------------------------- */

  async function pageAps(root, args) {
    if (args[0] === 'new' && args.length === 1) return pageApCreate(root);
    if (args.length >= 1) return pageApDetail(root, args[0]);
    heading(root, 'Application providers', can('apWrite') ?
      el('a', { class: 'btn btn-primary', href: '#/aps/new' }, 'Create AP') : null);
    const l = loading(root);
    const r = await attempt(() => api('GET', '/aps'));
    l.remove();
    if (!r) return;
    const rows = listOf(r.data, 'aps', 'items');
    root.appendChild(table('Application providers', [
      { key: 'id', label: 'AP id' },
      { key: 'name', label: 'Name' },
      { key: 'state', label: 'State', render: (a) => stateBadge(apState(a)) },
      { key: 'modes', label: 'Modes' },
      { key: 'profiles', label: 'Profiles' },
      { key: 'rate', label: 'Rate' },
    ], rows, { rowLink: (a) => '#/aps/' + enc(a.id), empty: 'No APs.' }));
  }

  function apState(a) {
    if (a.state !== undefined) return a.state;
    return a.suspended ? 'suspended' : 'active';
  }

  async function pageApDetail(root, id) {
    heading(root, 'AP ' + id);
    const body = el('div');
    root.appendChild(body);
    async function load() {
      const seq = state.seq;
      const r = await attempt(() => api('GET', '/aps/' + enc(id)));
      if (!r || seq !== state.seq) return;
      const a = r.data && r.data.ap ? r.data.ap : (r.data || {});
      const st = stateText(apState(a));
      const tools = [];
      async function act(method, path, done) {
        clearMessages();
        const x = await attempt(() => api(method, path));
        if (!x) return;
        if (isPending(x)) pendingNotice(x);
        else notify(done);
        await load();
      }
      if (can('apWrite')) {
        if (st !== 'suspended') tools.push(button('Suspend', () => act('POST', '/aps/' + enc(id) + '/suspend', 'AP suspended.')));
        if (st !== 'active') tools.push(button('Resume', () => act('POST', '/aps/' + enc(id) + '/resume', 'AP resumed.')));
        tools.push(confirmButton('Delete AP\u2026', 'Delete this AP (needs a second administrator)?',
          () => act('DELETE', '/aps/' + enc(id), 'AP deleted.'), 'btn-danger'));
      }
      const lists = [];
      for (const k of ['cert_sha256', 'profiles', 'modes', 'notify_urls']) {
        if (Array.isArray(a[k])) {
          lists.push(el('h3', null, label(k)),
            a[k].length ? el('ul', { class: 'plain mono' }, a[k].map((x) => el('li', null, fmt(x))))
              : el('p', { class: 'empty' }, 'None.'));
        }
      }
      fill(body, section('Access point',
        el('div', { class: 'state-line' }, 'State: ', el('span', { id: 'ap-state' }, stateBadge(apState(a)))),
        fields(a, ['id', 'name', 'rate'], ['cert_sha256', 'profiles', 'modes', 'notify_urls', 'state', 'suspended']),
        lists,
        tools.length ? el('div', { class: 'buttons', id: 'ap-actions' }, tools) : null));
    }
    await load();
  }

  async function pageApCreate(root) {
    heading(root, 'Create AP');
    if (!can('apWrite')) {
      root.appendChild(el('p', null, 'Your role may not create APs.'));
      return;
    }
    root.appendChild(el('p', { class: 'muted' },
      'Creating an AP is under dual control: a second administrator approves it.'));
    const form = el('form', { class: 'form', id: 'ap-create' },
      el('div', { class: 'row' },
        input('ap-id', 'AP id (URI)', { required: true, placeholder: 'http://ap.example/', autocomplete: 'off' }),
        input('ap-name', 'Name', { autocomplete: 'off' })),
      textarea('ap-cert', 'Client certificate SHA-256 (hex, one per line)', { rows: 2, required: true, class: 'mono' }),
      textarea('ap-profiles', 'Signature profiles (URIs, one per line; * for all)', { rows: 2, value: '*' }),
      el('fieldset', { class: 'field' }, el('legend', null, 'Messaging modes'),
        AP_MODES.map((m) => el('label', { class: 'check' },
          el('input', { type: 'checkbox', name: 'ap-mode', value: m, checked: true }), ' ' + m))),
      textarea('ap-notify', 'Notification URLs (one per line)', { rows: 2 }),
      input('ap-rate', 'Rate limit (requests per second, 0 = none)', { type: 'number', min: 0, value: '0' }),
      el('div', { class: 'buttons' },
        el('button', { type: 'submit', class: 'btn btn-primary' }, 'Create AP'),
        el('a', { class: 'btn', href: '#/aps' }, 'Cancel')));
    root.appendChild(form);
    const lines = (v) => v.split(/\r?\n/).map((x) => x.trim()).filter((x) => x);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearMessages();
      const e = form.elements;
      const body = {
        id: e['ap-id'].value.trim(),
        name: e['ap-name'].value.trim(),
        cert_sha256: lines(e['ap-cert'].value).map((x) => x.replace(/:/g, '').toLowerCase()),
        profiles: lines(e['ap-profiles'].value),
        modes: Array.from(form.querySelectorAll('input[name=ap-mode]:checked')).map((x) => x.value),
        notify_urls: lines(e['ap-notify'].value),
        rate: Number(e['ap-rate'].value || 0),
      };
      const r = await attempt(() => api('POST', '/aps', body));
      if (!r) return;
      if (isPending(r)) {
        pendingNotice(r);
        form.reset();
        return;
      }
      notify('AP ' + body.id + ' created.', true);
      location.hash = '#/aps/' + enc(body.id);
    });
  }

  /* ---- Approvals --------------------------------------------------- */

  async function pageApprovals(root) {
    heading(root, 'Approvals');
    root.appendChild(el('p', { class: 'muted' },
      'Changes under dual control wait here until an administrator other than the requester approves them.'));
    const body = el('div');
    root.appendChild(body);
    async function load() {
      const seq = state.seq;
      const r = await attempt(() => api('GET', '/approvals'));
      if (!r || seq !== state.seq) return;
      const rows = listOf(r.data, 'approvals', 'items');
      fill(body, table('Approvals', [
        { key: 'id', label: 'Id', render: (a) => fmt(pick(a, 'id', 'approval')) },
        { key: 'op', label: 'Operation', render: (a) => fmt(pick(a, 'op', 'action')) },
        { key: 'target', label: 'Target', render: (a) => fmt(pick(a, 'target', 'arg') ||
          pick(a.body, 'id', 'name', 'msisdn')) },
        { key: 'requester', label: 'Requested by', render: (a) => {
          const r = pick(a, 'requester', 'requested_by', 'actor');
          return r && typeof r === 'object' ? fmt(r.name) + (r.role ? ' (' + r.role + ')' : '') : fmt(r);
        } },
        { key: 'created', label: 'Created' },
        { key: 'expires', label: 'Expires' },
        { key: 'state', label: 'State', render: (a) => stateBadge(a.state) },
        { key: 'request', label: 'Request', render: (a) => {
          const req = pick(a, 'request', 'body');
          return req === undefined ? '\u2014' : el('details', null, el('summary', null, 'Show'),
            el('pre', { class: 'json' }, JSON.stringify(req, null, 2)));
        } },
      ], rows, {
        empty: 'Nothing waits for approval.',
        actions: can('approvalWrite') ? (a) => {
          if (stateText(a.state) !== 'pending') return null;
          const id = pick(a, 'id', 'approval');
          const go = async (what) => {
            clearMessages();
            const x = await attempt(() => api('POST', '/approvals/' + enc(id) + '/' + what));
            if (x) notify('Approval ' + id + (what === 'approve' ? ' approved: the change is done.' : ' rejected.'));
            await load();
          };
          return [button('Approve', () => go('approve'), 'btn-primary'),
            confirmButton('Reject', 'Reject this request?', () => go('reject'))];
        } : null,
      }));
    }
    await load();
  }

  /* ---- Profiles ---------------------------------------------------- */

  const REGPROF_TEMPLATE = {
    name: 'new-profile',
    description: '',
    key_groups: [{ group: 'sign', purpose: 'sign', profiles: ['mss::sign:loa3'], pin: true,
      alg: 'ec-p256', cert_profile: 'sign' }],
  };

  async function pageProfiles(root) {
    heading(root, 'Profiles');
    const sig = el('div');
    const reg = el('div');
    root.append(section('Signature profiles', sig), section('Registration profiles', reg));
    const seq = state.seq;
    const [s, r] = await Promise.all([
      attempt(() => api('GET', '/profiles/signature')),
      attempt(() => api('GET', '/profiles/registration')),
    ]);
    if (seq !== state.seq) return;
    if (s) {
      const rows = listOf(s.data, 'profiles', 'items');
      sig.appendChild(table('Signature profiles', [
        { key: 'uri', label: 'URI' }, 'description', { key: 'loa', label: 'LoA' }, 'purpose'],
      rows, { empty: 'No signature profiles.' }));
    }
    if (r) renderReg(listOf(r.data, 'profiles', 'items'));

    function renderReg(profiles) {
      const items = profiles.map((p) => {
        const box = el('div', { class: 'profile' },
          el('h3', null, fmt(p.name)),
          p.description ? el('p', null, p.description) : null,
          table('Key groups of ' + fmt(p.name), autoColumns(listOf(p.key_groups),
            ['group', 'purpose', 'profiles', 'pin', 'alg', 'cert_profile']), listOf(p.key_groups),
          { empty: 'No key groups.' }));
        if (can('profileWrite')) box.appendChild(editor(p, false));
        return box;
      });
      fill(reg, ...items);
      if (!items.length) reg.appendChild(el('p', { class: 'empty' }, 'No registration profiles.'));
      if (can('profileWrite')) reg.appendChild(editor(REGPROF_TEMPLATE, true));
    }

    function editor(p, isNew) {
      const wrap = el('div', { class: 'editor' });
      const open = button(isNew ? 'New registration profile' : 'Edit as JSON', () => {
        const id = 'rp-' + (isNew ? 'new' : String(p.name).replace(/[^A-Za-z0-9_-]/g, '_'));
        const ta = el('textarea', { id: id, rows: 14, class: 'mono', spellcheck: 'false' });
        ta.value = JSON.stringify(p, null, 2);
        fill(wrap, el('div', { class: 'field' },
          el('label', { for: id }, isNew ? 'New registration profile (JSON)' : 'Registration profile ' + p.name + ' (JSON)'), ta),
        el('div', { class: 'buttons' },
          button('Save', async () => {
            clearMessages();
            let obj;
            try {
              obj = JSON.parse(ta.value);
            } catch (e) {
              showError(new Error('the text is not valid JSON (' + e.message + ')'));
              return;
            }
            const name = isNew ? obj.name : p.name;
            if (!name || typeof name !== 'string') {
              showError(new Error('the profile needs a "name"'));
              return;
            }
            const x = await attempt(() => api('PUT', '/profiles/registration/' + enc(name), obj));
            if (!x) return;
            if (isPending(x)) pendingNotice(x);
            else notify('Registration profile ' + name + ' saved.');
            route();
          }, 'btn-primary'),
          button('Cancel', () => fill(wrap, open))));
        ta.focus();
      });
      wrap.appendChild(open);
      return wrap;
    }
  }

  /* ---- Audit ------------------------------------------------------- */

  async function pageAudit(root) {
    heading(root, 'Audit log');
    const verifyOut = el('div', { id: 'verify-result', 'aria-live': 'polite' });
    const form = el('form', { class: 'search', id: 'audit-form' },
      el('label', { for: 'audit-after' }, 'After sequence'),
      el('input', { id: 'audit-after', name: 'after', type: 'number', min: 0, value: '0' }),
      el('button', { type: 'submit', class: 'btn' }, 'Load'),
      button('Verify chain', verify, 'btn-primary'));
    const list = el('div', { id: 'audit-list' });
    root.append(form, verifyOut, list);

    async function fetchPage(after) {
      const r = await api('GET', '/audit?after=' + enc(after) + '&limit=' + AUDIT_PAGE);
      const rows = listOf(r.data, 'entries', 'items');
      let next = r.data && r.data.next !== undefined ? r.data.next
        : (rows.length >= AUDIT_PAGE ? rows[rows.length - 1].seq : null);
      if (next === undefined) next = null;
      return { rows: rows, next: next };
    }

    async function load(after) {
      const seq = state.seq;
      const pg = await attempt(() => fetchPage(after));
      if (!pg || seq !== state.seq) return;
      show(after, pg);
    }

    /* The API pages forward only: follow "next" to the last page. */
    async function latest(ev) {
      clearMessages();
      const seq = state.seq;
      ev.target.disabled = true;
      let after = Number(form.elements.after.value || 0);
      const pg = await attempt(async () => {
        let p = await fetchPage(after);
        for (let i = 0; p.next !== null && i < AUDIT_MAX_PAGES; i++) {
          const q = await fetchPage(p.next);
          if (!q.rows.length) break;
          after = p.next;
          p = q;
        }
        return p;
      });
      ev.target.disabled = false;
      if (!pg || seq !== state.seq) return;
      form.elements.after.value = String(after);
      show(after, pg);
    }

    function show(after, pg) {
      const rows = pg.rows;
      const next = pg.next;
      const more = next !== null ? el('div', { class: 'buttons' },
        button('Next page', () => {
          form.elements.after.value = String(next);
          load(next);
        }),
        button('Jump to latest', latest)) : null;
      fill(list, table('Audit entries' + (after ? ' after sequence ' + after : ''), [
        'seq', { key: 'ts', label: 'Time' }, 'actor', 'role', 'action', 'target',
        { key: 'outcome', label: 'Outcome', render: (a) => el('span', { class: 'outcome outcome-' +
          String(a.outcome || '').replace(/[^a-z]/g, '') }, fmt(a.outcome)) },
        'detail'], rows, { empty: 'No entries.' }), more);
    }

    async function verify(ev) {
      clearMessages();
      ev.target.disabled = true;
      const r = await attempt(() => api('GET', '/audit/verify'));
      ev.target.disabled = false;
      if (!r) return;
      const d = r.data || {};
      const problems = listOf(d.problems);
      fill(verifyOut, el('div', { class: 'verify ' + (d.ok ? 'verify-ok' : 'verify-bad'),
        'data-ok': d.ok ? 'true' : 'false' },
      el('strong', null, d.ok ? 'Chain verified: ok' : 'Chain verification FAILED'),
      ' \u2014 ' + fmt(d.entries) + ' entries checked' + (problems.length ? ', ' + problems.length + ' problems' : ', no problems') + '.',
      problems.length ? el('ul', null, problems.map((p) => el('li', null, p && typeof p === 'object'
        ? 'line ' + fmt(p.line) + ' (seq ' + fmt(p.seq) + '): ' + fmt(p.kind) + ' \u2014 ' + fmt(p.message)
        : fmt(p)))) : null));
    }

    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      clearMessages();
      load(Number(form.elements.after.value || 0));
    });
    await load(0);
  }

  /* ---- Start ------------------------------------------------------- */

  async function start() {
    document.getElementById('banner-close').addEventListener('click', () => {
      document.getElementById('banner').hidden = true;
    });
    document.getElementById('notice-close').addEventListener('click', () => {
      document.getElementById('notice').hidden = true;
    });
    const sess = document.getElementById('session');
    let r;
    try {
      r = await api('GET', '/session');
    } catch (e) {
      sess.textContent = 'Not signed in';
      showError(e.status === 403 ? new ApiError(403, e.code,
        'this client certificate is not an account of the management service') : e);
      return;
    }
    const d = r.data || {};
    state.account = d.account;
    state.role = d.role;
    state.node = d.node;
    state.csrf = d.csrf;
    fill(sess,
      el('span', { class: 'who' }, el('span', { class: 'muted' }, 'Signed in as '),
        el('strong', { id: 'session-account' }, fmt(d.account))),
      el('span', { class: 'role role-' + String(d.role).replace(/[^a-z]/g, ''), id: 'session-role' }, fmt(d.role)),
      d.node ? el('span', { class: 'node' }, el('span', { class: 'muted' }, 'node '), fmt(d.node)) : null);
    for (const a of document.querySelectorAll('#nav a[data-roles]')) {
      if (a.dataset.roles.split(' ').indexOf(state.role) < 0) a.parentNode.remove();
    }
    document.getElementById('nav').hidden = false;
    window.addEventListener('hashchange', () => {
      /* A notice set just before a navigation (user created) survives
       * it; other messages belong to the page left. */
      document.getElementById('banner').hidden = true;
      if (!state.keepNotice) document.getElementById('notice').hidden = true;
      state.keepNotice = false;
      route();
    });
    route();
  }

  document.addEventListener('DOMContentLoaded', start);
})();
