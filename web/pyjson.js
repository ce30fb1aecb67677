// pyjson.js: writes JSON the way Python's json.dump(obj, f, indent=4) does
// (ensure_ascii on, floats as repr(), bare Infinity/-Infinity/NaN), so the
// snr_results_<run>.json the dashboard downloads is byte-for-byte what the
// reference Spectrum script and `spectrumd scan` write. No DOM: the browser
// test imports it under Node too.

// Python's repr() of a float: shortest round-trip digits, exponent form
// when the decimal exponent is < -4 or >= 16, ".0" on integral values.
export function pyFloatRepr(x) {
	if (Number.isNaN(x))
		return 'NaN';
	if (x === Infinity)
		return 'Infinity';
	if (x === -Infinity)
		return '-Infinity';
	if (x === 0)
		return Object.is(x, -0) ? '-0.0' : '0.0';
	const neg = x < 0;
	// toExponential() without digits gives the shortest unique digits.
	const m = /^(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(Math.abs(x).toExponential());
	const digits = m[1] + (m[2] || '');
	const e = parseInt(m[3], 10);
	let s;
	if (e < -4 || e >= 16) {
		const exp = Math.abs(e) < 10 ? '0' + Math.abs(e) : String(Math.abs(e));
		s = digits[0] + (digits.length > 1 ? '.' + digits.slice(1) : '') +
		    'e' + (e < 0 ? '-' : '+') + exp;
	} else if (e < 0) {
		s = '0.' + '0'.repeat(-e - 1) + digits;
	} else if (digits.length <= e + 1) {
		s = digits + '0'.repeat(e + 1 - digits.length) + '.0';
	} else {
		s = digits.slice(0, e + 1) + '.' + digits.slice(e + 1);
	}
	return neg ? '-' + s : s;
}

// A JSON string literal as json.dumps(ensure_ascii=True) writes it.
export function pyStr(s) {
	let out = '"';
	for (const ch of String(s)) {
		const c = ch.codePointAt(0);
		if (ch === '"')
			out += '\\"';
		else if (ch === '\\')
			out += '\\\\';
		else if (ch === '\n')
			out += '\\n';
		else if (ch === '\r')
			out += '\\r';
		else if (ch === '\t')
			out += '\\t';
		else if (ch === '\b')
			out += '\\b';
		else if (ch === '\f')
			out += '\\f';
		else if (c < 0x20 || (c >= 0x7f && c <= 0xffff))
			out += '\\u' + c.toString(16).padStart(4, '0');
		else if (c > 0xffff) {
			const v = c - 0x10000;
			out += '\\u' + (0xd800 + (v >> 10)).toString(16) +
			    '\\u' + (0xdc00 + (v & 0x3ff)).toString(16);
		} else
			out += ch;
	}
	return out + '"';
}

// json.dumps(value, indent=4) for null, booleans, numbers (each written as
// a Python float), strings, arrays and plain objects.
export function pyDumps(value, indent = 4, level = 0) {
	const pad = ' '.repeat(indent * (level + 1));
	const end = ' '.repeat(indent * level);
	if (value === null || value === undefined)
		return 'null';
	if (value === true)
		return 'true';
	if (value === false)
		return 'false';
	if (typeof value === 'number')
		return pyFloatRepr(value);
	if (typeof value === 'string')
		return pyStr(value);
	if (Array.isArray(value)) {
		if (value.length === 0)
			return '[]';
		return '[\n' + value.map((v) => pad +
		    pyDumps(v, indent, level + 1)).join(',\n') + '\n' + end + ']';
	}
	const keys = Object.keys(value);
	if (keys.length === 0)
		return '{}';
	return '{\n' + keys.map((k) => pad + pyStr(k) + ': ' +
	    pyDumps(value[k], indent, level + 1)).join(',\n') + '\n' + end + '}';
}

// The value of a strict-JSON number field that the API may have written as
// null plus "<field>_class" ("inf", "-inf", "nan").
export function apiNumber(obj, field) {
	const v = obj[field];
	if (typeof v === 'number')
		return v;
	switch (obj[field + '_class']) {
	case 'inf':
		return Infinity;
	case '-inf':
		return -Infinity;
	case 'nan':
		return NaN;
	default:
		return null;
	}
}

// The reference script's flat {module: {"snr": x, "type": t}} file from a
// /snr answer, as json.dump(indent=4) writes it (no trailing newline) and
// as `spectrumd scan` does: matrices without a usable SNR (NaN/Inf
// weights, NaN SNR, errors) left out, by layer ascending (DESIGN.md §2).
export function snrResultsJson(snr) {
	const flat = {};
	const ms = snr.matrices.filter((m) => (m.status === undefined ||
	    m.status === 'ok') && !Number.isNaN(apiNumber(m, 'snr')) &&
	    apiNumber(m, 'snr') !== null);
	// Array.prototype.sort is stable: report order within a layer.
	ms.sort((a, b) => (a.layer ?? -1) - (b.layer ?? -1));
	for (const m of ms)
		flat[m.module] = { snr: apiNumber(m, 'snr'), type: m.type };
	return pyDumps(flat);
}
