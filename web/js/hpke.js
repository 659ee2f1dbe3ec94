// HPKE (RFC 9180), base mode, single shot: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256 and
// AES-256-GCM (0x0010, 0x0001, 0x0002) for sealed bids; AES-128-GCM (0x0001) only so that RFC
// 9180 Appendix A.3.1 can be checked. Written line by line after ca/hpke.py, on WebCrypto alone.
//
// Choices:
// - HKDF is built from HMAC-SHA256 (WebCrypto's HKDF always extracts then expands; HPKE needs
//   each step labelled on its own). Extract with an empty salt uses 32 zero bytes as the HMAC
//   key, which HMAC pads to the same block as an empty key (WebCrypto refuses empty HMAC keys).
// - DeriveKeyPair (RFC 9180 §7.1.3) needs the public point of a scalar, and WebCrypto cannot
//   compute one. It is done here with BigInt affine arithmetic on P-256, then the key is imported
//   as a JWK {d, x, y}: the browser checks that the point belongs to d, so the arithmetic is
//   verified by WebCrypto itself. It is NOT constant time: it exists for test vectors (``ikmE``)
//   and must never run on a real secret. Real sealing draws a fresh ephemeral key with
//   generateKey and never calls it. (Chromium would also accept a PKCS#8 EC key without its
//   optional public key and compute the point itself, but only an extractable key could then
//   give the point back, and the WebCrypto specification does not promise that import; the
//   BigInt way works in every browser.)
// - Private keys are CryptoKeys for ECDH (usage deriveBits), non-extractable; the caller passes
//   the recipient's own public point (from its certificate or SPKI), which decapsulation needs.

import { asBytes, concat, fromHex, toBase64, toHex } from "./bytes.js";

export const KEM_ID = 0x0010;
export const KDF_ID = 0x0001;
export const AEAD_AES_128_GCM = 0x0001;
export const AEAD_AES_256_GCM = 0x0002;
const N_SECRET = 32;
const N_ENC = 65;
const N_NONCE = 12;
const KEY_LEN = { [AEAD_AES_128_GCM]: 16, [AEAD_AES_256_GCM]: 32 };
const VERSION = new TextEncoder().encode("HPKE-v1");
const KEM_SUITE = concat(new TextEncoder().encode("KEM"), u16(KEM_ID));
const MODE_BASE = 0;
const ZEROS = new Uint8Array(32);
const subtle = globalThis.crypto.subtle;
const ECDH = { name: "ECDH", namedCurve: "P-256" };
const label = (text) => new TextEncoder().encode(text);

/** HpkeError: ``code`` is "hpke_bad_enc" or "hpke_open" (not the recipient, or altered). */
export class HpkeError extends Error {
  constructor(message, code = "hpke_open") {
    super(message);
    this.name = "HpkeError";
    this.code = code;
  }
}

function u16(value) {
  return new Uint8Array([value >> 8, value & 0xff]);
}

function suiteId(aeadId) {
  return concat(label("HPKE"), u16(KEM_ID), u16(KDF_ID), u16(aeadId));
}

async function hmac(key, data) {
  const raw = key.length ? key : ZEROS;
  const k = await subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await subtle.sign("HMAC", k, data));
}

/** RFC 5869 HKDF-Extract with SHA-256. */
export function hkdfExtract(salt, ikm) {
  return hmac(asBytes(salt), asBytes(ikm));
}

/** RFC 5869 HKDF-Expand with SHA-256. */
export async function hkdfExpand(prk, info, length) {
  if (length > 255 * 32) throw new RangeError("HKDF-Expand: too long");
  const out = new Uint8Array(length);
  let previous = new Uint8Array(0);
  for (let i = 1, at = 0; at < length; i++) {
    previous = await hmac(asBytes(prk), concat(previous, asBytes(info), [i]));
    out.set(previous.subarray(0, length - at), at);
    at += previous.length;
  }
  return out;
}

export function labeledExtract(suite, salt, name, ikm) {
  return hkdfExtract(salt, concat(VERSION, suite, label(name), ikm));
}

