// The sealed-bid envelope, version 1, in the browser: docs/envelope.md is its specification and
// ca/envelope.py the reference this file follows step by step. WebCrypto only, no library.
//
//   seal(file, {lot, certificateDer, signingKey, openingKey, client}, progress) -> Blob
//   open(blob, {privateKey, certificateDer | publicKey}, progress)               -> Blob
//   verify(blob)                                                              -> what it proves
//
// Choices:
// - Streaming: the source is read with Blob.slice(), one 1 MiB chunk at a time, and the output
//   grows as a Blob (each chunk appended with new Blob([sofar, record])): the browser keeps blob
//   data outside the JS heap (Chromium pages large blobs to disk), so the page holds about two
//   chunks at a time whatever the bid's size.
// - The body digest (SHA-256 over all records as stored) must be computed while streaming, and
//   WebCrypto's digest() only hashes one whole buffer: it is the pure-JS incremental Sha256 of
//   bytes.js. Every other hash (preamble, binding, certificate, key ids) is WebCrypto's.
// - Keys are non-extractable CryptoKeys. A bidder's P-256 key both signs (ECDSA) and unwraps
//   (ECDH, for HPKE), and WebCrypto gives a key one algorithm, so the same PKCS#8 is imported
//   twice (importPrivateKey below); an RSA key likewise as RSA-PSS (sign) and RSA-OAEP (unwrap).
// - Opening never hands out plaintext that has not fully verified: the chunks are gathered in a
//   Blob that is returned only after the trailer and the signature check; on any failure it is
//   dropped and an EnvelopeError (with the stable ``code`` of the specification) is thrown.

import {
  asBytes,
  canonical,
  certificateSpki,
  concat,
  derRead,
  equal,
  fromBase64,
  parseCanonical,
  readU32,
  Sha256,
  spkiKind,
  toBase64,
  toHex,
  u32,
  utf8,
} from "./bytes.js";
import * as hpke from "./hpke.js";

export const MAGIC = utf8("BIDROOM\0");
export const VERSION = 1;
export const CHUNK = 1 << 20;
export const SUITE = "AES-256-GCM/STREAM-1MiB";
export const KEY_INFO = utf8("bidroom envelope v1");
export const SIGNED_PREFIX = utf8("bidroom envelope v1 signature\n");
export const PREFIX_LEN = 7;
export const KIND_CHUNK = 1;
export const KIND_FINAL = 2;
export const HPKE_ALG = "hpke-p256-sha256-aes256gcm";
export const RSA_ALG = "rsa-oaep-sha256";
const TAG = 16;
const MAX_PREAMBLE = 1 << 20;
const MAX_TRAILER = 4096;
const MAX_CHUNKS = 2 ** 32 - 1;
const RSA_MIN_BITS = 2048;
const RSA_MAX_BITS = 4096; // and exponent 65537: docs/envelope.md "Preamble"
const SEARCH = 8; // how far a failed chunk's true position is looked for, to name the fault
const RECIPIENT_FIELDS = ["alg", "enc", "key", "to", "wrapped"]; // sorted, as compared
const subtle = globalThis.crypto.subtle;

export class EnvelopeError extends Error {
  constructor(message, code, detail = null) {
    super(message);
    this.name = "EnvelopeError";
    this.code = code;
    this.detail = detail;
  }
}

async function sha256(data) {
  return new Uint8Array(await subtle.digest("SHA-256", asBytes(data)));
}

export function nonce(prefix, counter, final) {
  return concat(prefix, u32(counter), [final ? 1 : 0]);
}

// keys --------------------------------------------------------------------------------------

const EC = { name: "ECDSA", namedCurve: "P-256" };
const ECDH = { name: "ECDH", namedCurve: "P-256" };
const PSS = { name: "RSA-PSS", hash: "SHA-256" };
const OAEP = { name: "RSA-OAEP", hash: "SHA-256" };

/** "P-256" or "RSA" for a PKCS#8 PrivateKeyInfo (DER). */
function pkcs8Kind(der) {
  const outer = derRead(der, 0);
  const version = derRead(der, outer.start);
  const algorithm = derRead(der, version.end);
  // an SPKI-shaped wrapper around the AlgorithmIdentifier, so spkiKind can read it
  return spkiKind(concat([0x30, algorithm.whole.length], algorithm.whole));
}

