// SPDX-License-Identifier: GPL-2.0
// The page's logic without the DOM: event -> table row, filter form <-> /ws query, the URL to
// connect to, /metrics text -> counters, per-second counts -> chart points, and the bounded
// stores (a ring of events, an index of processes by key). Pure functions and small classes,
// so the browser test can call them (window.lifemon.model) and check them one by one.

// The /ws filter keys, in the order the filter bar shows them (one input per key).
export const FILTER_KEYS = ['type', 'comm', 'exe', 'pid', 'ppid', 'uid', 'container',
	'cgroup', 'exit', 'args'];
export const EVENT_TYPES = ['exec', 'exit', 'oom_kill'];

const SIGNALS = ['', 'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS',
	'SIGFPE', 'SIGKILL', 'SIGUSR1', 'SIGSEGV', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGTERM',
	'SIGSTKFLT', 'SIGCHLD', 'SIGCONT', 'SIGSTOP', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGURG',
	'SIGXCPU', 'SIGXFSZ', 'SIGVTALRM', 'SIGPROF', 'SIGWINCH', 'SIGIO', 'SIGPWR', 'SIGSYS'];

export function signalName(n) {
	return SIGNALS[n] || `signal ${n}`;
}

// Lines of one /ws message (one or more JSON objects, each ending "\n"); bad lines are
// returned as {type: 'BAD', text} so a broken line shows instead of vanishing.
export function parseLines(text) {
	const out = [];
	for (const line of text.split('\n')) {
		if (!line)
			continue;
		try {
			out.push(JSON.parse(line));
		} catch (e) {
			out.push({ type: 'BAD', text: line });
		}
	}
	return out;
}

function pad(n, w) {
	return String(n).padStart(w, '0');
}

// "HH:MM:SS.mmm" in local time from ns since the epoch ("" without one).
export function formatTime(ns) {
	if (typeof ns !== 'number' || !isFinite(ns))
		return '';
	const d = new Date(ns / 1e6);
	return `${pad(d.getHours(), 2)}:${pad(d.getMinutes(), 2)}:${pad(d.getSeconds(), 2)}.` +
		pad(d.getMilliseconds(), 3);
}

// A duration in ns as a person reads it: "420 µs", "12.3 ms", "1.25 s", "3m 04s", "2h 05m".
export function formatDuration(ns) {
	if (typeof ns !== 'number' || !isFinite(ns) || ns < 0)
		return '';
	if (ns < 1e6)
		return `${Math.round(ns / 1e3)} µs`;
	if (ns < 1e9)
		return `${(ns / 1e6).toFixed(ns < 1e7 ? 2 : 1)} ms`;
	if (ns < 60e9)
		return `${(ns / 1e9).toFixed(2)} s`;
	const s = Math.floor(ns / 1e9);
	if (s < 3600)
		return `${Math.floor(s / 60)}m ${pad(s % 60, 2)}s`;
	return `${Math.floor(s / 3600)}h ${pad(Math.floor(s / 60) % 60, 2)}m`;
}

// An EXIT's outcome: "0", "3", "SIGKILL", "SIGSEGV (core)"; "" for other types.
export function exitText(ev) {
	if (ev.type !== 'EXIT')
		return '';
	if (ev.signal)
		return signalName(ev.signal) + (ev.core_dumped ? ' (core)' : '');
	return String(ev.exit_code ?? '');
}

// The command line an EXEC ran: args joined by spaces ("" when it has none).
export function argsText(ev) {
	return Array.isArray(ev.args) ? ev.args.join(' ') : '';
}

// What a LOST notice says, in one line.
export function lostText(ev) {
	const n = ev.count ?? 0;
	switch (ev.reason) {
	case 'kernel_ring_full':
		return `${n} events lost in the kernel (CPU ${ev.cpu} ring full) before seq ${ev.before_seq}`;
	case 'slow_client':
		return `${n} events lost: this page fell behind (seq ${ev.first_seq}-${ev.last_seq}` +
			(ev.matched !== undefined ? `, ${ev.matched} matching the filter)` : ')');
	case 'evicted':
		return `${n} events older than lifemon's history are gone (seq ${ev.first_seq}-${ev.last_seq})`;
	case 'restarted':
		return `lifemon restarted (was instance ${ev.previous_instance}); events after seq ` +
			`${(ev.since ?? 1) - 1} of the old run are gone`;
	default:
		return `${n} events lost (${ev.reason || 'unknown reason'})`;
	}
}

