// SPDX-License-Identifier: GPL-2.0
// The live page: one WebSocket to /ws (its query is the filter bar), a table of events newest
// first, pause/clear/export, a details panel per process, the events-per-second chart and the
// /metrics counters. Reconnects by itself with since=<last seq + 1>. Bounded: ROW_CAP rows in
// the table, BACKLOG_CAP events held while paused, ProcessIndex's cap of processes.
// window.lifemon exposes the state (and model.js) for the browser test.
import * as M from './model.js';
import { drawChart } from './chart.js';

const ROW_CAP = 2000;		// rows kept in the table (and exported)
const BACKLOG_CAP = 20000;	// events kept while paused
const WINDOW_SEC = 300;		// the chart's span
const METRICS_MS = 2000;
const RETRY_MIN_MS = 250, RETRY_MAX_MS = 2000;

const $ = (id) => document.getElementById(id);
const el = {
	status: $('status'), notice: $('notice'), pause: $('pause'), pausedCount: $('paused-count'),
	clear: $('clear'), exportBtn: $('export'), form: $('filter'), reset: $('reset'),
	query: $('query'), filterError: $('filter-error'), tbody: document.querySelector('#events tbody'),
	chart: $('chart'), metricsError: $('metrics-error'), details: $('details'),
	detailsClose: $('details-close'), life: $('life'), parents: $('parents'),
	children: $('children'), raw: $('raw'), copy: $('copy'),
};

const pageQuery = new URLSearchParams(location.search);
const st = {
	token: pageQuery.get('token') || '',
	filter: M.queryFromFilterForm(M.filterFormFromQuery(location.search)),
	ws: null, url: '', state: 'idle', opened: false, everOpened: false,
	instance: null, hello: null, lastSeq: 0,
	retryMs: RETRY_MIN_MS, retryTimer: 0,
	paused: false, pausedCount: 0, backlog: new M.Ring(BACKLOG_CAP),
	pending: [], flushQueued: false, nextFlushAt: 0, shown: new M.Ring(ROW_CAP),
	received: 0, flushMs: 0, reconnects: 0, restarts: 0, notices: [], lastError: '', metrics: null,
	selected: null, selectedEv: null, // the row of the details, and its event
};
const procs = new M.ProcessIndex(20000);
const rate = new M.RateCounter(WINDOW_SEC);
const rowEvent = new WeakMap();	// <tr> -> its event

function setStatus(text, cls) {
	el.status.textContent = text;
	el.status.className = cls || '';
}

function notice(text) {
	st.notices.push(text);
	if (st.notices.length > 50)
		st.notices.shift();
	el.notice.textContent = text;
	el.notice.hidden = false;
}

// --- the connection ---

function connect() {
	clearTimeout(st.retryTimer);
	const since = st.lastSeq ? st.lastSeq + 1 : 0;
	st.url = M.wsUrl(location, st.filter, { since, instance: st.instance, token: st.token });
	st.opened = false;
	st.state = 'connecting';
	const ws = new WebSocket(st.url);
	st.ws = ws;
	ws.onopen = () => {
		if (ws !== st.ws)
			return;
		st.opened = true;
		st.state = 'open';
		st.retryMs = RETRY_MIN_MS;
		el.filterError.hidden = true;
		if (st.everOpened) {
			st.reconnects++;
			setStatus(`reconnected to lifemon${since ? `, resuming from seq ${since}` : ''}`, 'ok');
		} else {
			setStatus('connected to lifemon', 'ok');
		}
		st.everOpened = true;
		pollMetrics(); // a restarted lifemon's counters start again: show them now
	};
	ws.onmessage = (m) => {
		if (ws === st.ws)
			onMessage(m.data);
	};
	ws.onclose = (e) => {
		if (ws !== st.ws)
			return;
		st.ws = null;
		if (st.opened) {
			st.state = 'closed';
			st.lastError = `closed: ${e.code}${e.reason ? ' ' + e.reason : ''}`;
			setStatus(`disconnected from lifemon (${e.code}${e.reason ? ': ' + e.reason : ''}); reconnecting`, 'bad');
			retry();
		} else {
			explainFailedConnect(st.url);
		}
	};
}

function retry() {
	clearTimeout(st.retryTimer);
	st.retryTimer = setTimeout(connect, st.retryMs);
	st.retryMs = Math.min(st.retryMs * 2, RETRY_MAX_MS);
}