/**
 * A bidder's (or the opening) private key from PKCS#8 DER, imported twice, non-extractable:
 * {kind, sign (ECDSA or RSA-PSS), unwrap (ECDH or RSA-OAEP)}.
 */
export async function importPrivateKey(pkcs8) {
  const der = asBytes(pkcs8);
  const kind = pkcs8Kind(der);
  const [signAlg, unwrapAlg, unwrapUse] =
    kind === "P-256" ? [EC, ECDH, "deriveBits"] : [PSS, OAEP, "decrypt"];
  return {
    kind,
    sign: await subtle.importKey("pkcs8", der, signAlg, false, ["sign"]),
    unwrap: await subtle.importKey("pkcs8", der, unwrapAlg, false, [unwrapUse]),
  };
}

/** {kind, spki}: the key's SubjectPublicKeyInfo re-encoded as WebCrypto (and Python) write it. */
async function publicInfo(spki) {
  const der = asBytes(spki);
  const kind = spkiKind(der);
  const key = await subtle.importKey("spki", der, kind === "P-256" ? ECDH : OAEP, true, []);
  if (kind === "RSA" && key.algorithm.modulusLength < RSA_MIN_BITS) {
    throw new TypeError("bidroom uses RSA keys of 2048 bits and up");
  }
  return { kind, spki: new Uint8Array(await subtle.exportKey("spki", key)) };
}

/** {kind, spki} of a public key given as a certificate, SPKI DER, P-256 point or CryptoKey. */
async function recipientKey({ certificateDer = null, publicKey = null }) {
  if (certificateDer) return publicInfo(certificateSpki(certificateDer));
  if (publicKey instanceof CryptoKey) {
    return publicInfo(new Uint8Array(await subtle.exportKey("spki", publicKey)));
  }
  const bytes = asBytes(publicKey);
  if (bytes.length === 65 && bytes[0] === 4) {
    const key = await subtle.importKey("raw", bytes, ECDH, true, []);
    return publicInfo(new Uint8Array(await subtle.exportKey("spki", key)));
  }
  return publicInfo(bytes);
}

/** A recipient's id: hex SHA-256 of its SubjectPublicKeyInfo. */
export async function keyId(spki) {
  return toHex(await sha256(spki));
}

async function binding(lot, bidderCert, prefix) {
  return canonical({ lot, bidder: toHex(await sha256(bidderCert)), prefix: toBase64(prefix) });
}

async function wrap(dataKey, to, recipient, bound) {
  const key = await keyId(recipient.spki);
  if (recipient.kind === "P-256") {
    const sealed = await hpke.seal(recipient.spki, KEY_INFO, bound, dataKey);
    const [enc, wrapped] = [toBase64(sealed.enc), toBase64(sealed.ciphertext)];
    return { to, alg: HPKE_ALG, key, enc, wrapped };
  }
  const rsa = await subtle.importKey("spki", recipient.spki, OAEP, false, ["encrypt"]);
  const wrapped = await subtle.encrypt(OAEP, rsa, concat(dataKey, await sha256(bound)));
  return { to, alg: RSA_ALG, key, enc: "", wrapped: toBase64(wrapped) };
}

async function unwrap(entry, privateKey, own, bound) {
  const refuse = () =>
    new EnvelopeError("the data key does not open with this key", "envelope_wrong_recipient");
  let opened = null;
  try {
    if (entry.alg === HPKE_ALG && privateKey.algorithm.name === "ECDH") {
      opened = await hpke.open(
        fromBase64(entry.enc), privateKey, own.spki, KEY_INFO, bound, fromBase64(entry.wrapped),
      );
    } else if (entry.alg === RSA_ALG && privateKey.algorithm.name === "RSA-OAEP") {
      const wrapped = fromBase64(entry.wrapped);
      const plain = new Uint8Array(await subtle.decrypt(OAEP, privateKey, wrapped));
      if (plain.length === 64 && equal(plain.subarray(32), await sha256(bound))) {
        opened = plain.slice(0, 32);
      }
      plain.fill(0);
    }
  } catch {
    throw refuse();
  }
  if (opened === null || opened.length !== 32) throw refuse();
  return opened;
}

async function gcmKey(raw, usage) {
  const key = await subtle.importKey("raw", raw, { name: "AES-GCM" }, false, [usage]);
  raw.fill(0);
  return key;
}