/*
 * The table row of one event: the text of each column, and the classes that make OOM kills,
 * failures and LOST notices stand out. Fields hold plain strings (the DOM code sets them as
 * text, never as HTML).
 */
export function rowFromEvent(ev) {
	const type = String(ev.type || '');
	const row = {
		seq: ev.seq ?? null, type, time: formatTime(ev.timestamp),
		pid: ev.pid !== undefined ? String(ev.pid) : '',
		uid: ev.uid !== undefined ? String(ev.uid) : '',
		comm: ev.comm ?? '', exe: ev.exe ?? '', args: argsText(ev),
		container: ev.container_id ?? '', containerShort: (ev.container_id ?? '').slice(0, 12),
		status: '', duration: '', cls: [], key: ev.key ?? '', text: '',
	};
	switch (type) {
	case 'EXIT':
		row.status = exitText(ev);
		row.duration = formatDuration(ev.duration_ns);
		if (ev.oom_killed) {
			row.status += ' (OOM)';
			row.cls.push('oom');
		} else if (ev.signal || ev.exit_code) {
			row.cls.push('fail');
		}
		break;
	case 'OOM_KILL':
		row.status = 'OOM kill';
		row.cls.push('oom');
		break;
	case 'LOST':
		row.text = lostText(ev);
		row.cls.push('lost');
		break;
	case 'HELLO':
	case 'BAD':
		row.text = ev.text ?? JSON.stringify(ev);
		row.cls.push('lost');
		break;
	}
	return row;
}

// Splits one key's value at commas (the OR within a key), trimming each; empties dropped.
function values(v) {
	if (v === undefined || v === null || v === false)
		return [];
	if (v === true)
		return ['nonzero'];
	const list = Array.isArray(v) ? v : String(v).split(',');
	return list.map((s) => String(s).trim()).filter((s) => s !== '');
}

/*
 * The /ws query for a filter form: {type: 'exec,exit' or ['exec'], comm: 'ba*', exit: true,
 * ...} -> "type=exec,exit&comm=ba*&exit=nonzero". Keys in FILTER_KEYS order, each value
 * percent-encoded on its own so the commas between values stay literal; empty keys left out;
 * other keys ignored. The server validates (and answers 400 with the reason), not the page.
 */
export function queryFromFilterForm(obj) {
	const parts = [];
	for (const k of FILTER_KEYS) {
		let v = values(obj ? obj[k] : undefined);
		if (k === 'type')
			v = v.map((s) => s.toLowerCase());
		if (v.length)
			parts.push(`${k}=${v.map(encodeURIComponent).join(',')}`);
	}
	return parts.join('&');
}

// The reverse, for a page URL or a /ws query: {comm: 'a,b', exit: 'nonzero', ...} with only
// the filter keys (repeated keys joined by commas, as the server ORs them).
export function filterFormFromQuery(query) {
	const p = new URLSearchParams(query);
	const out = {};
	for (const k of FILTER_KEYS) {
		const all = p.getAll(k).filter((s) => s !== '');
		if (all.length)
			out[k] = all.join(',');
	}
	return out;
}

/*
 * The /ws URL: `loc` is {protocol, host} of the page; `filter` a query from
 * queryFromFilterForm; opts.since/opts.instance resume after a disconnect, opts.token is the
 * page's own ?token= (a browser cannot set headers on a WebSocket).
 */
export function wsUrl(loc, filter, opts = {}) {
	const q = [];
	if (filter)
		q.push(filter);
	if (opts.since)
		q.push(`since=${opts.since}`);
	if (opts.since && opts.instance)
		q.push(`instance=${encodeURIComponent(opts.instance)}`);
	if (opts.token)
		q.push(`token=${encodeURIComponent(opts.token)}`);
	const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
	return `${scheme}//${loc.host}/ws${q.length ? '?' + q.join('&') : ''}`;
}

