//! Strict, panic-free `.npy` reader (format versions 1.0, 2.0 and 3.0) and an f32 writer.
//!
//! The header is a Python dict literal; it is parsed by hand (no `eval`), every size it declares
//! is checked against the bytes actually present before anything is allocated, and the data must
//! fill the rest of the file exactly.

use super::Tensor;
use crate::error::{Error, Result};

/// The six magic bytes every `.npy` file starts with.
pub(crate) const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Nesting limit for the header literal (a real header nests at most two levels).
const MAX_DEPTH: usize = 16;

/// Parses a whole `.npy` file held in memory; `name` (usually the path) prefixes error messages.
pub fn read_npy(bytes: &[u8], name: &str) -> Result<Tensor> {
    let fail = |msg: String| Error::Format(format!("{name}: {msg}"));

    let head = bytes.len().min(MAGIC.len());
    if bytes.len() < 8 || bytes[..head] != MAGIC[..head] {
        let what = if bytes[..head] == MAGIC[..head] {
            format!("too short to be a .npy file ({})", n_bytes(bytes.len()))
        } else {
            "not a .npy file (bad magic bytes)".to_string()
        };
        return Err(fail(what));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len_size, utf8) = match (major, minor) {
        (1, 0) => (2, false),
        (2, 0) => (4, false),
        (3, 0) => (4, true),
        _ => {
            return Err(fail(format!(
                "unsupported .npy format version {major}.{minor} (expected 1.0, 2.0 or 3.0)"
            )))
        }
    };
    let start = 8 + len_size;
    let header_len = match bytes.get(8..start) {
        Some(&[a, b]) => usize::from(u16::from_le_bytes([a, b])),
        Some(&[a, b, c, d]) => {
            usize::try_from(u32::from_le_bytes([a, b, c, d])).unwrap_or(usize::MAX)
        }
        _ => {
            return Err(fail(format!(
                "truncated: file ends inside the header length field ({})",
                n_bytes(bytes.len())
            )))
        }
    };
    let header = match start
        .checked_add(header_len)
        .and_then(|end| bytes.get(start..end))
    {
        Some(h) => h,
        None => {
            return Err(fail(format!(
                "header length {header_len} runs past the end of the file ({})",
                n_bytes(bytes.len())
            )))
        }
    };
    let data = &bytes[start + header.len()..];

    let text = if utf8 {
        std::str::from_utf8(header).map_err(|e| fail(format!("header is not valid UTF-8 ({e})")))?
    } else {
        if let Some(pos) = header.iter().position(|b| !b.is_ascii()) {
            return Err(fail(format!(
                "header contains a non-ASCII byte 0x{:02x} at offset {pos}",
                header[pos]
            )));
        }
        // All ASCII, so this cannot fail; map the error anyway rather than unwrap.
        std::str::from_utf8(header).map_err(|e| fail(format!("header is not ASCII ({e})")))?
    };
    if !text.ends_with('\n') {
        return Err(fail(
            "header is not terminated by a newline (corrupt or truncated header)".to_string(),
        ));
    }

    let header = parse_header(text).map_err(fail)?;
    let count = header
        .shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            fail(format!(
                "shape {} has too many elements (overflows usize)",
                shape_tuple(&header.shape)
            ))
        })?;
    let item = header.dtype.kind.size();
    let declared = describe(&header.shape, header.dtype.kind.name());
    let expected = count.checked_mul(item).ok_or_else(|| {
        fail(format!(
            "header declares {declared}, whose byte size overflows usize"
        ))
    })?;
    if data.len() < expected {
        return Err(fail(format!(
            "truncated: header declares {declared} ({}) but only {} of data follow",
            n_bytes(expected),
            n_bytes(data.len())
        )));
    }
    if data.len() > expected {
        return Err(fail(format!(
            "{} of trailing data after the {declared} ({}) declared by the header; the file is corrupt",
            n_bytes(data.len() - expected),
            n_bytes(expected)
        )));
    }

    // Only now, with the size matched against real bytes, allocate.
    let values = decode(data, header.dtype.kind, header.dtype.big_endian).map_err(fail)?;
    let values = if header.fortran_order {
        fortran_to_c(&values, &header.shape)
    } else {
        values
    };
    Ok(Tensor {
        shape: header.shape,
        data: values,
        dtype: header.dtype.kind.name(),
    })
}