/*
 * A WebSocket that never opened tells nothing about why. Ask the same URL over plain HTTP:
 * lifemon answers a bad filter with 400 and the reason (any other plain GET /ws with 400
 * "use a WebSocket client"), a missing token with 401. Unreachable: try again later.
 */
async function explainFailedConnect(url) {
	st.state = 'error';
	let res, body;
	try {
		res = await fetch(M.httpUrlOfWs(url), { cache: 'no-store' });
		body = (await res.text()).trim();
	} catch (e) {
		st.lastError = 'lifemon unreachable';
		setStatus(st.everOpened ? 'lifemon unreachable; reconnecting' : 'cannot reach lifemon; retrying', 'bad');
		retry();
		return;
	}
	if (url !== st.url)
		return; // the filter changed meanwhile
	st.lastError = `${res.status}: ${body}`;
	if (res.status === 400 && /^bad (since|instance)/.test(body)) {
		// the resume point is no good (not this instance's): start over, live
		notice(`could not resume (${body}); showing live events from now`);
		st.lastSeq = 0;
		st.instance = null;
		retry();
	} else if (res.status === 400 && !/^use a WebSocket client/.test(body)) {
		st.state = 'refused';
		el.filterError.textContent = body;
		el.filterError.hidden = false;
		setStatus('the filter was refused; fix it and apply again', 'bad');
	} else if (res.status === 401) {
		st.state = 'refused';
		setStatus('lifemon wants a token: open this page as /?token=…', 'bad');
	} else {
		setStatus(`connection refused (${res.status} ${body}); retrying`, 'bad');
		retry();
	}
}

function reconnectNow() {
	const old = st.ws;
	st.ws = null;
	if (old)
		old.close(1000, 'filter changed');
	connect();
}

function onHello(h) {
	if (st.instance && h.instance && h.instance !== st.instance) {
		st.restarts++;
		notice(`lifemon restarted: instance ${st.instance} is gone, now ${h.instance}; ` +
			`events of the old run after seq ${st.lastSeq} were not seen`);
		st.lastSeq = 0;
	}
	st.instance = h.instance || null;
	st.hello = h;
	if (st.state === 'open')
		setStatus(`${el.status.textContent} (lifemon ${h.version}, instance ${h.instance})`, 'ok');
}

function onMessage(data) {
	for (const ev of M.parseLines(data)) {
		if (ev.type === 'HELLO') {
			onHello(ev);
			continue;
		}
		if (ev.type === 'LOST') {
			rate.add('lost', Math.floor(Date.now() / 1000), ev.count || 0);
			if (ev.reason === 'evicted' || ev.reason === 'restarted')
				notice(M.lostText(ev));
			if (ev.last_seq > st.lastSeq)
				st.lastSeq = ev.last_seq;
		} else if (typeof ev.seq === 'number') {
			if (ev.seq > st.lastSeq)
				st.lastSeq = ev.seq;
			if (!st.instance && ev.instance)
				st.instance = ev.instance;
			rate.add(String(ev.type).toLowerCase(), Math.floor(ev.timestamp / 1e9));
			procs.add(ev);
		}
		st.received++;
		if (st.paused) {
			st.backlog.push(ev);
			st.pausedCount++;
		} else {
			enqueue(ev);
		}
	}
	if (st.paused)
		el.pausedCount.textContent = `${st.pausedCount} new while paused`;
}

// --- the table: rows are updated once per animation frame, at most ROW_CAP of them ---

/*
 * Rows are added at most once per animation frame, and when adding them took long, not
 * again before FLUSH_COST_FACTOR times that has passed: at a high rate the table then
 * updates less often with bigger batches, and rows that the same update would push out
 * again (beyond ROW_CAP) are never built. The page keeps most of each second for the user.
 *
 * A few new events (fewer than REWRITE_MIN) get new rows at the top and the oldest rows go.
 * More than that, and the rows already in the table are rewritten in place instead, newest
 * first, touching only the cells whose text changes: a row inserted costs the browser a
 * full style and layout pass even off screen (content-visibility skips a row only once it
 * has been laid out and found off screen), and removing one costs a layout again, while a
 * text change in a row off screen waits until it scrolls into view.
 */
const FLUSH_COST_FACTOR = 4, FLUSH_MAX_WAIT_MS = 1000, REWRITE_MIN = 100;

