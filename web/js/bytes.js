// Bytes for the sealed-bid envelope (docs/envelope.md): hex, strict base64, canonical JSON as
// Python writes it, a small DER reader for certificates, and an incremental SHA-256.
//
// Rules of this file: no DOM, no network, no dependencies; pure functions over Uint8Array.

const encoder = new TextEncoder();
// fatal: invalid UTF-8 is an error; ignoreBOM: a BOM stays in the text (and then is not JSON).
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** UTF-8 bytes of a string. */
export function utf8(text) {
  return encoder.encode(text);
}

/** A string from UTF-8 bytes; throws on invalid UTF-8. */
export function fromUtf8(bytes) {
  return decoder.decode(bytes);
}

/** One Uint8Array holding all the parts (Uint8Array, ArrayBuffer or numbers-arrays), in order. */
export function concat(...parts) {
  const arrays = parts.map(asBytes);
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

/** A Uint8Array view of bytes-like input (no copy for an ArrayBuffer or a typed array). */
export function asBytes(value) {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  if (Array.isArray(value)) return Uint8Array.from(value);
  throw new TypeError("expected bytes");
}

export function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export function toHex(bytes) {
  let out = "";
  for (const b of asBytes(bytes)) out += b.toString(16).padStart(2, "0");
  return out;
}

export function fromHex(text) {
  if (text.length % 2 || /[^0-9a-fA-F]/.test(text)) throw new TypeError("not hex");
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Standard base64 with padding (RFC 4648 §4). */
export function toBase64(bytes) {
  const data = asBytes(bytes);
  let binary = "";
  for (let i = 0; i < data.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, data.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Strict base64 decoding, as Python's b64decode(validate=True): alphabet and padding checked. */
export function fromBase64(text) {
  if (typeof text !== "string" || text.length % 4 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    throw new TypeError("not base64");
  }
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

export function u32(value) {
  return new Uint8Array([value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff]);
}

export function readU32(bytes, at = 0) {
  return ((bytes[at] << 24) >>> 0) + (bytes[at + 1] << 16) + (bytes[at + 2] << 8) + bytes[at + 3];
}

// canonical JSON ----------------------------------------------------------------------------

/** Compare strings by Unicode code point, as Python sorts str (JS sorts by UTF-16 unit). */
function byCodePoint(a, b) {
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d) return d;
  }
  return x.length - y.length;
}

function canonicalText(value) {
  if (value === null || value === true || value === false) return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || Object.is(value, -0)) {
      throw new TypeError("canonical JSON holds integers only");
    }
    return String(value);
  }
  if (typeof value === "string") {
    if (!value.isWellFormed()) throw new TypeError("a lone surrogate cannot be UTF-8");
    // JSON.stringify escapes exactly what Python's json.dumps(ensure_ascii=False) escapes:
    // '"', '\\', \b \f \n \r \t, and other controls as \u00xx (lowercase hex).
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return "[" + value.map(canonicalText).join(",") + "]";
  if (typeof value === "object") {
    const keys = Object.keys(value).sort(byCodePoint);
    return "{" + keys.map((k) => canonicalText(k) + ":" + canonicalText(value[k])).join(",") + "}";
  }
  throw new TypeError(`canonical JSON cannot hold ${typeof value}`);
}

/**
 * UTF-8 bytes of ``json.dumps(value, sort_keys=True, separators=(",", ":"),
 * ensure_ascii=False)``: keys sorted by code point, no whitespace, non-ASCII as itself.
 */
export function canonical(value) {
  return utf8(canonicalText(value));
}

/** Parse canonical JSON bytes; throws unless the bytes are exactly canonical(parsed). */
export function parseCanonical(bytes) {
  const value = JSON.parse(fromUtf8(bytes));
  if (!equal(canonical(value), bytes)) throw new TypeError("not canonical JSON");
  return value;
}

// DER ---------------------------------------------------------------------------------------

/** One DER TLV at ``at``: {tag, start (of the value), end, whole (the TLV's bytes)}. */
export function derRead(bytes, at) {
  const tag = bytes[at];
  let length = bytes[at + 1];
  let start = at + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n < 1 || n > 4) throw new TypeError("DER length");
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + bytes[start + i];
    start += n;
  }
  const end = start + length;
  if (tag === undefined || end > bytes.length) throw new TypeError("DER truncated");
  return { tag, start, end, whole: bytes.subarray(at, end) };
}