/// Serialises a row-major f32 array as `.npy` (version 1.0, `'<f4'`, C order).
///
/// `data.len()` should equal the product of `shape`; [`super::write_npy`] checks this, this
/// function writes whatever it is given.
pub fn npy_bytes(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': {}, }}",
        shape_literal(shape)
    );
    // Version 1.0 has a u16 header length; fall back to 2.0 only for absurdly long shapes.
    let (version, len_size) = if dict.len() + 64 <= usize::from(u16::MAX) {
        (1u8, 2usize)
    } else {
        (2u8, 4usize)
    };
    let prefix = MAGIC.len() + 2 + len_size;
    // Pad with spaces so that magic + header end on a 64-byte boundary, then the newline.
    let unpadded = prefix + dict.len() + 1;
    let total = unpadded.div_ceil(64) * 64;
    let header_len = total - prefix;

    let mut out = Vec::with_capacity(total + data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&u16::try_from(header_len).unwrap_or(u16::MAX).to_le_bytes());
    } else {
        out.extend_from_slice(&u32::try_from(header_len).unwrap_or(u32::MAX).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Element types the reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    F16,
    F32,
    F64,
}

impl Kind {
    fn size(self) -> usize {
        match self {
            Kind::F16 => 2,
            Kind::F32 => 4,
            Kind::F64 => 8,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::F16 => "float16",
            Kind::F32 => "float32",
            Kind::F64 => "float64",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Dtype {
    kind: Kind,
    big_endian: bool,
}

#[derive(Debug)]
struct Header {
    dtype: Dtype,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// "1 byte", "24 bytes".
fn n_bytes(n: usize) -> String {
    if n == 1 {
        "1 byte".to_string()
    } else {
        format!("{n} bytes")
    }
}

/// "576x1024 float32", "5 float16", "scalar float32".
fn describe(shape: &[usize], dtype: &str) -> String {
    if shape.is_empty() {
        format!("scalar {dtype}")
    } else {
        format!("{} {dtype}", join_dims(shape, "x"))
    }
}

/// Dimensions joined by `sep`, elided after the first few so that messages stay short.
fn join_dims(shape: &[usize], sep: &str) -> String {
    const SHOWN: usize = 8;
    let dims: Vec<String> = shape.iter().take(SHOWN).map(usize::to_string).collect();
    let mut out = dims.join(sep);
    if shape.len() > SHOWN {
        out.push_str(&format!("{sep}... ({} dimensions)", shape.len()));
    }
    out
}

/// Python tuple syntax with every dimension, as the writer must emit it: "()", "(5,)",
/// "(2, 3)". (Messages use [`shape_tuple`], which elides long shapes.)
fn shape_literal(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    match shape {
        [d] => format!("({d},)"),
        _ => format!("({})", dims.join(", ")),
    }
}

/// Python tuple syntax: "()", "(5,)", "(2, 3)" (elided beyond eight dimensions; for messages).
fn shape_tuple(shape: &[usize]) -> String {
    match shape {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        _ => {
            format!("({})", join_dims(shape, ", "))
        }
    }
}

fn decode(data: &[u8], kind: Kind, big: bool) -> std::result::Result<Vec<f32>, String> {
    Ok(match kind {
        Kind::F32 => data
            .chunks_exact(4)
            .map(|c| {
                let b = [c[0], c[1], c[2], c[3]];
                if big {
                    f32::from_be_bytes(b)
                } else {
                    f32::from_le_bytes(b)
                }
            })
            .collect(),
        Kind::F16 => data
            .chunks_exact(2)
            .map(|c| {
                let b = [c[0], c[1]];
                let h = if big {
                    half::f16::from_be_bytes(b)
                } else {
                    half::f16::from_le_bytes(b)
                };
                h.to_f32()
            })
            .collect(),
        Kind::F64 => super::narrow_f64(data.chunks_exact(8).map(|c| {
            let b = [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]];
            if big {
                f64::from_be_bytes(b)
            } else {
                f64::from_le_bytes(b)
            }
        }))?,
    })
}

/// Reorders column-major (Fortran) data of any rank into row-major order.
fn fortran_to_c(src: &[f32], shape: &[usize]) -> Vec<f32> {
    let rank = shape.len();
    if rank <= 1 || src.is_empty() {
        return src.to_vec();
    }
    // Row-major strides; their products never exceed src.len(), which was checked.
    let mut strides = vec![0usize; rank];
    let mut acc = 1usize;
    for (stride, &dim) in strides.iter_mut().zip(shape).rev() {
        *stride = acc;
        acc = acc.saturating_mul(dim);
    }
    let mut out = vec![0.0f32; src.len()];
    let mut index = vec![0usize; rank];
    let mut dest = 0usize;
    for &v in src {
        if let Some(slot) = out.get_mut(dest) {
            *slot = v;
        }
        // Advance the multi-index with axis 0 varying fastest (Fortran order).
        for ((i, &dim), &stride) in index.iter_mut().zip(shape).zip(&strides) {
            *i += 1;
            dest += stride;
            if *i < dim {
                break;
            }
            dest -= stride * dim;
            *i = 0;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Header literal parser: the subset of Python literal syntax numpy writes (and a little more,
// so that a structured or object dtype is reported as such instead of as a syntax error).

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Int(i128),
    Bool(bool),
    None,
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        format!(
            "malformed .npy header: {what} at header offset {}",
            self.pos
        )
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c') = self.s.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> std::result::Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        match self.peek() {
            None => Err(self.err("unexpected end of header")),
            Some(b'{') => {
                self.pos += 1;
                let mut entries = Vec::new();
                loop {
                    if self.eat(b'}') {
                        return Ok(Value::Dict(entries));
                    }
                    let key = self.value(depth + 1)?;
                    if !self.eat(b':') {
                        return Err(self.err("expected ':' after a dict key"));
                    }
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                    if !self.eat(b',') {
                        if self.eat(b'}') {
                            return Ok(Value::Dict(entries));
                        }
                        return Err(self.err("expected ',' or '}' in dict"));
                    }
                }
            }
            Some(open @ (b'(' | b'[')) => {
                self.pos += 1;
                let close = if open == b'(' { b')' } else { b']' };
                let mut items = Vec::new();
                let mut trailing_comma = false;
                loop {
                    if self.eat(close) {
                        break;
                    }
                    items.push(self.value(depth + 1)?);
                    trailing_comma = self.eat(b',');
                    if !trailing_comma {
                        if self.eat(close) {
                            break;
                        }
                        return Err(self.err(if open == b'(' {
                            "expected ',' or ')' in tuple"
                        } else {
                            "expected ',' or ']' in list"
                        }));
                    }
                }
                if open == b'[' {
                    Ok(Value::List(items))
                } else if items.len() == 1 && !trailing_comma {
                    // "(5)" is just a parenthesised 5 in Python, not a tuple.
                    Ok(items.remove(0))
                } else {
                    Ok(Value::Tuple(items))
                }
            }
            Some(q @ (b'\'' | b'"')) => {
                self.pos += 1;
                let start = self.pos;
                loop {
                    match self.s.get(self.pos) {
                        None => return Err(self.err("unterminated string")),
                        Some(b'\\') => {
                            return Err(self.err("escape sequences in strings are not supported"))
                        }
                        Some(b'\n') => return Err(self.err("unterminated string")),
                        Some(&c) if c < 0x20 || c == 0x7f => {
                            return Err(self.err("control character in string"))
                        }
                        Some(&c) if c == q => break,
                        Some(_) => self.pos += 1,
                    }
                }
                let text = std::str::from_utf8(&self.s[start..self.pos])
                    .map_err(|_| self.err("invalid UTF-8 in string"))?
                    .to_string();
                self.pos += 1;
                Ok(Value::Str(text))
            }
            Some(c) if c == b'-' || c == b'+' || c.is_ascii_digit() => {
                let negative = c == b'-';
                if !c.is_ascii_digit() {
                    self.pos += 1;
                    self.skip_ws();
                }
                let start = self.pos;
                let mut n: i128 = 0;
                while let Some(&d) = self.s.get(self.pos).filter(|d| d.is_ascii_digit()) {
                    n = n
                        .checked_mul(10)
                        .and_then(|n| n.checked_add(i128::from(d - b'0')))
                        .filter(|&n| n <= i128::from(u64::MAX))
                        .ok_or_else(|| self.err("integer too large"))?;
                    self.pos += 1;
                }
                if self.pos == start {
                    return Err(self.err("expected digits"));
                }
                // Python 2 era numpy wrote long integers as "3L".
                if let Some(b'L' | b'l') = self.s.get(self.pos) {
                    self.pos += 1;
                }
                if let Some(&d) = self.s.get(self.pos) {
                    if d.is_ascii_alphanumeric() || d == b'.' || d == b'_' {
                        return Err(self.err("expected an integer"));
                    }
                }
                Ok(Value::Int(if negative { -n } else { n }))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while let Some(d) = self.s.get(self.pos) {
                    if d.is_ascii_alphanumeric() || *d == b'_' {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                match &self.s[start..self.pos] {
                    b"True" => Ok(Value::Bool(true)),
                    b"False" => Ok(Value::Bool(false)),
                    b"None" => Ok(Value::None),
                    word => {
                        let word = String::from_utf8_lossy(word).into_owned();
                        self.pos = start;
                        Err(self.err(&format!("unexpected name '{word}'")))
                    }
                }
            }
            Some(c) => Err(self.err(&format!("unexpected character {:?}", char::from(c)))),
        }
    }
}

fn parse_header(text: &str) -> std::result::Result<Header, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
    };
    let top = p.value(0)?;
    if p.peek().is_some() {
        return Err(p.err("unexpected text after the header dict"));
    }
    let Value::Dict(entries) = top else {
        return Err("malformed .npy header: the header is not a dict".to_string());
    };

    let (mut descr, mut fortran, mut shape) = (None, None, None);
    for (key, value) in entries {
        let Value::Str(key) = key else {
            return Err(format!(
                "malformed .npy header: dict key {} is not a string",
                show(&key)
            ));
        };
        let slot = match key.as_str() {
            "descr" => &mut descr,
            "fortran_order" => &mut fortran,
            "shape" => &mut shape,
            other => {
                return Err(format!(
                    "malformed .npy header: unexpected key '{other}' (expected 'descr', 'fortran_order' and 'shape')"
                ))
            }
        };
        if slot.replace(value).is_some() {
            return Err(format!("malformed .npy header: duplicate key '{key}'"));
        }
    }
    let missing = |k: &str| format!("malformed .npy header: missing key '{k}'");
    let descr = descr.ok_or_else(|| missing("descr"))?;
    let fortran = fortran.ok_or_else(|| missing("fortran_order"))?;
    let shape = shape.ok_or_else(|| missing("shape"))?;

    let dtype = match &descr {
        Value::Str(s) => parse_descr(s)?,
        Value::List(_) => {
            return Err(
                "unsupported dtype: structured (record) arrays are not supported; expected float32, float16 or float64"
                    .to_string(),
            )
        }
        other => {
            return Err(format!(
                "malformed .npy header: 'descr' must be a string, found {}",
                show(other)
            ))
        }
    };
    let Value::Bool(fortran_order) = fortran else {
        return Err(format!(
            "malformed .npy header: 'fortran_order' must be True or False, found {}",
            show(&fortran)
        ));
    };
    let Value::Tuple(dims) = shape else {
        return Err(format!(
            "malformed .npy header: 'shape' must be a tuple of integers, found {}",
            show(&shape)
        ));
    };
    let mut out = Vec::with_capacity(dims.len());
    for d in &dims {
        let dim = match d {
            Value::Int(n) if *n >= 0 => usize::try_from(*n)
                .map_err(|_| format!("shape dimension {n} is too large for this platform"))?,
            Value::Int(n) => return Err(format!("shape has a negative dimension {n}")),
            other => {
                return Err(format!(
                    "malformed .npy header: 'shape' must contain integers, found {}",
                    show(other)
                ))
            }
        };
        out.push(dim);
    }
    Ok(Header {
        dtype,
        fortran_order,
        shape: out,
    })
}

/// Short, one-line rendering of a header value for error messages.
fn show(v: &Value) -> String {
    let s = match v {
        Value::Str(s) => format!("'{s}'"),
        Value::Int(n) => n.to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::None => "None".to_string(),
        Value::Tuple(_) => "a tuple".to_string(),
        Value::List(_) => "a list".to_string(),
        Value::Dict(_) => "a dict".to_string(),
    };
    if s.chars().count() > 40 {
        let cut: String = s.chars().take(40).collect();
        format!("{cut}...")
    } else {
        s
    }
}

fn parse_descr(descr: &str) -> std::result::Result<Dtype, String> {
    let (order, code) = match descr.as_bytes().first() {
        Some(&c @ (b'<' | b'>' | b'=' | b'|')) => (Some(c), &descr[1..]),
        _ => (None, descr),
    };
    let kind = match code {
        "f2" => Kind::F16,
        "f4" => Kind::F32,
        "f8" => Kind::F64,
        _ => {
            return Err(format!(
                "unsupported dtype '{descr}' ({}); expected float32, float16 or float64",
                dtype_family(code)
            ))
        }
    };
    let big_endian = match order {
        Some(b'<') => false,
        Some(b'>') => true,
        // Native order, as numpy reads it: the byte order of this machine.
        Some(b'=') | None => cfg!(target_endian = "big"),
        _ => {
            return Err(format!(
                "invalid dtype '{descr}': byte order '|' (not applicable) is meaningless for the multi-byte {}",
                kind.name()
            ))
        }
    };
    Ok(Dtype { kind, big_endian })
}

/// Human name of a numpy type code, for the "unsupported dtype" message.
fn dtype_family(code: &str) -> String {
    let bytes = code.get(1..).unwrap_or("");
    let bits = bytes.parse::<u32>().ok().and_then(|b| b.checked_mul(8));
    let sized = |what: &str| match bits {
        Some(b) => format!("{b}-bit {what}"),
        None => what.to_string(),
    };
    match code.as_bytes().first() {
        Some(b'i') => sized("signed integer"),
        Some(b'u') => sized("unsigned integer"),
        Some(b'f') => sized("float"),
        Some(b'c') => sized("complex"),
        Some(b'b') | Some(b'?') => "boolean".to_string(),
        Some(b'O') => "Python object".to_string(),
        Some(b'U') => "unicode string".to_string(),
        Some(b'S') | Some(b'a') => "byte string".to_string(),
        Some(b'V') => "raw void/structured".to_string(),
        Some(b'M') => "datetime".to_string(),
        Some(b'm') => "timedelta".to_string(),
        _ => "unknown type".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a .npy file by hand with any header text and raw data (version 1.0 unless said).
    fn npy_raw(version: (u8, u8), dict: &str, data: &[u8]) -> Vec<u8> {
        let mut header = dict.as_bytes().to_vec();
        let len_size = if version.0 == 1 { 2 } else { 4 };
        let unpadded = 8 + len_size + header.len() + 1;
        header.resize(header.len() + (unpadded.div_ceil(64) * 64 - unpadded), b' ');
        header.push(b'\n');
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[version.0, version.1]);
        if len_size == 2 {
            out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(&header);
        out.extend_from_slice(data);
        out
    }

    fn npy(dict: &str, data: &[u8]) -> Vec<u8> {
        npy_raw((1, 0), dict, data)
    }

    fn f32_le(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn err(bytes: &[u8]) -> String {
        match read_npy(bytes, "t.npy") {
            Ok(t) => panic!("expected an error, got {t:?}"),
            Err(e) => {
                let s = e.to_string();
                assert!(!s.contains('\n'), "multi-line message: {s}");
                assert!(s.starts_with("t.npy: "), "message lacks the file name: {s}");
                s
            }
        }
    }

    fn assert_err(bytes: &[u8], phrase: &str) {
        let msg = err(bytes);
        assert!(msg.contains(phrase), "{msg:?} does not contain {phrase:?}");
    }

    #[test]
    fn round_trip_shapes() {
        for shape in [vec![], vec![5], vec![2, 3], vec![2, 3, 4], vec![0, 7]] {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
            let bytes = npy_bytes(&shape, &data);
            // numpy's layout: header padded so the data starts on a 64-byte boundary.
            assert_eq!((bytes.len() - n * 4) % 64, 0);
            let t = read_npy(&bytes, "rt.npy").unwrap();
            assert_eq!(t.shape, shape);
            assert_eq!(t.data, data);
            assert_eq!(t.dtype, "float32");
        }
    }

    #[test]
    fn writer_header_matches_numpy() {
        let bytes = npy_bytes(&[576, 1024], &[]);
        let expected = b"\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, 'shape': (576, 1024), }";
        assert_eq!(&bytes[..expected.len()], expected);
        assert_eq!(bytes.len(), 128);
        assert_eq!(bytes[127], b'\n');
        let one = npy_bytes(&[5], &[0.0; 5]);
        assert!(String::from_utf8_lossy(&one).contains("'shape': (5,), }"));
    }

    #[test]
    fn reads_conformance_file() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/f_gauss_576x1024.npy"
        );
        let bytes = std::fs::read(path).unwrap();
        let t = read_npy(&bytes, path).unwrap();
        assert_eq!(t.shape, vec![576, 1024]);
        assert_eq!(t.data.len(), 576 * 1024);
        assert!(t.data.iter().all(|v| v.is_finite()));
        assert_eq!(t.dtype, "float32");
    }

    #[test]
    fn header_syntax_variants() {
        let data = f32_le(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        for dict in [
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
            "{'shape': (2, 3), 'descr': '<f4', 'fortran_order': False}",
            "{ 'fortran_order' : False ,'shape':(2,3,),'descr':'<f4' , }",
            "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2L, 3L)}",
            "{'descr': '<f4',\t'fortran_order': False, 'shape': ( 2 , 3 ) }",
        ] {
            let t = read_npy(&npy(dict, &data), "h.npy").unwrap_or_else(|e| panic!("{dict}: {e}"));
            assert_eq!(t.shape, vec![2, 3], "{dict}");
            assert_eq!(t.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        }
        let t = read_npy(
            &npy(
                "{'descr': '<f4', 'fortran_order': False, 'shape': ()}",
                &f32_le(&[7.5]),
            ),
            "s.npy",
        )
        .unwrap();
        assert!(t.shape.is_empty());
        assert_eq!(t.data, vec![7.5]);
        let t = read_npy(
            &npy(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (5,)}",
                &f32_le(&[0.0; 5]),
            ),
            "v.npy",
        )
        .unwrap();
        assert_eq!(t.shape, vec![5]);
    }

    #[test]
    fn versions_2_and_3() {
        let data = f32_le(&[1.0, -2.0]);
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
        for v in [(2, 0), (3, 0)] {
            let t = read_npy(&npy_raw(v, dict, &data), "v.npy").unwrap();
            assert_eq!(t.data, vec![1.0, -2.0]);
        }
        // Version 3.0 allows UTF-8 in the header (only inside strings here).
        let bad_key = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'é': 1}";
        assert!(read_npy(&npy_raw((3, 0), bad_key, &data), "v.npy")
            .unwrap_err()
            .to_string()
            .contains("unexpected key 'é'"));
        assert_err(
            &npy_raw((4, 0), dict, &data),
            "unsupported .npy format version 4.0",
        );
        assert_err(
            &npy_raw((1, 1), dict, &data),
            "unsupported .npy format version 1.1",
        );
    }

    #[test]
    fn float16_and_float64_exact() {
        let halves = [1.0f32, -0.5, 65504.0, 6.1035156e-5, 0.0];
        let le: Vec<u8> = halves
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect();
        let t = read_npy(
            &npy(
                "{'descr': '<f2', 'fortran_order': False, 'shape': (5,), }",
                &le,
            ),
            "h.npy",
        )
        .unwrap();
        assert_eq!(t.data, halves);
        assert_eq!(t.dtype, "float16");

        let doubles = [0.1f64, -1e30, 3.0, 1e-50];
        let le: Vec<u8> = doubles.iter().flat_map(|v| v.to_le_bytes()).collect();
        let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }";
        let t = read_npy(&npy(header, &le), "d.npy").unwrap();
        let want: Vec<f32> = doubles.iter().map(|&v| v as f32).collect();
        assert_eq!(t.data, want);
        assert_eq!(t.dtype, "float64");
        // A finite double beyond f32 is named, not turned into -inf.
        let le: Vec<u8> = [0.1f64, -1e300, f64::INFINITY, 1.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let e = read_npy(&npy(header, &le), "d.npy")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "d.npy: float64 value -1e300 at element 1 (in file order) is beyond the float32 range (largest 3.4028235e38)"
        );
    }

    #[test]
    fn big_endian_and_native() {
        let vals = [1.5f32, -2.25, 1e-3];
        let be: Vec<u8> = vals.iter().flat_map(|v| v.to_be_bytes()).collect();
        let t = read_npy(
            &npy(
                "{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }",
                &be,
            ),
            "b.npy",
        )
        .unwrap();
        assert_eq!(t.data, vals);

        let be: Vec<u8> = vals
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_be_bytes())
            .collect();
        let t = read_npy(
            &npy(
                "{'descr': '>f2', 'fortran_order': False, 'shape': (3,), }",
                &be,
            ),
            "b.npy",
        )
        .unwrap();
        let want: Vec<f32> = vals
            .iter()
            .map(|&v| half::f16::from_f32(v).to_f32())
            .collect();
        assert_eq!(t.data, want);

        let be: Vec<u8> = [0.1f64, 2.0].iter().flat_map(|v| v.to_be_bytes()).collect();
        let t = read_npy(
            &npy(
                "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }",
                &be,
            ),
            "b.npy",
        )
        .unwrap();
        assert_eq!(t.data, vec![0.1f64 as f32, 2.0]);

        let ne: Vec<u8> = vals.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let t = read_npy(
            &npy(
                "{'descr': '=f4', 'fortran_order': False, 'shape': (3,), }",
                &ne,
            ),
            "n.npy",
        )
        .unwrap();
        assert_eq!(t.data, vals);
        assert_err(
            &npy(
                "{'descr': '|f4', 'fortran_order': False, 'shape': (3,), }",
                &ne,
            ),
            "byte order '|'",
        );
    }

    #[test]
    fn fortran_order_2d_and_3d() {
        // A 2x3 matrix [[0,1,2],[3,4,5]] stored column-major is 0,3,1,4,2,5.
        let col = f32_le(&[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        let t = read_npy(
            &npy(
                "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
                &col,
            ),
            "f.npy",
        )
        .unwrap();
        assert_eq!(t.shape, vec![2, 3]);
        assert_eq!(t.data, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);

        // 3-D: value at (i, j, k) is 100i + 10j + k; Fortran order has i fastest.
        let (a, b, c) = (2, 3, 4);
        let mut f = Vec::new();
        for k in 0..c {
            for j in 0..b {
                for i in 0..a {
                    f.push((100 * i + 10 * j + k) as f64);
                }
            }
        }
        let le: Vec<u8> = f.iter().flat_map(|v| v.to_be_bytes()).collect();
        let t = read_npy(
            &npy(
                "{'descr': '>f8', 'fortran_order': True, 'shape': (2, 3, 4), }",
                &le,
            ),
            "f.npy",
        )
        .unwrap();
        let mut want = Vec::new();
        for i in 0..a {
            for j in 0..b {
                for k in 0..c {
                    want.push((100 * i + 10 * j + k) as f32);
                }
            }
        }
        assert_eq!(t.data, want);

        // Rank 1 and empty arrays are unaffected.
        let t = read_npy(
            &npy(
                "{'descr': '<f4', 'fortran_order': True, 'shape': (3,), }",
                &f32_le(&[1.0, 2.0, 3.0]),
            ),
            "f.npy",
        )
        .unwrap();
        assert_eq!(t.data, vec![1.0, 2.0, 3.0]);
        let t = read_npy(
            &npy(
                "{'descr': '<f4', 'fortran_order': True, 'shape': (0, 3), }",
                &[],
            ),
            "f.npy",
        )
        .unwrap();
        assert!(t.data.is_empty());
    }

    #[test]
    fn rejects_other_dtypes() {
        for (descr, phrase) in [
            ("<i4", "'<i4' (32-bit signed integer)"),
            ("<i8", "64-bit signed integer"),
            ("|u1", "8-bit unsigned integer"),
            ("|b1", "boolean"),
            ("<c8", "64-bit complex"),
            ("<c16", "128-bit complex"),
            ("|O", "'|O' (Python object)"),
            ("<U10", "unicode string"),
            ("|S4", "byte string"),
            ("<f16", "128-bit float"),
            ("<M8[ns]", "datetime"),
        ] {
            let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (1,), }}");
            let msg = err(&npy(&dict, &[0; 16]));
            assert!(msg.contains("unsupported dtype"), "{msg}");
            assert!(msg.contains(phrase), "{msg} lacks {phrase}");
        }
        assert_err(
            &npy(
                "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,), }",
                &[0; 8],
            ),
            "structured",
        );
    }

    #[test]
    fn rejects_bad_magic_and_versions() {
        assert_err(b"", "too short");
        assert_err(b"\x93NUM", "too short");
        assert_err(b"PK\x03\x04 zip file, not npy", "bad magic");
        let mut good = npy_bytes(&[2], &[1.0, 2.0]);
        good[1] = b'n';
        assert_err(&good, "bad magic");
        assert_err(b"\x93NUMPY\x02\x00\x10", "header length field");
    }

    #[test]
    fn rejects_header_past_end() {
        let mut bytes = npy_bytes(&[2], &[1.0, 2.0]);
        bytes[8] = 0xff;
        bytes[9] = 0xff;
        assert_err(&bytes, "header length 65535 runs past the end of the file");
        let mut v2 = npy_raw(
            (2, 0),
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}",
            &[0; 4],
        );
        v2[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_err(&v2, "runs past the end of the file");
    }

    #[test]
    fn rejects_non_ascii_and_unterminated_header() {
        let mut bytes = npy_bytes(&[2], &[1.0, 2.0]);
        bytes[20] = 0xe9;
        assert_err(&bytes, "non-ASCII byte 0xe9");

        let mut bytes = npy_raw(
            (3, 0),
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}",
            &[0; 4],
        );
        bytes[25] = 0xff;
        assert_err(&bytes, "not valid UTF-8");

        // Replace the final newline: unterminated header.
        let mut bytes = npy_bytes(&[2], &[1.0, 2.0]);
        let nl = bytes.len() - 9;
        assert_eq!(bytes[nl], b'\n');
        bytes[nl] = b' ';
        assert_err(&bytes, "not terminated by a newline");

        // A dict that never closes.
        assert_err(
            &npy(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)",
                &[0; 4],
            ),
            "malformed .npy header",
        );
        // An unterminated string.
        assert_err(
            &npy(
                "{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}",
                &[0; 4],
            ),
            "malformed .npy header",
        );
    }

    #[test]
    fn rejects_malformed_dicts() {
        let d = &[0u8; 8];
        for (dict, phrase) in [
            (
                "{'descr': '<f4', 'shape': (2,)}",
                "missing key 'fortran_order'",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False}",
                "missing key 'shape'",
            ),
            (
                "{'fortran_order': False, 'shape': (2,)}",
                "missing key 'descr'",
            ),
            (
                "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}",
                "duplicate key 'descr'",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}",
                "unexpected key 'extra'",
            ),
            (
                "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}",
                "'fortran_order' must be True or False",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': 2}",
                "'shape' must be a tuple",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2)}",
                "'shape' must be a tuple",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': [2]}",
                "'shape' must be a tuple",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}",
                "negative dimension",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2.0,)}",
                "expected an integer",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk",
                "unexpected text after",
            ),
            (
                "{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}",
                "expected ',' or '}' in dict",
            ),
            (
                "{'descr': 7, 'fortran_order': False, 'shape': (2,)}",
                "'descr' must be a string",
            ),
            (
                "{'descr' '<f4', 'fortran_order': False, 'shape': (2,)}",
                "expected ':' after a dict key",
            ),
            ("['descr', '<f4']", "not a dict"),
            (
                "{'descr': '<f4\r', 'fortran_order': False, 'shape': (2,)}",
                "control character in string",
            ),
            (
                "{'descr': '<f4', 'fortran_order': Flase, 'shape': (2,)}",
                "unexpected name 'Flase'",
            ),
            (
                "{'descr': '\\x3cf4', 'fortran_order': False, 'shape': (2,)}",
                "escape",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
                "integer too large",
            ),
            ("((((((((((((((((((((((((((((((", "nesting too deep"),
        ] {
            let msg = err(&npy(dict, d));
            assert!(msg.contains(phrase), "{dict}: {msg:?} lacks {phrase:?}");
        }
    }

    #[test]
    fn rejects_overflowing_shape() {
        let dict = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
            u64::MAX,
            u64::MAX
        );
        assert_err(&npy(&dict, &[]), "overflows usize");
        let dict = format!(
            "{{'descr': '<f8', 'fortran_order': False, 'shape': ({},), }}",
            usize::MAX / 4
        );
        assert_err(&npy(&dict, &[]), "overflows usize");
    }

    #[test]
    fn long_shapes_are_elided_in_messages() {
        let dims = vec!["1"; 1000].join(", ");
        let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}");
        let msg = err(&npy(&dict, &[]));
        assert!(
            msg.contains("1x1x1x1x1x1x1x1x... (1000 dimensions) float32"),
            "{msg}"
        );
        assert!(msg.len() < 200, "{msg}");
    }

    #[test]
    fn huge_declared_shape_fails_fast() {
        // 10^15 elements declared, 100 bytes present: must fail without allocating.
        let bytes = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000000), }",
            &[0; 100],
        );
        assert_err(&bytes, "truncated: header declares 1000000x1000000000 float32 (4000000000000000 bytes) but only 100 bytes of data follow");
    }

    #[test]
    fn rejects_truncated_and_trailing_data() {
        let bytes = npy_bytes(&[2, 3], &[0.0; 6]);
        assert_err(
            &bytes[..bytes.len() - 1],
            "truncated: header declares 2x3 float32 (24 bytes) but only 23 bytes of data follow",
        );
        assert_err(
            &bytes[..bytes.len() - 24],
            "but only 0 bytes of data follow",
        );
        let mut long = bytes.clone();
        long.extend_from_slice(&[0; 4]);
        assert_err(
            &long,
            "4 bytes of trailing data after the 2x3 float32 (24 bytes)",
        );
        let scalar = npy(
            "{'descr': '<f2', 'fortran_order': False, 'shape': ()}",
            &[0; 3],
        );
        assert_err(
            &scalar,
            "1 byte of trailing data after the scalar float16 (2 bytes)",
        );
    }

    /// Deterministic xorshift generator for the mutation test.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn mutated_inputs_never_panic() {
        let seeds = [
            npy_bytes(&[3, 4], &(0..12).map(|i| i as f32).collect::<Vec<_>>()),
            npy_raw(
                (2, 0),
                "{'descr': '>f2', 'fortran_order': True, 'shape': (2, 3, 2), }",
                &[0x3c; 24],
            ),
            npy_raw(
                (3, 0),
                "{'descr': '<f8', 'fortran_order': True, 'shape': (3, 1), }",
                &[0x3f; 24],
            ),
        ];
        for seed in &seeds {
            // Every truncation length.
            for len in 0..=seed.len() {
                let _ = read_npy(&seed[..len], "m.npy");
            }
            // Every byte position, a few replacement values each.
            for pos in 0..seed.len() {
                for v in [
                    0u8,
                    0xff,
                    b' ',
                    b'\n',
                    b'(',
                    b')',
                    b',',
                    b'}',
                    b'\'',
                    b'9',
                    b'-',
                    seed[pos] ^ 1,
                    seed[pos] ^ 0x80,
                ] {
                    let mut m = seed.clone();
                    m[pos] = v;
                    let _ = read_npy(&m, "m.npy");
                }
            }
            // Random multi-byte mutations, insertions and deletions.
            let mut state = 0x9e37_79b9_7f4a_7c15u64;
            for _ in 0..5000 {
                let mut m = seed.clone();
                for _ in 0..(next(&mut state) % 4 + 1) {
                    let r = next(&mut state);
                    let pos = (r >> 8) as usize % (m.len() + 1);
                    match r % 3 {
                        0 if pos < m.len() => m[pos] = (r >> 40) as u8,
                        1 => m.insert(pos, (r >> 40) as u8),
                        _ if pos < m.len() => {
                            m.remove(pos);
                        }
                        _ => {}
                    }
                }
                let _ = read_npy(&m, "m.npy");
            }
        }
    }
}