// The same request as plain HTTP, to read the reason of a refused upgrade (a WebSocket
// cannot see the body of a 400).
export function httpUrlOfWs(url) {
	return url.replace(/^ws(s?):/, 'http$1:');
}

/*
 * The counters the page shows from /metrics (Prometheus text): events seen by type, loss by
 * stage, WebSocket clients. Unknown or absent metrics count 0.
 */
export function parseMetrics(text) {
	const m = {
		events: { exec: 0, exit: 0, oom_kill: 0 }, kernel_dropped: 0, ws_dropped: 0,
		sink_dropped: 0, ws_clients: 0, ring_fill: null,
	};
	const re = /^([a-z_]+)(?:\{([^}]*)\})?\s+(\S+)/;
	for (const line of text.split('\n')) {
		const r = re.exec(line);
		if (!r)
			continue;
		const v = Number(r[3]);
		const labels = {};
		for (const kv of (r[2] || '').matchAll(/(\w+)="([^"]*)"/g))
			labels[kv[1]] = kv[2];
		switch (r[1]) {
		case 'lifemon_events_total':
			if (labels.type in m.events)
				m.events[labels.type] = v;
			break;
		case 'lifemon_kernel_dropped_total':
			m.kernel_dropped += v;
			break;
		case 'lifemon_ws_dropped_total':
			m.ws_dropped += v;
			break;
		case 'lifemon_sink_dropped_total':
			m.sink_dropped += v;
			break;
		case 'lifemon_ws_clients':
			m.ws_clients = v;
			break;
		case 'lifemon_kernel_ring_fill_ratio':
			m.ring_fill = v;
			break;
		}
	}
	return m;
}

/*
 * Events per second by type for the chart: add() counts an event in the second of its
 * timestamp; only the last `windowSec` seconds are kept (older seconds are pruned), so the
 * memory is bounded whatever the rate.
 */
export class RateCounter {
	constructor(windowSec = 300) {
		this.windowSec = windowSec;
		this.buckets = new Map(); // second -> {exec, exit, oom_kill, lost}
	}

	add(kind, sec, n = 1) {
		let b = this.buckets.get(sec);
		if (!b) {
			b = { exec: 0, exit: 0, oom_kill: 0, lost: 0 };
			this.buckets.set(sec, b);
			if (this.buckets.size > this.windowSec + 60)
				this.prune(sec);
		}
		if (kind in b)
			b[kind] += n;
	}

	prune(nowSec) {
		for (const s of this.buckets.keys())
			if (s <= nowSec - this.windowSec || s > nowSec + 60)
				this.buckets.delete(s);
	}

	clear() {
		this.buckets.clear();
	}
}

/*
 * Chart points: for each kind, one count per second from nowSec - windowSec + 1 to nowSec
 * (zeros where nothing happened), and the largest count (at least 1, for the y scale).
 */
export function chartPoints(counter, nowSec, windowSec, kinds = ['exec', 'exit', 'oom_kill', 'lost']) {
	const series = {};
	let max = 1;
	for (const k of kinds)
		series[k] = new Array(windowSec).fill(0);
	for (let i = 0; i < windowSec; i++) {
		const b = counter.buckets.get(nowSec - windowSec + 1 + i);
		if (!b)
			continue;
		for (const k of kinds) {
			series[k][i] = b[k] || 0;
			if (series[k][i] > max)
				max = series[k][i];
		}
	}
	return { t0: nowSec - windowSec + 1, windowSec, series, max };
}

// A fixed-capacity ring: push() overwrites the oldest once full; toArray() is oldest first.
export class Ring {
	constructor(cap) {
		this.cap = cap;
		this.buf = new Array(cap);
		this.start = 0;
		this.size = 0;
		this.dropped = 0;
	}

	push(x) {
		if (this.size < this.cap) {
			this.buf[(this.start + this.size++) % this.cap] = x;
		} else {
			this.buf[this.start] = x;
			this.start = (this.start + 1) % this.cap;
			this.dropped++;
		}
	}

