// SPDX-License-Identifier: GPL-2.0
// Events-per-second chart on a <canvas>, hand-written: one line per event kind over the last
// minutes, a y scale, and nothing retained between draws (the points come from
// model.chartPoints). About 80 lines instead of a vendored chart library.

// Draws `pts` ({t0, windowSec, series: {kind: [count per second]}, max}) with `colors`
// ({kind: css colour, axis, text}); sizes the bitmap to the element and the device pixels.
export function drawChart(canvas, pts, colors) {
	const dpr = window.devicePixelRatio || 1;
	const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
	const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
	if (canvas.width !== w || canvas.height !== h) {
		canvas.width = w;
		canvas.height = h;
	}
	const ctx = canvas.getContext('2d');
	ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
	const cw = w / dpr, ch = h / dpr;
	const left = 44, right = 6, top = 6, bottom = 16;
	const pw = cw - left - right, ph = ch - top - bottom;
	ctx.clearRect(0, 0, cw, ch);
	if (pw <= 0 || ph <= 0)
		return;

	const ymax = niceCeil(pts.max);
	ctx.font = '10px system-ui, sans-serif';
	ctx.fillStyle = colors.text;
	ctx.strokeStyle = colors.axis;
	ctx.lineWidth = 1;
	ctx.textAlign = 'right';
	ctx.textBaseline = 'middle';
	for (let i = 0; i <= 4; i++) {
		const y = top + ph - (ph * i) / 4;
		ctx.beginPath();
		ctx.moveTo(left, Math.round(y) + 0.5);
		ctx.lineTo(left + pw, Math.round(y) + 0.5);
		ctx.stroke();
		ctx.fillText(formatRate((ymax * i) / 4), left - 4, y);
	}
	ctx.textAlign = 'center';
	ctx.textBaseline = 'top';
	const minutes = Math.floor(pts.windowSec / 60);
	for (let m = 0; m <= minutes; m++) {
		const x = left + pw - (pw * m * 60) / Math.max(1, pts.windowSec - 1);
		ctx.fillText(m ? `-${m}m` : 'now', Math.min(Math.max(x, left + 10), left + pw - 10), top + ph + 3);
	}

	const n = pts.windowSec;
	for (const [kind, ys] of Object.entries(pts.series)) {
		if (!ys.some((v) => v > 0))
			continue;
		ctx.strokeStyle = colors[kind] || colors.text;
		ctx.lineWidth = 1.5;
		ctx.beginPath();
		for (let i = 0; i < n; i++) {
			const x = left + (pw * i) / Math.max(1, n - 1);
			const y = top + ph - (ph * ys[i]) / ymax;
			if (i)
				ctx.lineTo(x, y);
			else
				ctx.moveTo(x, y);
		}
		ctx.stroke();
	}
}

// 1, 2, 5 times a power of ten, at least v.
export function niceCeil(v) {
	if (!(v > 1))
		return 1;
	const p = Math.pow(10, Math.floor(Math.log10(v)));
	for (const m of [1, 2, 5, 10])
		if (m * p >= v)
			return m * p;
	return 10 * p;
}

function formatRate(v) {
	if (v >= 1e6)
		return `${+(v / 1e6).toFixed(1)}M/s`;
	if (v >= 1e3)
		return `${+(v / 1e3).toFixed(1)}k/s`;
	return `${+v.toFixed(1)}/s`;
}
