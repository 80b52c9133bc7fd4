//! Stride's compiled Apple Health tokenizer: the sanitized bytes of an `export.xml`
//! (core/wearables/parsers/apple_health.py's `_Sanitized`) straight to sample rows.
//!
//! It accepts a strict subset of what libxml2 accepts and never reports an error itself:
//! anything outside that subset, or anything the Python parser would refuse, makes it
//! *bail* (`feed`/`close` return `None`) and the Python parser runs instead, so every
//! error keeps its message and line. A record whose fields are not plainly valid (a date
//! not in Apple's exact form, a value that is not a plain decimal, a missing unit...) is
//! handed back as the attribute dict libxml2 would have built, for the Python row loop to
//! judge. Subset: UTF-8 only (validated), an optional `<?xml version="1.0" ...?>` with
//! encoding UTF-8, comments, elements with ASCII names and no namespaces, attribute values
//! with the five predefined entities and character references, whitespace-only text, no
//! CDATA, processing instructions, DOCTYPE (already blanked) or `\r` in attribute values.
//! Memory is bounded: only an unfinished tag is carried between chunks (at most
//! `MAX_CARRY`), elements at most `MAX_DEPTH` deep, tags at most `MAX_ATTRS` attributes.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDateTime, PyDict, PyFloat, PyList, PyString, PyTuple, PyTzInfo};
use sha1::{Digest, Sha1};

const MAX_CARRY: usize = 3 << 20;
const MAX_DEPTH: usize = 128;
const MAX_NAME: usize = 1000;
const MAX_ATTRS: usize = 64;
const CACHE_MAX: usize = 4096;
const SLEEP: usize = 5; // index of the sleep type in `types`
const UUID_MASK: u128 = !(0xF000u128 << 64) & !(0xC000u128 << 48);
const UUID_V5: u128 = (5u128 << 76) | (0x8000u128 << 48);

/// FxHash (rustc's): the caches' keys are short byte strings.
#[derive(Default, Clone, Copy)]
struct Fx(u64);
impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().unwrap());
            h = (h.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        for &b in chunks.remainder() {
            h = (h.rotate_left(5) ^ b as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        self.0 = h;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}
type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

enum Fail {
    Bail,
    Py(PyErr),
}
impl From<PyErr> for Fail {
    fn from(e: PyErr) -> Self {
        Fail::Py(e)
    }
}
type R<T> = Result<T, Fail>;

#[derive(PartialEq, Clone, Copy)]
enum Phase {
    Start,
    Prolog,
    Root,
    After,
}

struct Attr<'a> {
    name: &'a [u8],
    value: Cow<'a, [u8]>,
}

struct Instant {
    at: Py<PyDateTime>,
    seconds: i64,
    key: Vec<u8>, // "<seconds>.000|": the sample id's text of this instant
}

#[inline]
fn is_ws(c: u8) -> bool {
    c == b' ' || c == b'\t' || c == b'\n' || c == b'\r'
}
#[inline]
fn name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}
#[inline]
fn name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.'
}

/// End of the name starting at `i` (`None`: the bytes end first). Bails on a name outside
/// the subset: non-ASCII, a namespace prefix, or longer than `MAX_NAME`.
fn name_end(b: &[u8], i: usize) -> R<Option<usize>> {
    if i >= b.len() {
        return Ok(None);
    }
    if !name_start(b[i]) {
        return Err(Fail::Bail);
    }
    let mut j = i + 1;
    while j < b.len() && name_char(b[j]) {
        j += 1;
    }
    if j - i > MAX_NAME {
        return Err(Fail::Bail);
    }
    if j >= b.len() {
        return Ok(None);
    }
    let c = b[j];
    if is_ws(c) || c == b'>' || c == b'/' || c == b'=' {
        Ok(Some(j))
    } else {
        Err(Fail::Bail)
    }
}