	toArray() {
		const out = new Array(this.size);
		for (let i = 0; i < this.size; i++)
			out[i] = this.buf[(this.start + i) % this.cap];
		return out;
	}

	clear() {
		this.buf = new Array(this.cap);
		this.start = 0;
		this.size = 0;
		this.dropped = 0;
	}
}

/*
 * The processes seen, by key ("PID:START_NS"): each process's EXEC(s), EXIT, OOM_KILL, its
 * parent's key and the keys of its children seen so far. Bounded: past `cap` processes the
 * oldest is forgotten (Map keeps insertion order); each keeps at most `childCap` children.
 */
export class ProcessIndex {
	constructor(cap = 20000, childCap = 256) {
		this.cap = cap;
		this.childCap = childCap;
		this.procs = new Map();
	}

	node(key) {
		let n = this.procs.get(key);
		if (!n) {
			n = { key, parentKey: '', exec: null, exit: null, oom: null, children: [], extraChildren: 0 };
			this.procs.set(key, n);
			if (this.procs.size > this.cap)
				this.procs.delete(this.procs.keys().next().value);
		}
		return n;
	}

	add(ev) {
		if (!ev.key || !['EXEC', 'EXIT', 'OOM_KILL'].includes(ev.type))
			return;
		const n = this.node(ev.key);
		if (ev.type === 'EXEC')
			n.exec = ev;
		else if (ev.type === 'EXIT')
			n.exit = ev;
		else
			n.oom = ev;
		if (ev.parent_key && n.parentKey !== ev.parent_key) {
			n.parentKey = ev.parent_key;
			const p = this.node(ev.parent_key);
			if (!p.children.includes(ev.key)) {
				if (p.children.length < this.childCap)
					p.children.push(ev.key);
				else
					p.extraChildren++;
			}
		}
	}

	get(key) {
		return this.procs.get(key) || null;
	}

	// Ancestors nearest first, by parent_key, as far as they were seen (at most `max`); the
	// first unseen ancestor ends the chain as {key, unseen: true}.
	parentChain(key, max = 64) {
		const out = [];
		const seen = new Set([key]);
		let n = this.get(key);
		while (n && n.parentKey && out.length < max && !seen.has(n.parentKey)) {
			seen.add(n.parentKey);
			const p = this.get(n.parentKey);
			if (!p || (!p.exec && !p.exit && !p.oom)) {
				out.push({ key: n.parentKey, unseen: true });
				break;
			}
			out.push(p);
			n = p;
		}
		return out;
	}

	children(key) {
		const n = this.get(key);
		return n ? n.children.map((k) => this.get(k) || { key: k }) : [];
	}

	clear() {
		this.procs.clear();
	}
}

// What a process's node says for the details panel: its EXEC/EXIT pair, duration and CPU.
export function lifeOf(node) {
	const ex = node.exec, ez = node.exit;
	const any = ex || ez || node.oom || {};
	return {
		key: node.key,
		pid: any.pid ?? Number(String(node.key).split(':')[0]),
		comm: any.comm ?? '',
		command: ex ? (ex.exe || ex.filename || ex.comm) + (ex.args ? ' ' + argsText(ex) : '') : '',
		started: ex ? formatTime(ex.timestamp) : '',
		ended: ez ? formatTime(ez.timestamp) : '',
		status: ez ? exitText(ez) + (ez.oom_killed ? ' (OOM)' : '') : (node.oom ? 'OOM kill' : 'running or not seen'),
		duration: ez ? formatDuration(ez.duration_ns) : '',
		cpu: ez ? `${formatDuration(ez.cpu_user_ns)} user, ${formatDuration(ez.cpu_sys_ns)} sys` : '',
		maxRss: ez && ez.max_rss_kb !== undefined ? `${ez.max_rss_kb} KiB` : '',
	};
}

// Events as JSON Lines (the export), oldest first.
export function toJsonLines(events) {
	return events.map((e) => JSON.stringify(e)).join('\n') + (events.length ? '\n' : '');
}