function enqueue(ev) {
	st.pending.push(ev);
	if (st.pending.length > 2 * ROW_CAP)
		st.pending.splice(0, st.pending.length - ROW_CAP);
	if (!st.flushQueued) {
		st.flushQueued = true;
		const wait = Math.max(0, st.nextFlushAt - performance.now());
		setTimeout(() => requestAnimationFrame(flush), wait);
		setTimeout(flush, wait + 250); // rAF does not run in hidden tabs
	}
}

function flush() {
	if (!st.flushQueued)
		return;
	st.flushQueued = false;
	const t0 = performance.now();
	let batch = st.pending;
	st.pending = [];
	if (batch.length > ROW_CAP)
		batch = batch.slice(batch.length - ROW_CAP);
	for (const ev of batch)
		st.shown.push(ev);
	if (batch.length >= REWRITE_MIN)
		rewriteRows();
	else
		insertRows(batch);
	void el.tbody.offsetHeight; // lay the table out now, so the cost below includes it
	const t1 = performance.now();
	st.flushMs += t1 - t0;
	st.nextFlushAt = t1 + Math.min(FLUSH_MAX_WAIT_MS, FLUSH_COST_FACTOR * (t1 - t0));
}

// `batch` (oldest first) as new rows on top; the rows beyond ROW_CAP go.
function insertRows(batch) {
	const frag = document.createDocumentFragment();
	for (let i = batch.length - 1; i >= 0; i--)
		frag.appendChild(makeRow(batch[i]));
	el.tbody.insertBefore(frag, el.tbody.firstChild);
	let extra = el.tbody.rows.length - ROW_CAP;
	while (extra-- > 0)
		el.tbody.lastElementChild.remove();
}

// The table becomes st.shown, newest first: the rows there are reused top down, rows are
// appended while st.shown has more, and any left over go.
function rewriteRows() {
	const shown = st.shown.toArray();
	let i = shown.length - 1;
	let tr = el.tbody.firstElementChild;
	st.selected = null; // fillRow finds the selected event's row again, if it is still shown
	for (; tr && i >= 0; tr = tr.nextElementSibling)
		fillRow(tr, shown[i--]);
	while (tr) {
		const next = tr.nextElementSibling;
		tr.remove();
		tr = next;
	}
	if (i < 0)
		return;
	const frag = document.createDocumentFragment();
	for (; i >= 0; i--)
		frag.appendChild(makeRow(shown[i]));
	el.tbody.appendChild(frag);
}

/*
 * What the row of an event shows, as strings, worked out when the event is first shown and
 * kept with it (a row rewritten later shows the same time and command).
 */
const rowViews = new WeakMap();	// event -> its view

function viewOf(ev) {
	let v = rowViews.get(ev);
	if (v)
		return v;
	const r = M.rowFromEvent(ev);
	let exe = r.exe, args = r.args;
	if (!r.text && !exe && ev.type !== 'EXEC') {
		const ex = procs.get(ev.key)?.exec; // an EXIT names no file: take its EXEC's
		if (ex) {
			exe = ex.exe || '';
			args = M.argsText(ex);
		}
	}
	const chipK = exe ? 'exe' : (r.comm ? 'comm' : '');
	v = {
		type: r.type, seq: r.seq === null ? null : String(r.seq), cls: r.cls.join(' '),
		time: r.time || formatNow(), text: r.text, pid: r.pid, uid: r.uid,
		chipK, chipV: exe || r.comm, args, title: (exe || r.comm) + (args ? ' ' + args : ''),
		container: r.container, containerShort: r.containerShort,
		status: r.status, duration: r.duration,
	};
	// the cells and chips the row has: a row of another shape is built again
	v.shape = r.text ? 'text' : `p${r.uid ? 'u' : ''}${chipK ? 'c' : ''}${args ? 'a' : ''}` +
		(r.container ? 'k' : '');
	rowViews.set(ev, v);
	return v;
}

/*
 * A row's cells, and the view they show now (`v`), so that rewriting the row compares
 * strings in JavaScript and writes only what changed.
 */
const rowCells = new WeakMap();	// <tr> -> {v, cls, and its cells' nodes}

function makeRow(ev) {
	const tr = document.createElement('tr');
	tr.setAttribute('role', 'row');
	fillRow(tr, ev);
	return tr;
}