export function labeledExpand(suite, prk, name, info, length) {
  return hkdfExpand(prk, concat(u16(length), VERSION, suite, label(name), info), length);
}

// P-256 in BigInt, for DeriveKeyPair only (see above) ---------------------------------------

const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const G = [
  0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n,
  0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n,
];

const mod = (a) => ((a % P) + P) % P;

function inverse(a) {
  let [r0, r1, t0, t1] = [P, mod(a), 0n, 1n];
  while (r1) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [t0, t1] = [t1, t0 - q * t1];
  }
  return mod(t0);
}

function add(p1, p2) {
  if (p1 === null) return p2;
  if (p2 === null) return p1;
  const [x1, y1] = p1;
  const [x2, y2] = p2;
  let slope;
  if (x1 === x2) {
    if (mod(y1 + y2) === 0n) return null;
    slope = mod((3n * x1 * x1 - 3n) * inverse(2n * y1)); // a = -3
  } else {
    slope = mod((y2 - y1) * inverse(x2 - x1));
  }
  const x3 = mod(slope * slope - x1 - x2);
  return [x3, mod(slope * (x1 - x3) - y1)];
}

function multiply(scalar) {
  let result = null;
  let addend = G;
  for (let k = scalar; k > 0n; k >>= 1n) {
    if (k & 1n) result = add(result, addend);
    addend = add(addend, addend);
  }
  return result;
}

const bigOf = (bytes) => BigInt("0x" + (toHex(bytes) || "0"));
const bytesOf = (big) => fromHex(big.toString(16).padStart(64, "0"));
const b64url = (bytes) =>
  toBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

/**
 * RFC 9180 §7.1.3 DeriveKeyPair for P-256 (tests and vectors only: not constant time).
 * Returns {privateKey (ECDH CryptoKey, deriveBits), publicKey (65-byte point), scalar (32 bytes)}.
 */
export async function deriveKeyPair(ikm, { extractable = false } = {}) {
  const prk = await labeledExtract(KEM_SUITE, new Uint8Array(0), "dkp_prk", asBytes(ikm));
  for (let counter = 0; counter < 256; counter++) {
    const candidate = await labeledExpand(KEM_SUITE, prk, "candidate", [counter], 32);
    const scalar = bigOf(candidate); // bitmask 0xff: nothing to clear for P-256
    if (scalar === 0n || scalar >= N) continue;
    const [x, y] = multiply(scalar);
    const jwk = {
      kty: "EC",
      crv: "P-256",
      d: b64url(candidate),
      x: b64url(bytesOf(x)),
      y: b64url(bytesOf(y)),
    };
    const privateKey = await subtle.importKey("jwk", jwk, ECDH, extractable, ["deriveBits"]);
    return { privateKey, publicKey: concat([4], bytesOf(x), bytesOf(y)), scalar: candidate };
  }
  throw new HpkeError("DeriveKeyPair found no key", "derive_key_pair");
}

// the KEM -----------------------------------------------------------------------------------

/** The 65-byte uncompressed point of a P-256 public key (CryptoKey, SPKI DER, or the point). */
export async function publicPoint(key) {
  if (key instanceof CryptoKey) return new Uint8Array(await subtle.exportKey("raw", key));
  const bytes = asBytes(key);
  if (bytes.length === N_ENC && bytes[0] === 4) return bytes;
  const imported = await subtle.importKey("spki", bytes, ECDH, true, []);
  return new Uint8Array(await subtle.exportKey("raw", imported));
}

async function importPoint(point) {
  return subtle.importKey("raw", point, ECDH, false, []);
}

async function sharedSecret(dh, enc, pkR) {
  const eaePrk = await labeledExtract(KEM_SUITE, new Uint8Array(0), "eae_prk", dh);
  return labeledExpand(KEM_SUITE, eaePrk, "shared_secret", concat(enc, pkR), N_SECRET);
}