function gcm(nonceBytes, aad) {
  return { name: "AES-GCM", iv: nonceBytes, additionalData: aad, tagLength: 128 };
}

function signatureAlgorithm(kind) {
  return kind === "P-256"
    ? { name: "ECDSA", hash: "SHA-256" }
    : { name: "RSA-PSS", saltLength: 32 };
}

function signed(preambleDigest, core) {
  return concat(SIGNED_PREFIX, preambleDigest, canonical(core));
}

// sealing -----------------------------------------------------------------------------------

/**
 * Seal ``source`` (a Blob or File) for the lot: returns the envelope as a Blob.
 *
 * ``certificateDer``: the bidder's X.509 certificate (DER); ``signingKey``: its private key as
 * a non-extractable ECDSA P-256 or RSA-PSS (SHA-256) CryptoKey; ``openingKey``: the lot's opening
 * public key (P-256; SPKI DER, 65-byte point, or CryptoKey); ``client``: string fields reported
 * in the preamble. ``progress(done, total)`` is called after each chunk with plaintext bytes.
 */
export async function seal(source, options, progress = null) {
  const { lot, certificateDer, signingKey, openingKey, client = {} } = options;
  if (typeof lot !== "string" || lot === "") throw new TypeError("lot must be a non-empty string");
  // only what the strict reader takes (docs/envelope.md "Preamble")
  if (!isClient(client)) throw new TypeError("client fields are [a-z][a-z0-9_]{0,31} -> string");
  const certificate = asBytes(certificateDer);
  await bidderKey(certificate); // a key the reader refuses is refused before anything is written
  const bidder = await recipientKey({ certificateDer: certificate });
  const opening = await recipientKey({ publicKey: openingKey });
  if (opening.kind !== "P-256") throw new TypeError("the lot's opening key is a P-256 key");
  const wanted = bidder.kind === "P-256" ? "ECDSA" : "RSA-PSS";
  if (signingKey?.algorithm?.name !== wanted) {
    throw new TypeError(`the certificate's key signs with ${wanted}`);
  }
  const total = source.size;
  const count = Math.max(1, Math.ceil(total / CHUNK));
  if (count > MAX_CHUNKS) throw new RangeError("too large for one envelope");

  const dataKey = crypto.getRandomValues(new Uint8Array(32));
  const prefix = crypto.getRandomValues(new Uint8Array(PREFIX_LEN));
  const bound = await binding(lot, certificate, prefix);
  const preamble = canonical({
    v: VERSION,
    suite: SUITE,
    lot,
    chunk_size: CHUNK,
    bidder_cert: toBase64(certificate),
    nonce_prefix: toBase64(prefix),
    recipients: [
      await wrap(dataKey, "bidder", bidder, bound),
      await wrap(dataKey, "opening", opening, bound),
    ],
    client: { ...client },
  });
  const key = await gcmKey(dataKey, "encrypt");
  const aad = await sha256(preamble);
  let out = new Blob([MAGIC, new Uint8Array([0, VERSION]), u32(preamble.length), preamble]);
  const body = new Sha256();
  let done = 0;
  for (let i = 0; i < count; i++) {
    const final = i === count - 1;
    const piece = source.slice(i * CHUNK, Math.min(total, (i + 1) * CHUNK));
    const chunk = new Uint8Array(await piece.arrayBuffer());
    const params = gcm(nonce(prefix, i, final), aad);
    const sealed = new Uint8Array(await subtle.encrypt(params, key, chunk));
    const head = concat([final ? KIND_FINAL : KIND_CHUNK], u32(sealed.length));
    body.update(head).update(sealed);
    out = new Blob([out, head, sealed]);
    done += chunk.length;
    if (progress) progress(done, total);
  }
  if (done !== total) throw new Error("the file changed while it was sealed");
  const core = { plaintext_size: done, chunk_count: count, body_digest: toHex(body.digest()) };
  const toSign = signed(aad, core);
  const signature = new Uint8Array(
    await subtle.sign(signatureAlgorithm(bidder.kind), signingKey, toSign),
  );
  // a key that is not the certificate's would make an envelope nobody accepts: say so now
  const alg = bidder.kind === "P-256" ? EC : PSS;
  const check = await subtle.importKey("spki", bidder.spki, alg, false, ["verify"]);
  const own = await subtle.verify(signatureAlgorithm(bidder.kind), check, signature, toSign);
  if (!own) {
    throw new EnvelopeError(
      "the signing key does not belong to the certificate", "envelope_signature",
    );
  }
  const trailer = canonical({ ...core, signature: toBase64(signature) });
  return new Blob([out, u32(trailer.length), trailer], { type: "application/octet-stream" });
}