function td(tr, cls) {
	const c = document.createElement('td');
	c.className = cls;
	c.setAttribute('role', 'cell');
	tr.appendChild(c);
	return c;
}

// A cell holding only text; returns its text node.
function textTd(tr, cls) {
	return td(tr, cls).appendChild(document.createTextNode(''));
}

function chip(parent) {
	const b = document.createElement('button');
	b.type = 'button';
	b.className = 'chip';
	parent.appendChild(b);
	return b;
}

function setChip(b, key, value, text, label) {
	b.dataset.k = key;
	b.dataset.v = value;
	b.textContent = text;
	b.title = label;
	b.setAttribute('aria-label', label);
}

// The cells of a row of `shape`, empty (the view `undefined` everywhere: all get written).
function buildCells(tr, shape) {
	tr.textContent = '';
	const s = { v: { shape }, cls: null };
	s.time = textTd(tr, 'col-time');
	s.typeTd = td(tr, 'col-type');
	s.type = s.typeTd.appendChild(document.createTextNode(''));
	if (shape === 'text') {
		s.text = textTd(tr, 'col-text');
		s.text.parentNode.colSpan = 6;
		return s;
	}
	s.pid = textTd(tr, 'col-pid');
	const user = td(tr, 'col-user');
	if (shape.includes('u'))
		s.uid = chip(user);
	s.cmd = td(tr, 'col-cmd');
	if (shape.includes('c'))
		s.chip = chip(s.cmd);
	if (shape.includes('a')) {
		const a = document.createElement('span');
		a.className = 'args';
		s.args = a.appendChild(document.createTextNode(''));
		s.cmd.appendChild(a);
	}
	const cont = td(tr, 'col-container');
	if (shape.includes('k'))
		s.container = chip(cont);
	s.status = textTd(tr, 'col-status');
	s.dur = textTd(tr, 'col-dur');
	return s;
}

// Makes `tr` show `ev` (its cells reused when they have the same shape).
function fillRow(tr, ev) {
	const v = viewOf(ev);
	let s = rowCells.get(tr);
	if (!s || s.v.shape !== v.shape) {
		s = buildCells(tr, v.shape);
		rowCells.set(tr, s);
	}
	rowEvent.set(tr, ev);
	const selected = ev === st.selectedEv;
	if (selected)
		st.selected = tr;
	const cls = selected ? (v.cls ? v.cls + ' selected' : 'selected') : v.cls;
	if (s.cls !== cls)
		tr.className = s.cls = cls;
	const o = s.v;
	if (o === v)
		return;
	s.v = v;
	if (o.type !== v.type) {
		tr.dataset.type = v.type;
		s.typeTd.className = 'col-type t-' + v.type;
		s.type.data = v.type;
	}
	if (o.seq !== v.seq) {
		if (v.seq === null)
			tr.removeAttribute('data-seq');
		else
			tr.dataset.seq = v.seq;
	}
	if (o.time !== v.time)
		s.time.data = v.time;
	if (v.shape === 'text') {
		if (o.text !== v.text)
			s.text.data = v.text;
		return;
	}
	if (o.pid !== v.pid)
		s.pid.data = v.pid;
	if (s.uid && o.uid !== v.uid)
		setChip(s.uid, 'uid', v.uid, v.uid, `filter on uid ${v.uid}`);
	if (s.chip && (o.chipK !== v.chipK || o.chipV !== v.chipV))
		setChip(s.chip, v.chipK, v.chipV, v.chipV, `filter on ${v.chipK} ${v.chipV}`);
	if (o.title !== v.title)
		s.cmd.title = v.title;
	if (s.args && o.args !== v.args)
		s.args.data = ' ' + v.args;
	if (s.container && o.container !== v.container)
		setChip(s.container, 'container', v.container, v.containerShort,
			`filter on container ${v.container}`);
	if (o.status !== v.status)
		s.status.data = v.status;
	if (o.duration !== v.duration)
		s.dur.data = v.duration;
}

function formatNow() {
	return M.formatTime(Date.now() * 1e6);
}

// --- filter bar ---

function formObject() {
	const fd = new FormData(el.form);
	const obj = {};
	for (const k of M.FILTER_KEYS)
		obj[k] = k === 'type' ? fd.getAll('type').join(',') : (fd.get(k) || '');
	return obj;
}