fn xml_char(c: u32) -> bool {
    matches!(c, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// An attribute value as libxml2 reports it (no DTD: CDATA): tab and line feed become
/// spaces, the predefined entities and character references are replaced.
fn decode(raw: &[u8]) -> R<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        match c {
            b'\t' | b'\n' => {
                out.push(b' ');
                i += 1;
            }
            b'&' => {
                let semi = match memchr::memchr(b';', &raw[i..]) {
                    Some(s) if s <= 12 => i + s,
                    _ => return Err(Fail::Bail),
                };
                let name = &raw[i + 1..semi];
                let ch: u32 = match name {
                    b"lt" => '<' as u32,
                    b"gt" => '>' as u32,
                    b"amp" => '&' as u32,
                    b"quot" => '"' as u32,
                    b"apos" => '\'' as u32,
                    _ => {
                        let (digits, radix) = match name {
                            [b'#', b'x', rest @ ..] => (rest, 16),
                            [b'#', rest @ ..] => (rest, 10),
                            _ => return Err(Fail::Bail),
                        };
                        if digits.is_empty() || !digits.iter().all(|d| (*d as char).is_digit(radix)) {
                            return Err(Fail::Bail);
                        }
                        let text = std::str::from_utf8(digits).map_err(|_| Fail::Bail)?;
                        u32::from_str_radix(text, radix).map_err(|_| Fail::Bail)?
                    }
                };
                if !xml_char(ch) {
                    return Err(Fail::Bail);
                }
                if ch == '&' as u32 {
                    // libxml2 without entity substitution (lxml's resolve_entities=False)
                    // keeps an escaped ampersand as the text "&#38;"
                    out.extend_from_slice(b"&#38;");
                    i = semi + 1;
                    continue;
                }
                let ch = char::from_u32(ch).ok_or(Fail::Bail)?;
                let mut tmp = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                i = semi + 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// The start tag at `i` (`b[i] == b'<'`): `(name end, index after the tag, empty element)`,
/// its attributes in `attrs`; `None` if the bytes end first.
fn start_tag<'a>(b: &'a [u8], i: usize, attrs: &mut Vec<Attr<'a>>) -> R<Option<(usize, usize, bool)>> {
    attrs.clear();
    let len = b.len();
    let ne = match name_end(b, i + 1)? {
        None => return Ok(None),
        Some(e) => e,
    };
    let mut j = ne;
    loop {
        let ws_start = j;
        while j < len && is_ws(b[j]) {
            j += 1;
        }
        if j >= len {
            return Ok(None);
        }
        match b[j] {
            b'>' => return Ok(Some((ne, j + 1, false))),
            b'/' => {
                if j + 1 >= len {
                    return Ok(None);
                }
                return if b[j + 1] == b'>' {
                    Ok(Some((ne, j + 2, true)))
                } else {
                    Err(Fail::Bail)
                };
            }
            _ => {}
        }
        if j == ws_start || attrs.len() >= MAX_ATTRS {
            return Err(Fail::Bail);
        }
        let an_end = match name_end(b, j)? {
            None => return Ok(None),
            Some(e) => e,
        };
        let name = &b[j..an_end];
        if name == b"xmlns" {
            return Err(Fail::Bail);
        }
        j = an_end;
        while j < len && is_ws(b[j]) {
            j += 1;
        }
        if j >= len {
            return Ok(None);
        }
        if b[j] != b'=' {
            return Err(Fail::Bail);
        }
        j += 1;
        while j < len && is_ws(b[j]) {
            j += 1;
        }
        if j >= len {
            return Ok(None);
        }
        let quote = b[j];
        if quote != b'"' && quote != b'\'' {
            return Err(Fail::Bail);
        }
        let vs = j + 1;
        let mut k = vs;
        let mut plain = true;
        loop {
            if k >= len {
                return Ok(None);
            }
            let c = b[k];
            if c == quote {
                break;
            }
            match c {
                b'<' | b'\r' => return Err(Fail::Bail),
                b'&' | b'\t' | b'\n' => plain = false,
                _ => {}
            }
            k += 1;
        }
        let raw = &b[vs..k];
        let value = if plain {
            Cow::Borrowed(raw)
        } else {
            Cow::Owned(decode(raw)?)
        };
        if attrs.iter().any(|a| a.name == name) {
            return Err(Fail::Bail); // libxml2: "Attribute x redefined"
        }
        attrs.push(Attr { name, value });
        j = k + 1;
    }
}

/// `<?xml version="1.0" (encoding="UTF-8")? (standalone="yes|no")? ?>` at the start of
/// `b`: the index after it, `None` if it is not closed yet.
fn declaration(b: &[u8]) -> R<Option<usize>> {
    let end = match memchr::memmem::find(b, b"?>") {
        None => return Ok(None),
        Some(e) => e,
    };
    let body = &b[5..end];
    let mut i = 0;
    let mut seen = 0; // 1 version, 2 encoding, 3 standalone
    loop {
        let ws = i;
        while i < body.len() && is_ws(body[i]) {
            i += 1;
        }
        if i >= body.len() {
            break;
        }
        if i == ws {
            return Err(Fail::Bail);
        }
        let ns = i;
        while i < body.len() && body[i].is_ascii_alphabetic() {
            i += 1;
        }
        let name = &body[ns..i];
        while i < body.len() && is_ws(body[i]) {
            i += 1;
        }
        if i >= body.len() || body[i] != b'=' {
            return Err(Fail::Bail);
        }
        i += 1;
        while i < body.len() && is_ws(body[i]) {
            i += 1;
        }
        if i >= body.len() || (body[i] != b'"' && body[i] != b'\'') {
            return Err(Fail::Bail);
        }
        let q = body[i];
        let vs = i + 1;
        let ve = vs + memchr::memchr(q, &body[vs..]).ok_or(Fail::Bail)?;
        let value = &body[vs..ve];
        i = ve + 1;
        match name {
            b"version" if seen == 0 && value == b"1.0" => seen = 1,
            b"encoding" if seen == 1 && value.eq_ignore_ascii_case(b"utf-8") => seen = 2,
            b"standalone" if (seen == 1 || seen == 2) && (value == b"yes" || value == b"no") => seen = 3,
            _ => return Err(Fail::Bail),
        }
    }
    if seen == 0 {
        return Err(Fail::Bail);
    }
    Ok(Some(end + 2))
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// `2024-03-10 01:59:00 -0800` (exactly) as its fields; `None` for anything else.
fn date_fields(raw: &[u8]) -> Option<(i64, u8, u8, u8, u8, u8, i32)> {
    if raw.len() != 25 {
        return None;
    }
    let d = |i: usize| -> Option<i64> {
        let c = raw[i];
        if c.is_ascii_digit() {
            Some((c - b'0') as i64)
        } else {
            None
        }
    };
    for (pos, sep) in [
        (4, b'-'),
        (7, b'-'),
        (10, b' '),
        (13, b':'),
        (16, b':'),
        (19, b' '),
    ] {
        if raw[pos] != sep {
            return None;
        }
    }
    let two = |i: usize| -> Option<i64> { Some(d(i)? * 10 + d(i + 1)?) };
    let year = two(0)? * 100 + two(2)?;
    let (month, day, hour, minute, second) = (two(5)?, two(8)?, two(11)?, two(14)?, two(17)?);
    let sign = match raw[20] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (oh, om) = (two(21)?, two(23)?);
    // Only what Python's parse surely accepts; the rest goes to it, which says why.
    if !(1900..=2200).contains(&year) || !(1..=12).contains(&month) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 59 || om > 59 || oh * 60 + om > 18 * 60 {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if day < 1 || day > days[(month - 1) as usize] {
        return None;
    }
    Some((
        year,
        month as u8,
        day as u8,
        hour as u8,
        minute as u8,
        second as u8,
        sign * (oh * 60 + om) as i32,
    ))
}

/// A plain non-negative decimal (`62`, `4.2`, `1.5e-05`) as Python's `float()` reads it
/// (both round correctly); `None` for anything else, which Python judges.
fn plain_float(raw: &[u8]) -> Option<f64> {
    let mut i = 0;
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < raw.len() && raw[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > s
    };
    if !digits(&mut i) {
        return None;
    }
    if i < raw.len() && raw[i] == b'.' {
        i += 1;
        if !digits(&mut i) {
            return None;
        }
    }
    if i < raw.len() && (raw[i] == b'e' || raw[i] == b'E') {
        i += 1;
        if i < raw.len() && (raw[i] == b'+' || raw[i] == b'-') {
            i += 1;
        }
        if !digits(&mut i) {
            return None;
        }
    }
    if i != raw.len() {
        return None;
    }
    let value: f64 = std::str::from_utf8(raw).ok()?.parse().ok()?;
    if value.is_finite() {
        Some(value)
    } else {
        None
    }
}

#[inline]
fn text(b: &[u8]) -> &str {
    // SAFETY: every byte handed to the scanner was validated as UTF-8 first, and every
    // slice taken of it starts and ends at an ASCII delimiter.
    unsafe { std::str::from_utf8_unchecked(b) }
}

#[pyclass(module = "stride_native")]
struct Tokenizer {
    types: Vec<Vec<u8>>,     // the 5 quantity types, then the sleep type
    metrics: Vec<Py<PyAny>>, // Metric per type; [SLEEP] is Metric.sleep
    prefixes: Vec<Sha1>,     // SHA-1 of namespace + "user|apple_health|metric|", per type
    asleep: Vec<Vec<u8>>,
    uuid_type: Py<PyAny>,
    safe_unknown: Py<PyAny>,
    new_timezone: Py<PyAny>, // minutes -> timezone
    device: Py<PyAny>,       // (sourceName, device | None) -> (name, name's UTF-8 bytes)
    earliest_s: f64,
    unit_max: usize,
    name_int: Py<PyString>,
    name_is_safe: Py<PyString>,
    unit_s: Py<PyString>,
    zones: FxMap<i32, Py<PyTzInfo>>,
    instants: FxMap<[u8; 25], Instant>,
    devices: FxMap<Vec<u8>, (Py<PyString>, Vec<u8>)>,
    units: FxMap<Vec<u8>, Py<PyString>>,
    counts: FxMap<Vec<u8>, u64>,
    device_key: Vec<u8>,
    // the scanner
    buf: Vec<u8>,
    validated: usize, // buf[..validated] is UTF-8 without U+FFFE/U+FFFF
    phase: Phase,
    stack: Vec<Vec<u8>>,
    failed: bool,
}

#[pymethods]
impl Tokenizer {
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        types: Vec<Vec<u8>>,
        metrics: Vec<Py<PyAny>>,
        prefixes: Vec<Vec<u8>>,
        asleep: Vec<Vec<u8>>,
        uuid_type: Py<PyAny>,
        safe_unknown: Py<PyAny>,
        new_timezone: Py<PyAny>,
        device: Py<PyAny>,
        earliest_s: f64,
        unit_max: usize,
    ) -> PyResult<Self> {
        if types.len() != SLEEP + 1 || metrics.len() != types.len() || prefixes.len() != types.len() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "6 types, metrics and prefixes",
            ));
        }
        Ok(Tokenizer {
            types,
            metrics,
            prefixes: prefixes
                .iter()
                .map(|p| {
                    let mut h = Sha1::new();
                    h.update(p);
                    h
                })
                .collect(),
            asleep,
            uuid_type,
            safe_unknown,
            new_timezone,
            device,
            earliest_s,
            unit_max,
            name_int: PyString::intern(py, "int").unbind(),
            name_is_safe: PyString::intern(py, "is_safe").unbind(),
            unit_s: PyString::intern(py, "s").unbind(),
            zones: FxMap::default(),
            instants: FxMap::default(),
            devices: FxMap::default(),
            units: FxMap::default(),
            counts: FxMap::default(),
            device_key: Vec::new(),
            buf: Vec::new(),
            validated: 0,
            phase: Phase::Start,
            stack: Vec::new(),
            failed: false,
        })
    }

    /// The next sanitized chunk: `(items, odd)` where items are row tuples in record order
    /// and, if `odd`, some are attribute dicts for Python to judge; `None`: bail.
    fn feed<'py>(
        &mut self,
        py: Python<'py>,
        chunk: &[u8],
        latest_s: f64,
    ) -> PyResult<Option<(Bound<'py, PyList>, bool)>> {
        if self.failed {
            return Ok(None);
        }
        self.buf.extend_from_slice(chunk);
        self.run(py, false, latest_s)
    }

    /// The end of the file: the last items, or `None` (bail) if the document is unfinished.
    fn close<'py>(&mut self, py: Python<'py>, latest_s: f64) -> PyResult<Option<(Bound<'py, PyList>, bool)>> {
        if self.failed {
            return Ok(None);
        }
        let out = self.run(py, true, latest_s)?;
        if out.is_some() && (self.phase != Phase::After || !self.buf.is_empty()) {
            self.failed = true;
            return Ok(None);
        }
        Ok(out)
    }

    /// The skip counts (reason, records) since the last call.
    fn take_counts(&mut self) -> Vec<(String, u64)> {
        self.counts
            .drain()
            .map(|(k, n)| (String::from_utf8(k).unwrap_or_default(), n))
            .collect()
    }
}