// reading -----------------------------------------------------------------------------------

async function read(blob, at, count) {
  return new Uint8Array(await blob.slice(at, at + count).arrayBuffer());
}

async function exactly(blob, at, count, what) {
  const data = await read(blob, at, count);
  if (data.length !== count) {
    throw new EnvelopeError(`the envelope ends inside its ${what}`, "envelope_truncated");
  }
  return data;
}

const PREAMBLE_FIELDS = [
  "bidder_cert", "chunk_size", "client", "lot", "nonce_prefix", "recipients", "suite", "v",
];
const TRAILER_FIELDS = ["body_digest", "chunk_count", "plaintext_size", "signature"];
const CLIENT_KEY = /^[a-z][a-z0-9_]{0,31}$/;
const HEX_DIGEST = /^[0-9a-f]{64}$/;
const HPKE_ENC = 65;
const HPKE_WRAPPED = 48;

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** A JSON object whose bytes are exactly its canonical form; else ``code``. */
function canonicalObject(raw, code, what) {
  let value;
  try {
    value = parseCanonical(raw);
  } catch {
    throw new EnvelopeError(`${what} is not canonical JSON`, code);
  }
  if (!isObject(value)) throw new EnvelopeError(`${what} is not canonical JSON`, code);
  return value;
}

/** Exactly the ``wanted`` fields (sorted); ``detail`` lists the missing and the extra ones, each
 * sorted (by UTF-16 code unit: every field name the format knows is ASCII), as ca/envelope.py. */
function exactFields(value, wanted, code, what) {
  const have = Object.keys(value).sort();
  if (have.join() !== wanted.join() || have.length !== wanted.length) {
    const missing = wanted.filter((k) => !have.includes(k));
    const extra = have.filter((k) => !wanted.includes(k));
    const message = `the ${what} must have exactly the fields ${wanted.join(", ")}`;
    throw new EnvelopeError(message, code, { missing, extra });
  }
}

function domain(ok, field, code = "envelope_header_field") {
  if (!ok) {
    throw new EnvelopeError(`the envelope's ${field} is outside what the format allows`, code, {
      field,
    });
  }
}

/** Canonical base64 only: decoding and encoding again gives the same text. */
function base64Field(value, field, code = "envelope_header_field") {
  domain(typeof value === "string", field, code);
  let bytes = null;
  try {
    bytes = fromBase64(value);
  } catch {
    bytes = null;
  }
  if (bytes === null || toBase64(bytes) !== value) {
    throw new EnvelopeError(`the envelope's ${field} is not canonical base64`, "envelope_base64", {
      field,
    });
  }
  return bytes;
}

function isClient(value) {
  return (
    isObject(value) &&
    Object.entries(value).every(([k, v]) => CLIENT_KEY.test(k) && typeof v === "string")
  );
}

/** {kind, spki, bits, id} of the bidder certificate's key, or the code ca/envelope.py gives. */
async function bidderKey(certificate) {
  let spki;
  try {
    // one DER certificate, nothing after it (the browser reads its key only: docs/envelope.md)
    if (derRead(certificate, 0).end !== certificate.length) throw new TypeError("data after");
    spki = certificateSpki(certificate);
  } catch {
    throw new EnvelopeError("the bidder certificate cannot be read", "envelope_header");
  }
  try {
    const kind = spkiKind(spki);
    const alg = kind === "P-256" ? ECDH : OAEP;
    const key = await subtle.importKey("spki", spki, alg, true, []);
    const bits = kind === "RSA" ? key.algorithm.modulusLength : 256;
    if (kind === "RSA" && (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS)) {
      throw new TypeError("RSA of 2048 to 4096 bits only");
    }
    if (kind === "RSA" && toHex(key.algorithm.publicExponent).replace(/^(00)+/, "") !== "010001") {
      throw new TypeError("RSA with exponent 65537 only");
    }
    const der = new Uint8Array(await subtle.exportKey("spki", key));
    return { kind, spki: der, bits, id: await keyId(der) };
  } catch {
    throw new EnvelopeError(
      "the bidder certificate's key is not P-256, nor RSA of 2048 to 4096 bits with exponent 65537",
      "envelope_header_field",
      { field: "bidder_cert" },
    );
  }
}