function setForm(obj) {
	for (const box of el.form.querySelectorAll('input[name="type"]'))
		box.checked = String(obj.type || '').toLowerCase().split(',').includes(box.value);
	el.form.elements.exit.checked = obj.exit === 'nonzero';
	for (const k of M.FILTER_KEYS)
		if (k !== 'type' && k !== 'exit')
			el.form.elements[k].value = obj[k] || '';
}

function applyFilter() {
	st.filter = M.queryFromFilterForm(formObject());
	el.query.textContent = st.filter ? `/ws?${st.filter}` : '/ws (everything)';
	el.filterError.hidden = true;
	const q = new URLSearchParams(st.filter);
	if (st.token)
		q.set('token', st.token);
	history.replaceState(null, '', q.toString() ? `?${q}` : location.pathname);
	// a new view: what the table holds no longer matches the filter
	clearTable();
	st.lastSeq = 0;
	st.retryMs = RETRY_MIN_MS;
	st.everOpened = false; // a new stream, not a reconnect
	reconnectNow();
}

// A clicked value as a filter: globs match it literally (fnmatch escapes with a backslash).
function addFilter(key, value) {
	const obj = formObject();
	obj[key] = ['comm', 'exe', 'cgroup'].includes(key) ? value.replace(/[\\*?[]/g, '\\$&') : value;
	setForm(obj);
	applyFilter();
}

// --- pause, clear, export ---

function setPaused(p) {
	st.paused = p;
	el.pause.textContent = p ? 'Resume' : 'Pause';
	el.pause.setAttribute('aria-pressed', String(p));
	if (p) {
		el.pausedCount.textContent = '0 new while paused';
		return;
	}
	for (const ev of st.backlog.toArray())
		enqueue(ev);
	st.backlog.clear();
	st.pausedCount = 0;
	el.pausedCount.textContent = '';
}

function clearTable() {
	el.tbody.textContent = '';
	st.pending = [];
	st.shown.clear();
	st.backlog.clear();
	st.pausedCount = 0;
	if (st.paused)
		el.pausedCount.textContent = '0 new while paused';
	closeDetails();
}

function exportShown() {
	const blob = new Blob([M.toJsonLines(st.shown.toArray())], { type: 'application/x-ndjson' });
	const a = document.createElement('a');
	a.href = URL.createObjectURL(blob);
	a.download = `lifemon-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`;
	document.body.appendChild(a);
	a.click();
	a.remove();
	setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// --- details ---

function describe(node) {
	const l = M.lifeOf(node);
	return `${l.pid} ${l.command || l.comm}${l.status && node.exit ? ' → ' + l.status : ''}`;
}

function li(list, text) {
	const x = document.createElement('li');
	x.textContent = text;
	list.appendChild(x);
}

function showDetails(tr) {
	const ev = rowEvent.get(tr);
	if (!ev)
		return;
	markSelected(st.selected, false);
	st.selected = tr;
	st.selectedEv = ev;
	markSelected(tr, true);
	el.details.hidden = false;
	el.raw.textContent = JSON.stringify(ev, null, 2);
	el.life.textContent = '';
	el.parents.textContent = '';
	el.children.textContent = '';
	const node = ev.key ? procs.get(ev.key) : null;
	if (!node) {
		li(el.parents, ev.key ? 'not seen' : 'no process key');
		return;
	}
	const l = M.lifeOf(node);
	for (const [k, v] of [['pid', l.pid], ['key', l.key], ['comm', l.comm], ['command', l.command],
		['exec', l.started], ['exit', l.ended], ['status', l.status], ['duration', l.duration],
		['CPU', l.cpu], ['max RSS', l.maxRss]]) {
		if (v === '' || v === undefined)
			continue;
		const dt = document.createElement('dt'), dd = document.createElement('dd');
		dt.textContent = k;
		dd.textContent = v;
		el.life.append(dt, dd);
	}
	const chain = procs.parentChain(ev.key);
	for (const p of chain)
		li(el.parents, p.unseen ? `${p.key} (not seen)` : describe(p));
	if (!chain.length)
		li(el.parents, 'none seen');
	const kids = procs.children(ev.key);
	for (const c of kids)
		li(el.children, c.exec || c.exit ? describe(c) : c.key);
	if (node.extraChildren)
		li(el.children, `and ${node.extraChildren} more`);
	if (!kids.length)
		li(el.children, 'none seen');
}

function markSelected(tr, on) {
	if (!tr)
		return;
	tr.classList.toggle('selected', on);
	const s = rowCells.get(tr);
	if (s)
		s.cls = tr.className; // what fillRow compares with
}

function closeDetails() {
	el.details.hidden = true;
	markSelected(st.selected, false);
	st.selected = null;
	st.selectedEv = null;
}

async function copyRaw() {
	const ev = st.selectedEv;
	const text = ev ? JSON.stringify(ev) : el.raw.textContent;
	try {
		await navigator.clipboard.writeText(text);
		el.copy.textContent = 'Copied';
	} catch (e) {
		const range = document.createRange(); // fallback: select it for Ctrl+C
		range.selectNodeContents(el.raw);
		getSelection().removeAllRanges();
		getSelection().addRange(range);
		el.copy.textContent = 'Selected: press Ctrl+C';
	}
	setTimeout(() => { el.copy.textContent = 'Copy JSON'; }, 1500);
}

// --- chart and counters ---

function cssVar(name) {
	return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function redrawChart() {
	const pts = M.chartPoints(rate, Math.floor(Date.now() / 1000), WINDOW_SEC);
	drawChart(el.chart, pts, {
		exec: cssVar('--exec'), exit: cssVar('--exit'), oom_kill: cssVar('--oom_kill'),
		lost: cssVar('--lostc'), axis: cssVar('--line'), text: cssVar('--muted'),
	});
}

async function pollMetrics() {
	try {
		const res = await fetch('/metrics' + (st.token ? `?token=${encodeURIComponent(st.token)}` : ''),
			{ cache: 'no-store' });
		if (!res.ok)
			throw new Error(`${res.status}`);
		const m = M.parseMetrics(await res.text());
		st.metrics = m;
		for (const c of document.querySelectorAll('#counters td[data-m]')) {
			const v = c.dataset.m.split('.').reduce((o, k) => o?.[k], m);
			c.textContent = typeof v === 'number' ? v.toLocaleString('en-US') : '';
		}
		el.metricsError.hidden = true;
	} catch (e) {
		el.metricsError.textContent = `/metrics unavailable (${e.message})`;
		el.metricsError.hidden = false;
	}
}

// --- wiring ---

el.form.addEventListener('submit', (e) => {
	e.preventDefault();
	applyFilter();
});
el.reset.addEventListener('click', () => {
	setForm({});
	applyFilter();
});
el.pause.addEventListener('click', () => setPaused(!st.paused));
el.clear.addEventListener('click', clearTable);
el.exportBtn.addEventListener('click', exportShown);
el.detailsClose.addEventListener('click', closeDetails);
el.copy.addEventListener('click', copyRaw);
el.notice.addEventListener('click', () => { el.notice.hidden = true; });
el.tbody.addEventListener('click', (e) => {
	const c = e.target.closest('.chip');
	if (c) {
		addFilter(c.dataset.k, c.dataset.v);
		return;
	}
	const tr = e.target.closest('tr');
	if (tr)
		showDetails(tr);
});

window.lifemon = {
	model: M,
	get wsUrl() { return st.url; },
	get filter() { return st.filter; },
	get state() { return st.state; },
	get instance() { return st.instance; },
	get hello() { return st.hello; },
	get lastSeq() { return st.lastSeq; },
	get lastError() { return st.lastError; },
	get notices() { return st.notices.slice(); },
	get metrics() { return st.metrics; },
	get counters() {
		return {
			received: st.received, rows: el.tbody.rows.length, pending: st.pending.length,
			flushMs: Math.round(st.flushMs),
			paused: st.paused, pausedCount: st.pausedCount, backlog: st.backlog.size,
			reconnects: st.reconnects, restarts: st.restarts, processes: procs.procs.size,
		};
	},
	limits: { ROW_CAP, BACKLOG_CAP, WINDOW_SEC },
	// the rows shown, oldest first (what Export downloads)
	events() { return st.shown.toArray(); },
	// for tests: a /ws message through the same path as one from the socket
	feed(text) { onMessage(text); },
};

setForm(M.filterFormFromQuery(location.search));
el.query.textContent = st.filter ? `/ws?${st.filter}` : '/ws (everything)';
setStatus('connecting');
connect();
pollMetrics();
setInterval(pollMetrics, METRICS_MS);
redrawChart();
setInterval(redrawChart, 1000);
addEventListener('resize', redrawChart);