impl Tokenizer {
    fn run<'py>(
        &mut self,
        py: Python<'py>,
        last: bool,
        latest_s: f64,
    ) -> PyResult<Option<(Bound<'py, PyList>, bool)>> {
        let out = PyList::empty(py);
        let mut buf = std::mem::take(&mut self.buf);
        let result = self
            .validate(&buf, last)
            .and_then(|_| self.scan(py, &buf, last, &out, latest_s));
        match result {
            Ok((consumed, odd)) => {
                buf.drain(..consumed);
                self.validated -= consumed;
                if buf.len() > MAX_CARRY {
                    self.failed = true;
                    return Ok(None);
                }
                self.buf = buf;
                Ok(Some((out, odd)))
            }
            Err(Fail::Bail) => {
                self.failed = true;
                Ok(None)
            }
            Err(Fail::Py(e)) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    /// UTF-8 (a sequence cut by the chunk's end waits for the next), no U+FFFE/U+FFFF.
    fn validate(&mut self, buf: &[u8], last: bool) -> R<()> {
        let from = self.validated;
        let upto = match std::str::from_utf8(&buf[from..]) {
            Ok(_) => buf.len(),
            Err(e) if e.error_len().is_none() && !last => from + e.valid_up_to(),
            Err(_) => return Err(Fail::Bail),
        };
        let new = &buf[from..upto];
        for p in memchr::memchr_iter(0xEF, new) {
            if p + 2 < new.len() && new[p + 1] == 0xBF && (new[p + 2] == 0xBE || new[p + 2] == 0xBF) {
                return Err(Fail::Bail);
            }
        }
        self.validated = upto;
        Ok(())
    }

    /// Scans `buf[..validated]`: (bytes consumed, any odd record).
    fn scan(
        &mut self,
        py: Python<'_>,
        buf: &[u8],
        last: bool,
        out: &Bound<'_, PyList>,
        latest_s: f64,
    ) -> R<(usize, bool)> {
        let b = &buf[..self.validated];
        let len = b.len();
        let mut pos = 0;
        let mut odd = false;
        if self.phase == Phase::Start {
            if len < 6 && !last {
                return Ok((0, false));
            }
            if b.starts_with(b"\xef\xbb\xbf") {
                pos = 3;
            }
            if b[pos..].starts_with(b"<?xml") && b.len() > pos + 5 && is_ws(b[pos + 5]) {
                match declaration(&b[pos..])? {
                    Some(end) => pos += end,
                    None if last || len > 4096 => return Err(Fail::Bail),
                    None => return Ok((0, false)),
                }
            }
            self.phase = Phase::Prolog;
        }
        let mut attrs: Vec<Attr> = Vec::with_capacity(16);
        loop {
            while pos < len && is_ws(b[pos]) {
                pos += 1;
            }
            if pos >= len {
                return Ok((len, odd));
            }
            if b[pos] != b'<' {
                return Err(Fail::Bail); // text (whitespace only is in the subset)
            }
            if pos + 1 >= len {
                return Ok((pos, odd));
            }
            match b[pos + 1] {
                b'!' => {
                    if len < pos + 4 {
                        return Ok((pos, odd));
                    }
                    if &b[pos..pos + 4] != b"<!--" {
                        return Err(Fail::Bail);
                    }
                    let dash = match memchr::memmem::find(&b[pos + 4..], b"--") {
                        None => return Ok((pos, odd)),
                        Some(d) => pos + 4 + d,
                    };
                    if dash + 2 >= len {
                        return Ok((pos, odd));
                    }
                    if b[dash + 2] != b'>' {
                        return Err(Fail::Bail); // "--" inside a comment
                    }
                    pos = dash + 3;
                }
                b'?' => return Err(Fail::Bail),
                b'/' => {
                    if self.phase != Phase::Root {
                        return Err(Fail::Bail);
                    }
                    let ne = match name_end(b, pos + 2)? {
                        None => return Ok((pos, odd)),
                        Some(e) => e,
                    };
                    let mut j = ne;
                    while j < len && is_ws(b[j]) {
                        j += 1;
                    }
                    if j >= len {
                        return Ok((pos, odd));
                    }
                    if b[j] != b'>' || self.stack.last().map(|n| &n[..]) != Some(&b[pos + 2..ne]) {
                        return Err(Fail::Bail);
                    }
                    self.stack.pop();
                    if self.stack.is_empty() {
                        self.phase = Phase::After;
                    }
                    pos = j + 1;
                }
                _ => {
                    let (ne, after, empty) = match start_tag(b, pos, &mut attrs)? {
                        None => return Ok((pos, odd)),
                        Some(t) => t,
                    };
                    let name = &b[pos + 1..ne];
                    match self.phase {
                        Phase::Prolog if name == b"HealthData" => self.phase = Phase::Root,
                        Phase::Root => {}
                        _ => return Err(Fail::Bail),
                    }
                    if name == b"Record" {
                        odd |= self.record(py, &attrs, out, latest_s)?;
                    }
                    if !empty {
                        if self.stack.len() >= MAX_DEPTH {
                            return Err(Fail::Bail);
                        }
                        self.stack.push(name.to_vec());
                    } else if self.stack.is_empty() {
                        self.phase = Phase::After; // <HealthData/>
                    }
                    pos = after;
                }
            }
        }
    }

    fn count(&mut self, prefix: &[u8], what: &[u8]) {
        let mut key = Vec::with_capacity(prefix.len() + what.len());
        key.extend_from_slice(prefix);
        key.extend_from_slice(what);
        *self.counts.entry(key).or_insert(0) += 1;
    }

    /// One `<Record>`: a row appended to `out`, a skip counted, or (true) its attribute dict
    /// appended for Python to judge.
    fn record(&mut self, py: Python<'_>, attrs: &[Attr], out: &Bound<'_, PyList>, latest_s: f64) -> R<bool> {
        let (mut kind, mut start, mut end, mut value, mut unit, mut source, mut device) =
            (None, None, None, None, None, None, None);
        for a in attrs {
            let v: &[u8] = &a.value;
            match a.name {
                b"type" => kind = Some(v),
                b"startDate" => start = Some(v),
                b"endDate" => end = Some(v),
                b"value" => value = Some(v),
                b"unit" => unit = Some(v),
                b"sourceName" => source = Some(v),
                b"device" => device = Some(v),
                _ => {}
            }
        }
        let odd = |out: &Bound<'_, PyList>| -> R<bool> {
            let dict = PyDict::new(py);
            for a in attrs {
                dict.set_item(PyString::new(py, text(a.name)), PyString::new(py, text(&a.value)))?;
            }
            out.append(dict)?;
            Ok(true)
        };
        let Some(kind) = kind else { return odd(out) };
        let Some(index) = self.types.iter().position(|t| t == kind) else {
            self.count(b"apple_health:", kind);
            return Ok(false);
        };
        let (Some(start), Some(end)) = (start, end) else {
            return odd(out);
        };
        if self.instants.len() >= CACHE_MAX {
            self.instants.clear(); // here: both of this record's instants stay cached
        }
        let (Some(start_at), Some(end_at)) = (self.instant(py, start)?, self.instant(py, end)?) else {
            return odd(out);
        };
        let (start_s, end_s) = (self.instants[&start_at].seconds, self.instants[&end_at].seconds);
        if end_s < start_s || (start_s as f64) < self.earliest_s || (end_s as f64) > latest_s {
            return odd(out);
        }
        let (number, unit_text) = if index == SLEEP {
            let Some(category) = value else { return odd(out) };
            if !self.asleep.iter().any(|a| a == category) {
                self.count(b"apple_health:sleep:", category);
                return Ok(false);
            }
            (
                PyFloat::new(py, (end_s - start_s) as f64),
                self.unit_s.clone_ref(py).into_bound(py),
            )
        } else {
            let Some(unit) = unit.filter(|u| !u.is_empty() && text(u).chars().count() <= self.unit_max)
            else {
                return odd(out);
            };
            let Some(number) = value.and_then(plain_float) else {
                return odd(out);
            };
            if self.units.len() > 1024 {
                self.units.clear();
            }
            let unit_text = match self.units.get(unit) {
                Some(u) => u.clone_ref(py),
                None => {
                    let u = PyString::new(py, text(unit)).unbind();
                    self.units.insert(unit.to_vec(), u.clone_ref(py));
                    u
                }
            };
            (PyFloat::new(py, number), unit_text.into_bound(py))
        };
        // The device's name, by Python's own rule (cached under the raw attributes).
        let source = source.unwrap_or(b"");
        self.device_key.clear();
        self.device_key.extend_from_slice(source);
        self.device_key.push(0xFF);
        match device {
            Some(d) => self.device_key.extend_from_slice(d),
            None => self.device_key.push(0xFE),
        }
        if !self.devices.contains_key(&self.device_key) {
            if self.devices.len() > 1024 {
                self.devices.clear();
            }
            let key = (
                PyString::new(py, text(source)),
                device.map(|d| PyString::new(py, text(d))),
            );
            let (name, bytes): (Py<PyString>, Vec<u8>) = self.device.bind(py).call1((key,))?.extract()?;
            self.devices.insert(self.device_key.clone(), (name, bytes));
        }
        let (name, name_bytes) = &self.devices[&self.device_key];
        let (start_i, end_i) = (&self.instants[&start_at], &self.instants[&end_at]);
        let mut digest = self.prefixes[index].clone();
        digest.update(&start_i.key);
        digest.update(&end_i.key);
        digest.update(name_bytes);
        let hash = digest.finalize();
        let id = u128::from_be_bytes(hash[..16].try_into().unwrap()) & UUID_MASK | UUID_V5;
        let sample_id = self.uuid(py, id)?;
        let row = PyTuple::new(
            py,
            [
                sample_id,
                self.metrics[index].bind(py).clone(),
                number.into_any(),
                unit_text.into_any(),
                start_i.at.bind(py).clone().into_any(),
                end_i.at.bind(py).clone().into_any(),
                name.bind(py).clone().into_any(),
            ],
        )?;
        out.append(row)?;
        Ok(false)
    }

    /// A `uuid.UUID` of `value` without `UUID.__init__`: allocated, its slots set directly.
    fn uuid<'py>(&self, py: Python<'py>, value: u128) -> PyResult<Bound<'py, PyAny>> {
        let int = value.into_pyobject(py)?;
        unsafe {
            let tp = self.uuid_type.as_ptr() as *mut ffi::PyTypeObject;
            let alloc = (*tp).tp_alloc.unwrap_or(ffi::PyType_GenericAlloc);
            let raw = alloc(tp, 0);
            let obj = Bound::from_owned_ptr_or_err(py, raw)?;
            if ffi::PyObject_GenericSetAttr(obj.as_ptr(), self.name_int.as_ptr(), int.as_ptr()) != 0
                || ffi::PyObject_GenericSetAttr(
                    obj.as_ptr(),
                    self.name_is_safe.as_ptr(),
                    self.safe_unknown.as_ptr(),
                ) != 0
            {
                return Err(PyErr::fetch(py));
            }
            Ok(obj)
        }
    }

    /// The cache key of `raw`'s instant (parsed and cached if new); `None` if it is not
    /// plainly a valid date, for Python to judge.
    fn instant(&mut self, py: Python<'_>, raw: &[u8]) -> PyResult<Option<[u8; 25]>> {
        let Ok(key) = <[u8; 25]>::try_from(raw) else {
            return Ok(None);
        };
        if self.instants.contains_key(&key) {
            return Ok(Some(key));
        }
        let Some((year, month, day, hour, minute, second, offset)) = date_fields(raw) else {
            return Ok(None);
        };
        let zone = match self.zones.get(&offset) {
            Some(z) => z.clone_ref(py),
            None => {
                let z = self
                    .new_timezone
                    .bind(py)
                    .call1((offset,))?
                    .downcast_into::<PyTzInfo>()?
                    .unbind();
                self.zones.insert(offset, z.clone_ref(py));
                z
            }
        };
        let at = PyDateTime::new(
            py,
            year as i32,
            month,
            day,
            hour,
            minute,
            second,
            0,
            Some(zone.bind(py)),
        )?;
        let local = days_from_civil(year, month as i64, day as i64) * 86400
            + hour as i64 * 3600
            + minute as i64 * 60
            + second as i64;
        let seconds = local - offset as i64 * 60;
        self.instants.insert(
            key,
            Instant {
                at: at.unbind(),
                seconds,
                key: format!("{seconds}.000|").into_bytes(),
            },
        );
        Ok(Some(key))
    }
}

#[pymodule]
fn stride_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Tokenizer>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