/** Exactly the bidder's entry then the opening key's, as ca/envelope.py checks them. */
function checkRecipients(entries, bidder) {
  domain(Array.isArray(entries) && entries.length === 2, "recipients");
  const expected = [
    ["bidder", bidder.kind === "P-256" ? HPKE_ALG : RSA_ALG],
    ["opening", HPKE_ALG],
  ];
  entries.forEach((entry, at) => {
    const [to, alg] = expected[at];
    const name = `recipients[${at}]`;
    domain(isObject(entry), name);
    exactFields(entry, RECIPIENT_FIELDS, "envelope_header_field", name);
    domain(Object.values(entry).every((v) => typeof v === "string"), name);
    domain(entry.to === to, `${name}.to`);
    domain(entry.alg === alg, `${name}.alg`);
    domain(HEX_DIGEST.test(entry.key), `${name}.key`);
    if (at === 0 && entry.key !== bidder.id) {
      throw new EnvelopeError(
        "the bidder's entry is not for the key of the bidder's certificate",
        "envelope_bidder_key",
      );
    }
    if (alg === HPKE_ALG) {
      const enc = base64Field(entry.enc, `${name}.enc`);
      domain(enc.length === HPKE_ENC && enc[0] === 4, `${name}.enc`);
      const wrapped = base64Field(entry.wrapped, `${name}.wrapped`);
      domain(wrapped.length === HPKE_WRAPPED, `${name}.wrapped`);
    } else {
      domain(entry.enc === "", `${name}.enc`);
      const wrapped = base64Field(entry.wrapped, `${name}.wrapped`);
      domain(wrapped.length === Math.ceil(bidder.bits / 8), `${name}.wrapped`);
    }
  });
  domain(entries[0].key !== entries[1].key, "recipients[1].key");
  return entries.map((e) => ({ ...e }));
}

/**
 * The preamble, parsed: {raw, digest, lot, bidderCert, prefix, recipients, client, end}
 * (``end``: where the body starts). Checked in the order of docs/envelope.md "Order of checks".
 */
export async function readHeader(blob) {
  const start = await exactly(blob, 0, MAGIC.length + 6, "header");
  if (!equal(start.subarray(0, MAGIC.length), MAGIC)) {
    throw new EnvelopeError("not a bidroom envelope", "envelope_header");
  }
  const version = (start[8] << 8) | start[9];
  if (version !== VERSION) {
    throw new EnvelopeError(`envelope version ${version} is not supported`, "envelope_version");
  }
  const length = readU32(start, 10);
  if (length > MAX_PREAMBLE) {
    throw new EnvelopeError("the envelope header is too large", "envelope_header");
  }
  const raw = await exactly(blob, start.length, length, "header");
  const fields = canonicalObject(raw, "envelope_header", "the envelope header");
  exactFields(fields, PREAMBLE_FIELDS, "envelope_header_field", "preamble");
  domain(fields.v === VERSION, "v");
  domain(fields.suite === SUITE, "suite");
  domain(fields.chunk_size === CHUNK, "chunk_size");
  domain(typeof fields.lot === "string" && fields.lot !== "", "lot");
  domain(isClient(fields.client), "client");
  const bidderCert = base64Field(fields.bidder_cert, "bidder_cert");
  const bidder = await bidderKey(bidderCert);
  const prefix = base64Field(fields.nonce_prefix, "nonce_prefix");
  domain(prefix.length === PREFIX_LEN, "nonce_prefix");
  const recipients = checkRecipients(fields.recipients, bidder);
  return {
    raw,
    digest: await sha256(raw),
    lot: fields.lot,
    bidderCert,
    prefix,
    recipients,
    client: fields.client,
    end: start.length + length,
  };
}

/** The body's records, in order, stopping after the final one: next() -> record or null. */
class Records {
  constructor(blob, at) {
    this.blob = blob;
    this.at = at;
    this.over = false;
    this.count = 0;
  }