/** The SubjectPublicKeyInfo (DER) inside an X.509 certificate (DER). */
export function certificateSpki(certificate) {
  const der = asBytes(certificate);
  const cert = derRead(der, 0);
  const tbs = derRead(der, cert.start);
  if (cert.tag !== 0x30 || tbs.tag !== 0x30) throw new TypeError("not a certificate");
  let at = tbs.start;
  if (der[at] === 0xa0) at = derRead(der, at).end; // [0] version
  // serialNumber, signature, issuer, validity, subject; then subjectPublicKeyInfo
  for (let i = 0; i < 5; i++) at = derRead(der, at).end;
  const spki = derRead(der, at);
  if (spki.tag !== 0x30) throw new TypeError("not a certificate");
  return spki.whole;
}

const OID_EC = "06072a8648ce3d0201";
const OID_P256 = "06082a8648ce3d030107";
const OID_RSA = "06092a864886f70d010101";

/** "P-256" or "RSA" for a SubjectPublicKeyInfo (DER); anything else throws. */
export function spkiKind(spki) {
  const der = asBytes(spki);
  const outer = derRead(der, 0);
  const alg = derRead(der, outer.start);
  const algorithm = toHex(der.subarray(alg.start, alg.end));
  if (algorithm === OID_EC + OID_P256) return "P-256";
  if (algorithm.startsWith(OID_RSA)) return "RSA";
  throw new TypeError("bidroom uses P-256 or RSA keys");
}

// SHA-256, incremental ----------------------------------------------------------------------

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/**
 * SHA-256 (FIPS 180-4) fed piece by piece. WebCrypto's digest() takes one whole buffer, so the
 * body digest of a multi-GiB envelope, which must be computed while streaming, is done here.
 */
export class Sha256 {
  constructor() {
    this._h = new Uint32Array([
      0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ]);
    this._w = new Uint32Array(64);
    this._block = new Uint8Array(64);
    this._filled = 0;
    this._length = 0; // bytes so far (a double: exact up to 2^53)
    this._done = false;
  }

  update(data) {
    if (this._done) throw new Error("digest already taken");
    const bytes = asBytes(data);
    this._length += bytes.length;
    let at = 0;
    if (this._filled) {
      const take = Math.min(64 - this._filled, bytes.length);
      this._block.set(bytes.subarray(0, take), this._filled);
      this._filled += take;
      at = take;
      if (this._filled < 64) return this;
      this._compress(this._block, 0);
      this._filled = 0;
    }
    for (; at + 64 <= bytes.length; at += 64) this._compress(bytes, at);
    if (at < bytes.length) {
      this._block.set(bytes.subarray(at), 0);
      this._filled = bytes.length - at;
    }
    return this;
  }

  /** The 32-byte digest; the object cannot be fed afterwards. */
  digest() {
    const bits = this._length * 8;
    const tail = new Uint8Array(this._filled < 56 ? 64 : 128);
    tail.set(this._block.subarray(0, this._filled));
    tail[this._filled] = 0x80;
    const hi = Math.floor(bits / 0x100000000);
    tail.set(u32(hi), tail.length - 8);
    tail.set(u32(bits >>> 0), tail.length - 4);
    for (let at = 0; at < tail.length; at += 64) this._compress(tail, at);
    this._done = true;
    const out = new Uint8Array(32);
    for (let i = 0; i < 8; i++) out.set(u32(this._h[i]), 4 * i);
    return out;
  }

  _compress(bytes, at) {
    const w = this._w;
    const h = this._h;
    for (let i = 0; i < 16; i++, at += 4) {
      w[i] = (bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3];
    }
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15];
      const y = w[i - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (k + S1 + ch + K[i] + w[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) | 0;
      k = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += k;
  }
}