/** {sharedSecret, enc} for the recipient's public point (``ikmE`` in tests only). */
export async function encap(pkR, ikmE = null) {
  const pkRm = await publicPoint(pkR);
  let skE;
  let enc;
  if (ikmE) {
    ({ privateKey: skE, publicKey: enc } = await deriveKeyPair(ikmE));
  } else {
    const pair = await subtle.generateKey(ECDH, false, ["deriveBits"]);
    skE = pair.privateKey;
    enc = new Uint8Array(await subtle.exportKey("raw", pair.publicKey));
  }
  const pkRKey = await importPoint(pkRm);
  const dh = new Uint8Array(await subtle.deriveBits({ name: "ECDH", public: pkRKey }, skE, 256));
  return { sharedSecret: await sharedSecret(dh, enc, pkRm), enc };
}

/** The shared secret for ``enc`` with the recipient's private key and own public point. */
export async function decap(enc, skR, pkR) {
  const encBytes = asBytes(enc);
  let pkE;
  try {
    if (encBytes.length !== N_ENC) throw new Error("length");
    pkE = await importPoint(encBytes);
  } catch {
    throw new HpkeError("enc is not a P-256 point", "hpke_bad_enc");
  }
  const dh = new Uint8Array(await subtle.deriveBits({ name: "ECDH", public: pkE }, skR, 256));
  return sharedSecret(dh, encBytes, await publicPoint(pkR));
}

/** RFC 9180 §5.1, mode_base: {key, baseNonce, exporterSecret}. */
export async function keySchedule(shared, info, aeadId) {
  const suite = suiteId(aeadId);
  const none = new Uint8Array(0);
  const pskIdHash = await labeledExtract(suite, none, "psk_id_hash", none);
  const infoHash = await labeledExtract(suite, none, "info_hash", asBytes(info));
  const context = concat([MODE_BASE], pskIdHash, infoHash);
  const secret = await labeledExtract(suite, shared, "secret", none);
  return {
    key: await labeledExpand(suite, secret, "key", context, KEY_LEN[aeadId]),
    baseNonce: await labeledExpand(suite, secret, "base_nonce", context, N_NONCE),
    exporterSecret: await labeledExpand(suite, secret, "exp", context, 32),
  };
}

async function gcmKey(raw, usage) {
  return subtle.importKey("raw", raw, { name: "AES-GCM" }, false, [usage]);
}

/**
 * SealBase: {enc, ciphertext}, the first message of the context (nonce = base_nonce).
 * ``pkR``: CryptoKey, SPKI DER or the 65-byte point. ``ikmE``: tests only.
 */
export async function seal(
  pkR, info, aad, plaintext, { aeadId = AEAD_AES_256_GCM, ikmE = null } = {},
) {
  if (!KEY_LEN[aeadId]) throw new HpkeError("unsupported AEAD", "hpke_aead");
  const { sharedSecret: shared, enc } = await encap(pkR, ikmE);
  const ctx = await keySchedule(shared, info, aeadId);
  const key = await gcmKey(ctx.key, "encrypt");
  ctx.key.fill(0);
  const ciphertext = await subtle.encrypt(
    { name: "AES-GCM", iv: ctx.baseNonce, additionalData: asBytes(aad), tagLength: 128 },
    key,
    asBytes(plaintext),
  );
  return { enc, ciphertext: new Uint8Array(ciphertext) };
}

/**
 * OpenBase with the recipient's private key (ECDH CryptoKey) and its public point (or SPKI or
 * public CryptoKey); HpkeError when this key is not the recipient or anything was altered.
 */
export async function open(
  enc, skR, pkR, info, aad, ciphertext, { aeadId = AEAD_AES_256_GCM } = {},
) {
  if (!KEY_LEN[aeadId]) throw new HpkeError("unsupported AEAD", "hpke_aead");
  const ctx = await keySchedule(await decap(enc, skR, pkR), info, aeadId);
  const key = await gcmKey(ctx.key, "decrypt");
  ctx.key.fill(0);
  try {
    const opened = await subtle.decrypt(
      { name: "AES-GCM", iv: ctx.baseNonce, additionalData: asBytes(aad), tagLength: 128 },
      key,
      asBytes(ciphertext),
    );
    return new Uint8Array(opened);
  } catch {
    throw new HpkeError("cannot open: not the recipient, or the data was altered");
  }
}