  /** The next record if it is well formed, else null: a fault is named after the chunk that
   * failed, never after a later record's own defect (as ca/envelope.py's _peek). */
  async peek() {
    try {
      return await this.next();
    } catch {
      return null;
    }
  }

  async next() {
    if (this.over) return null;
    const head = await exactly(this.blob, this.at, 5, "body");
    const kind = head[0];
    const length = readU32(head, 1);
    if ((kind !== KIND_CHUNK && kind !== KIND_FINAL) || length < TAG || length > CHUNK + TAG) {
      throw new EnvelopeError("the body ends without its final chunk", "envelope_truncated");
    }
    // the sealer's chunking, enforced: every chunk but the last is full; the last is empty
    // only when the whole plaintext is
    const index = this.count;
    if (kind === KIND_CHUNK && length !== CHUNK + TAG) {
      throw new EnvelopeError(
        `chunk ${index} is not final and shorter than the chunk size`, "envelope_chunk_short",
        { chunk: index, length },
      );
    }
    if (kind === KIND_FINAL && length === TAG && index > 0) {
      throw new EnvelopeError(
        `the final chunk ${index} is empty after data`, "envelope_chunk_empty", { chunk: index },
      );
    }
    const ciphertext = await read(this.blob, this.at + 5, length);
    if (ciphertext.length !== length) {
      throw new EnvelopeError("the envelope ends inside its body", "envelope_truncated");
    }
    this.at += 5 + length;
    this.count += 1;
    this.over = kind === KIND_FINAL;
    return { head, ciphertext, final: kind === KIND_FINAL };
  }
}

async function readTrailer(blob, at) {
  const length = readU32(await exactly(blob, at, 4, "trailer"));
  if (length > MAX_TRAILER) throw new EnvelopeError("the trailer is malformed", "envelope_trailer");
  const raw = await exactly(blob, at + 4, length, "trailer");
  if (blob.size > at + 4 + length) {
    throw new EnvelopeError("data follows the trailer", "envelope_trailer");
  }
  const trailer = canonicalObject(raw, "envelope_trailer", "the trailer");
  exactFields(trailer, TRAILER_FIELDS, "envelope_trailer", "trailer");
  const { plaintext_size: size, chunk_count: count, body_digest: digest } = trailer;
  domain(Number.isSafeInteger(size) && size >= 0, "plaintext_size", "envelope_trailer");
  domain(Number.isSafeInteger(count) && count >= 1, "chunk_count", "envelope_trailer");
  domain(typeof digest === "string" && HEX_DIGEST.test(digest), "body_digest", "envelope_trailer");
  base64Field(trailer.signature, "signature", "envelope_trailer");
  return trailer;
}

async function checkTrailer(header, trailer, digest, size, count) {
  const core = {
    plaintext_size: trailer.plaintext_size,
    chunk_count: trailer.chunk_count,
    body_digest: trailer.body_digest,
  };
  if (core.plaintext_size !== size || core.chunk_count !== count || core.body_digest !== digest) {
    throw new EnvelopeError(
      "the body does not match the sealed sizes and digest", "envelope_body_digest",
    );
  }
  let signer;
  try {
    signer = await publicInfo(certificateSpki(header.bidderCert));
  } catch {
    throw new EnvelopeError("the bidder certificate cannot be read", "envelope_header");
  }
  const bad = () =>
    new EnvelopeError("the bidder's signature does not verify", "envelope_signature");
  let ok = false;
  try {
    const alg = signer.kind === "P-256" ? EC : PSS;
    const key = await subtle.importKey("spki", signer.spki, alg, false, ["verify"]);
    const signature = fromBase64(String(trailer.signature));
    if (signer.kind === "P-256" && signature.length !== 64) throw bad();
    const data = signed(header.digest, core);
    ok = await subtle.verify(signatureAlgorithm(signer.kind), key, signature, data);
  } catch {
    throw bad();
  }
  if (!ok) throw bad();
}

/**
 * Check structure, body digest and the bidder's signature, without any key. Returns
 * {header, plaintextSize, chunkCount, bodyDigest}. The certificate's path and revocation are the
 * trust store's to check (ca/trust.py), not the envelope's.
 */
export async function verify(blob) {
  const header = await readHeader(blob);
  const records = new Records(blob, header.end);
  const body = new Sha256();
  let size = 0;
  let count = 0;
  for (let record; (record = await records.next()); ) {
    body.update(record.head).update(record.ciphertext);
    size += record.ciphertext.length - TAG;
    count += 1;
  }
  const digest = toHex(body.digest());
  await checkTrailer(header, await readTrailer(blob, records.at), digest, size, count);
  return { header, plaintextSize: size, chunkCount: count, bodyDigest: digest };
}

// opening -----------------------------------------------------------------------------------

/**
 * Decrypt an envelope with ``privateKey`` (non-extractable ECDH P-256 or RSA-OAEP SHA-256
 * CryptoKey; see importPrivateKey) whose public half is given as ``certificateDer`` (the
 * bidder) or ``publicKey`` (SPKI DER, P-256 point or CryptoKey; the lot's opening key): it finds
 * the recipient entry. Returns the plaintext as a Blob only once everything verified, signature
 * included; throws EnvelopeError otherwise. ``progress(done, total)`` counts plaintext bytes.
 */
export async function open(
  blob, { privateKey, certificateDer = null, publicKey = null }, progress = null,
) {
  const header = await readHeader(blob);
  const own = await recipientKey({ certificateDer, publicKey });
  const wanted = await keyId(own.spki);
  const entry = header.recipients.find((e) => e.key === wanted);
  if (!entry) {
    throw new EnvelopeError(
      "this key is not a recipient of the envelope", "envelope_wrong_recipient",
    );
  }
  const bound = await binding(header.lot, header.bidderCert, header.prefix);
  const key = await gcmKey(await unwrap(entry, privateKey, own, bound), "decrypt");
  const records = new Records(blob, header.end);
  const body = new Sha256();
  const total = Math.max(0, blob.size - header.end);
  let plain = new Blob([]); // held back until the signature verified; dropped on any failure
  let size = 0;
  let count = 0;
  for (let record; (record = await records.next()); ) {
    body.update(record.head).update(record.ciphertext);
    let opened;
    try {
      const params = gcm(nonce(header.prefix, count, record.final), header.digest);
      opened = await subtle.decrypt(params, key, record.ciphertext);
    } catch {
      throw await fault(key, header, count, record.ciphertext, records);
    }
    plain = new Blob([plain, opened]);
    size += opened.byteLength;
    count += 1;
    if (progress) progress(size, total);
  }
  const digest = toHex(body.digest());
  await checkTrailer(header, await readTrailer(blob, records.at), digest, size, count);
  return plain;
}

/** Where a chunk really belongs (it authenticates there), looking around ``near``. */
async function position(key, header, ciphertext, near) {
  for (let at = Math.max(0, near - SEARCH); at <= near + SEARCH; at++) {
    for (const final of [false, true]) {
      try {
        await subtle.decrypt(gcm(nonce(header.prefix, at, final), header.digest), key, ciphertext);
        return at;
      } catch {
        // not here
      }
    }
  }
  return null;
}

/** Name what happened to the chunk that failed at position ``expected`` (as ca/envelope.py). */
async function fault(key, header, expected, ciphertext, following) {
  const found = await position(key, header, ciphertext, expected);
  const detail = { chunk: expected, found };
  if (found === null) {
    const next = expected === 0 ? await following.peek() : null;
    if (next !== null && (await position(key, header, next.ciphertext, 1)) === null) {
      return new EnvelopeError(
        "the body was not sealed under this header (swapped header)",
        "envelope_header_mismatch",
        detail,
      );
    }
    return new EnvelopeError(
      `chunk ${expected} was altered or comes from another bid`, "envelope_chunk_altered", detail,
    );
  }
  if (found < expected) {
    const message = `chunk ${found} appears again at ${expected}`;
    return new EnvelopeError(message, "envelope_chunk_repeated", detail);
  }
  if (found === expected) {
    const message = `chunk ${expected} claims the wrong end of the body`;
    return new EnvelopeError(message, "envelope_chunk_final", detail);
  }
  const next = await following.peek();
  if (next !== null && (await position(key, header, next.ciphertext, expected)) === expected) {
    const message = `chunks ${expected} and ${found} are out of order`;
    return new EnvelopeError(message, "envelope_chunk_reordered", detail);
  }
  return new EnvelopeError(`chunk ${expected} is missing`, "envelope_chunk_dropped", detail);
}
