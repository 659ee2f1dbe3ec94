// Reading a certificate holder's key files in the browser: PEM, PKCS#8 (plain or PBES2-encrypted),
// PKCS#12 (.p12/.pfx) and X.509 certificates, with a small DER reader.
//
// Rules of this file: no DOM, no network, no dependencies; WebCrypto does every cryptographic
// step (PBKDF2, AES-CBC, SHA, HMAC). What it supports is what bidroom's CA writes (ca/primitives.py):
//   - PKCS#8 "PRIVATE KEY", and "ENCRYPTED PRIVATE KEY" with PBES2 = PBKDF2 (HMAC-SHA1/256/384/512)
//     + AES-128/192/256-CBC; the password is its UTF-8 bytes (RFC 8018);
//   - PKCS#12 with the same PBES2 on the key and the certificates, and an HMAC integrity MAC
//     (SHA-1/256/384/512) whose key comes from the PKCS#12 KDF (RFC 7292 appendix B, ID 3) over
//     the password as a BMPString. The MAC is checked before anything is decrypted: a wrong
//     password and a damaged file both fail it, and are reported as such (wrong_password).
// Legacy PKCS#12 encryption (RC2, 3DES: pbeWithSHAAnd...) and "EC/RSA PRIVATE KEY" PEM are
// refused with a code that tells the holder how to re-export the file.

const subtle = globalThis.crypto.subtle;

export const OID = {
  ecPublicKey: "1.2.840.10045.2.1",
  p256: "1.2.840.10045.3.1.7",
  rsaEncryption: "1.2.840.113549.1.1.1",
  pbes2: "1.2.840.113549.1.5.13",
  pbkdf2: "1.2.840.113549.1.5.12",
  data: "1.2.840.113549.1.7.1",
  encryptedData: "1.2.840.113549.1.7.6",
  keyBag: "1.2.840.113549.1.12.10.1.1",
  shroudedKeyBag: "1.2.840.113549.1.12.10.1.2",
  certBag: "1.2.840.113549.1.12.10.1.3",
  x509Certificate: "1.2.840.113549.1.9.22.1",
  localKeyId: "1.2.840.113549.1.9.21",
  commonName: "2.5.4.3",
  organizationName: "2.5.4.10",
  organizationIdentifier: "2.5.4.97",
};

const PRF_HASH = {
  "1.2.840.113549.2.7": "SHA-1",
  "1.2.840.113549.2.9": "SHA-256",
  "1.2.840.113549.2.10": "SHA-384",
  "1.2.840.113549.2.11": "SHA-512",
};

const AES_CBC_BYTES = {
  "2.16.840.1.101.3.4.1.2": 16,
  "2.16.840.1.101.3.4.1.22": 24,
  "2.16.840.1.101.3.4.1.42": 32,
};

/** Digest OID -> WebCrypto name, output bytes u and block bytes v (the PKCS#12 KDF's terms). */
const MAC_HASH = {
  "1.3.14.3.2.26": { name: "SHA-1", u: 20, v: 64 },
  "2.16.840.1.101.3.4.2.1": { name: "SHA-256", u: 32, v: 64 },
  "2.16.840.1.101.3.4.2.2": { name: "SHA-384", u: 48, v: 128 },
  "2.16.840.1.101.3.4.2.3": { name: "SHA-512", u: 64, v: 128 },
};

const MAX_ITERATIONS = 10_000_000;

/** A key file the page cannot use; `code` names why (texts in i18n.js, ERRORS). */
export class KeyFileError extends Error {
  constructor(code, message = code) {
    super(message);
    this.code = code;
  }
}

const unreadable = (why) => new KeyFileError("key_unreadable", why);

// DER ----------------------------------------------------------------------------------------

/**
 * Parse one DER (or BER with indefinite lengths, as some PKCS#12 writers produce) element that
 * spans all of `bytes`. Nodes: {cls, tag, constructed, content, children, der}.
 */
export function parseDer(bytes) {
  const [node, end] = readNode(bytes, 0, 0);
  if (end !== bytes.length) throw unreadable("data after the DER element");
  return node;
}

function readNode(buf, at, depth) {
  if (depth > 40 || at + 2 > buf.length) throw unreadable("truncated DER");
  const first = buf[at];
  let p = at + 1;
  let tag = first & 0x1f;
  if (tag === 0x1f) {
    tag = 0;
    let b;
    do {
      if (p >= buf.length) throw unreadable("truncated DER tag");
      b = buf[p++];
      tag = tag * 128 + (b & 0x7f);
    } while (b & 0x80);
  }
  const node = { cls: first >> 6, tag, constructed: (first & 0x20) !== 0, content: null, children: null };
  if (p >= buf.length) throw unreadable("truncated DER length");
  let len = buf[p++];
  let end;
  if (len === 0x80) {
    if (!node.constructed) throw unreadable("indefinite length on a primitive");
    node.children = [];
    let q = p;
    for (;;) {
      if (q + 2 > buf.length) throw unreadable("unterminated indefinite length");
      if (buf[q] === 0 && buf[q + 1] === 0) break;
      const [child, next] = readNode(buf, q, depth + 1);
      node.children.push(child);
      q = next;
    }
    node.content = buf.subarray(p, q);
    end = q + 2;
  } else {
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n > 4 || p + n > buf.length) throw unreadable("DER length too long");
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + buf[p++];
    }
    end = p + len;
    if (end > buf.length) throw unreadable("DER element runs past the end");
    node.content = buf.subarray(p, end);
    if (node.constructed) {
      node.children = [];
      let q = p;
      while (q < end) {
        const [child, next] = readNode(buf, q, depth + 1);
        node.children.push(child);
        q = next;
      }
    }
  }
  node.der = buf.subarray(at, end);
  return [node, end];
}

function expect(node, tag, what, cls = 0) {
  if (!node || node.tag !== tag || node.cls !== cls) throw unreadable(`expected ${what}`);
  return node;
}

const seq = (node, what = "SEQUENCE") => expect(node, 16, what).children;

/** The bytes of an OCTET STRING (a BER constructed one is the concatenation of its parts). */
export function octets(node) {
  if (!node.constructed) return node.content;
  return concat(...node.children.map(octets));
}

/** An OBJECT IDENTIFIER as dotted text. */
export function oid(node) {
  const bytes = expect(node, 6, "OBJECT IDENTIFIER").content;
  const parts = [];
  let value = 0;
  for (const b of bytes) {
    value = value * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      if (parts.length === 0) {
        const top = Math.min(2, Math.floor(value / 40));
        parts.push(top, value - 40 * top);
      } else parts.push(value);
      value = 0;
    }
  }
  return parts.join(".");
}

/** A small non-negative INTEGER as a number. */
function int(node) {
  const bytes = expect(node, 2, "INTEGER").content;
  if (bytes.length > 6 || (bytes[0] & 0x80)) throw unreadable("integer out of range");
  return bytes.reduce((n, b) => n * 256 + b, 0);
}

/** The element inside a context-specific [n] EXPLICIT wrapper. */
function explicit(node, n) {
  expect(node, n, `[${n}]`, 2);
  if (!node.children?.length) throw unreadable(`empty [${n}]`);
  return node.children[0];
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of parts) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

export function equalBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

export function fromBase64(text) {
  const clean = text.replace(/\s+/g, "");
  let raw;
  try {
    raw = atob(clean);
  } catch {
    throw unreadable("invalid base64");
  }
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

// PEM ----------------------------------------------------------------------------------------

/** Every PEM block in `text`: [{label, der}]. Encapsulated headers (legacy encryption) refuse. */
export function pemBlocks(text) {
  const blocks = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (const [, label, body] of text.matchAll(re)) {
    if (/^[A-Za-z-]+:/m.test(body)) throw new KeyFileError("key_legacy_format", "PEM with encapsulated headers");
    blocks.push({ label, der: fromBase64(body) });
  }
  return blocks;
}

function asPemText(bytes) {
  const head = new TextDecoder("latin1").decode(bytes.subarray(0, Math.min(bytes.length, 4096)));
  if (!head.includes("-----BEGIN ")) return null;
  return new TextDecoder("utf-8").decode(bytes);
}

// key files ----------------------------------------------------------------------------------

/**
 * What a key or certificate file holds: {pkcs8: Uint8Array|null, certificates: [Uint8Array],
 * format}. `password` (a string) opens encrypted PKCS#8 and PKCS#12; without it they throw
 * password_required, with a wrong one wrong_password.
 */
export async function readKeyFile(bytes, password = "") {
  bytes = new Uint8Array(bytes);
  const text = asPemText(bytes);
  if (text !== null) return readPem(text, password);
  let node;
  try {
    node = parseDer(bytes);
  } catch {
    throw new KeyFileError("key_unreadable", "neither PEM nor DER");
  }
  return readDer(node, password);
}

async function readPem(text, password) {
  const found = { pkcs8: null, certificates: [], format: "pem" };
  for (const { label, der } of pemBlocks(text)) {
    if (label === "PRIVATE KEY") found.pkcs8 ??= der;
    else if (label === "ENCRYPTED PRIVATE KEY") found.pkcs8 ??= await decryptPkcs8(parseDer(der), password);
    else if (label === "CERTIFICATE") found.certificates.push(der);
    else if (label === "EC PRIVATE KEY" || label === "RSA PRIVATE KEY") {
      throw new KeyFileError("key_legacy_format", label);
    }
  }
  if (!found.pkcs8 && !found.certificates.length) throw new KeyFileError("key_unreadable", "no usable PEM block");
  return found;
}

async function readDer(node, password) {
  const parts = node.children || [];
  // PFX: version 3, authSafe ContentInfo, macData
  if (node.tag === 16 && parts[0]?.tag === 2 && parts[1]?.tag === 16 && parts[0].content.length === 1 && parts[0].content[0] === 3) {
    return { ...(await readPkcs12(node, password)), format: "pkcs12" };
  }
  // PrivateKeyInfo: version, AlgorithmIdentifier, OCTET STRING
  if (node.tag === 16 && parts[0]?.tag === 2 && parts[1]?.tag === 16 && parts[2]?.tag === 4) {
    return { pkcs8: node.der, certificates: [], format: "der" };
  }
  // EncryptedPrivateKeyInfo: AlgorithmIdentifier, OCTET STRING
  if (node.tag === 16 && parts.length === 2 && parts[0]?.tag === 16 && parts[1]?.tag === 4) {
    return { pkcs8: await decryptPkcs8(node, password), certificates: [], format: "der" };
  }
  // Certificate: tbsCertificate, signatureAlgorithm, BIT STRING
  if (node.tag === 16 && parts.length === 3 && parts[2]?.tag === 3) {
    return { pkcs8: null, certificates: [node.der], format: "der" };
  }
  throw new KeyFileError("key_unreadable", "not a key, certificate or PKCS#12 file");
}

async function decryptPkcs8(node, password) {
  const [algorithm, data] = seq(node, "EncryptedPrivateKeyInfo");
  const plain = await decryptPbes2(algorithm, octets(expect(data, 4, "OCTET STRING")), password);
  return checkedPlaintext(plain, (der) => {
    const parts = seq(parseDer(der), "PrivateKeyInfo");
    expect(parts[0], 2, "version");
    expect(parts[2], 4, "privateKey");
    return der;
  });
}

/** A decryption that "succeeded" with a wrong password yields garbage: call that wrong_password. */
function checkedPlaintext(plain, read) {
  try {
    return read(plain);
  } catch {
    throw new KeyFileError("wrong_password", "the decrypted data is not readable");
  }
}

/** PBES2 (PBKDF2 + AES-CBC) decryption; the password is UTF-8 (RFC 8018). */
async function decryptPbes2(algorithm, ciphertext, password) {
  const [id, params] = seq(algorithm, "AlgorithmIdentifier");
  const scheme = oid(id);
  if (scheme !== OID.pbes2) throw new KeyFileError("unsupported_encryption", scheme);
  if (!password) throw new KeyFileError("password_required");
  const [kdf, cipher] = seq(params, "PBES2-params");
  const [kdfId, kdfParams] = seq(kdf);
  if (oid(kdfId) !== OID.pbkdf2) throw new KeyFileError("unsupported_encryption", oid(kdfId));
  const fields = seq(kdfParams, "PBKDF2-params");
  const salt = octets(expect(fields[0], 4, "salt"));
  const iterations = int(fields[1]);
  let next = 2;
  if (fields[next]?.tag === 2) next += 1; // keyLength: the cipher decides it anyway
  const hash = fields[next] ? PRF_HASH[oid(seq(fields[next])[0])] : "SHA-1";
  const [cipherId, ivNode] = seq(cipher);
  const keyBytes = AES_CBC_BYTES[oid(cipherId)];
  if (!hash || !keyBytes) throw new KeyFileError("unsupported_encryption", oid(cipherId));
  if (iterations < 1 || iterations > MAX_ITERATIONS) throw unreadable("PBKDF2 iteration count");
  const base = await subtle.importKey("raw", new TextEncoder().encode(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await subtle.deriveBits({ name: "PBKDF2", salt, iterations, hash }, base, keyBytes * 8);
  const key = await subtle.importKey("raw", bits, "AES-CBC", false, ["decrypt"]);
  try {
    return new Uint8Array(await subtle.decrypt({ name: "AES-CBC", iv: octets(ivNode) }, key, ciphertext));
  } catch {
    throw new KeyFileError("wrong_password", "AES-CBC padding");
  }
}

// PKCS#12 ------------------------------------------------------------------------------------

async function readPkcs12(pfx, password) {
  const [, authSafe, macData] = pfx.children;
  const [contentType, wrapped] = seq(authSafe, "ContentInfo");
  if (oid(contentType) !== OID.data) throw new KeyFileError("unsupported_encryption", "public-key protected PKCS#12");
  const content = octets(explicit(wrapped, 0));
  if (!password) throw new KeyFileError("password_required");
  if (macData) await verifyMac(macData, content, password);
  const keys = [];
  const certificates = [];
  for (const info of seq(parseDer(content), "AuthenticatedSafe")) {
    const [type, body] = seq(info, "ContentInfo");
    const kind = oid(type);
    let safeContents;
    if (kind === OID.data) safeContents = octets(explicit(body, 0));
    else if (kind === OID.encryptedData) safeContents = await decryptEncryptedData(explicit(body, 0), password);
    else throw new KeyFileError("unsupported_encryption", kind);
    await readBags(safeContents, password, keys, certificates);
  }
  if (keys.length > 1) throw new KeyFileError("key_unreadable", "more than one private key");
  // The certificate with the key's localKeyId is the holder's; it goes first.
  const keyId = keys[0]?.localKeyId;
  certificates.sort((a, b) => Number(isSameId(b.localKeyId, keyId)) - Number(isSameId(a.localKeyId, keyId)));
  return { pkcs8: keys[0]?.der ?? null, certificates: certificates.map((c) => c.der) };
}

function isSameId(a, b) {
  return Boolean(a && b && equalBytes(a, b));
}

async function decryptEncryptedData(node, password) {
  const [, encryptedContentInfo] = seq(node, "EncryptedData");
  const [, algorithm, encrypted] = seq(encryptedContentInfo, "EncryptedContentInfo");
  const [algId] = seq(algorithm);
  if (oid(algId) !== OID.pbes2) throw new KeyFileError("unsupported_encryption", oid(algId));
  expect(encrypted, 0, "[0] encryptedContent", 2);
  const plain = await decryptPbes2(algorithm, octets(encrypted), password);
  return checkedPlaintext(plain, (der) => (seq(parseDer(der)), der));
}

async function readBags(safeContents, password, keys, certificates) {
  for (const bag of seq(parseDer(safeContents), "SafeContents")) {
    const [bagId, value, attributes] = seq(bag, "SafeBag");
    const localKeyId = attributeValue(attributes, OID.localKeyId);
    const kind = oid(bagId);
    const inner = explicit(value, 0);
    if (kind === OID.keyBag) keys.push({ der: inner.der, localKeyId });
    else if (kind === OID.shroudedKeyBag) keys.push({ der: await decryptPkcs8(inner, password), localKeyId });
    else if (kind === OID.certBag) {
      const [certType, certValue] = seq(inner, "CertBag");
      if (oid(certType) === OID.x509Certificate) {
        certificates.push({ der: octets(explicit(certValue, 0)), localKeyId });
      }
    }
    // other bags (CRLs, secrets, nested safe contents) are not needed to sign in
  }
}

function attributeValue(attributes, wanted) {
  if (!attributes || attributes.tag !== 17) return null;
  for (const attribute of attributes.children) {
    const [type, values] = seq(attribute, "Attribute");
    if (oid(type) === wanted && values.children?.length) return octets(values.children[0]);
  }
  return null;
}

async function verifyMac(macData, content, password) {
  const [digestInfo, saltNode, iterationsNode] = seq(macData, "MacData");
  const [algorithm, digest] = seq(digestInfo, "DigestInfo");
  const hash = MAC_HASH[oid(seq(algorithm)[0])];
  if (!hash) throw new KeyFileError("unsupported_encryption", "PKCS#12 MAC digest");
  const iterations = iterationsNode ? int(iterationsNode) : 1;
  if (iterations < 1 || iterations > MAX_ITERATIONS) throw unreadable("MAC iteration count");
  const macKey = await pkcs12Kdf(hash, bmpPassword(password), octets(saltNode), 3, iterations, hash.u);
  const key = await subtle.importKey("raw", macKey, { name: "HMAC", hash: hash.name }, false, ["verify"]);
  if (!(await subtle.verify("HMAC", key, octets(digest), content))) {
    throw new KeyFileError("wrong_password", "PKCS#12 MAC mismatch");
  }
}

/** The password as PKCS#12 wants it for its KDF: UTF-16BE with a two-byte terminator. */
export function bmpPassword(password) {
  const out = new Uint8Array(2 * password.length + 2);
  for (let i = 0; i < password.length; i++) {
    const unit = password.charCodeAt(i);
    out[2 * i] = unit >> 8;
    out[2 * i + 1] = unit & 0xff;
  }
  return out;
}

/** RFC 7292 appendix B.2: n bytes of key material of purpose `id` (1 key, 2 IV, 3 MAC). */
export async function pkcs12Kdf({ name, u, v }, password, salt, id, iterations, n) {
  const stretch = (src) => {
    const out = new Uint8Array(src.length ? v * Math.ceil(src.length / v) : 0);
    for (let i = 0; i < out.length; i++) out[i] = src[i % src.length];
    return out;
  };
  const D = new Uint8Array(v).fill(id);
  const I = concat(stretch(salt), stretch(password));
  const blocks = Math.ceil(n / u);
  const out = new Uint8Array(blocks * u);
  for (let i = 0; i < blocks; i++) {
    let A = new Uint8Array(await subtle.digest(name, concat(D, I)));
    for (let r = 1; r < iterations; r++) A = new Uint8Array(await subtle.digest(name, A));
    out.set(A, i * u);
    if (i + 1 < blocks) {
      const B = Uint8Array.from({ length: v }, (_, k) => A[k % u]);
      for (let j = 0; j < I.length; j += v) {
        let carry = 1;
        for (let k = v - 1; k >= 0; k--) {
          const sum = I[j + k] + B[k] + carry;
          I[j + k] = sum & 0xff;
          carry = sum >> 8;
        }
      }
    }
  }
  return out.subarray(0, n);
}

// keys and certificates ----------------------------------------------------------------------

/** "P-256" or "RSA" for a PKCS#8 PrivateKeyInfo; other keys are refused (unsupported_key). */
export function privateKeyKind(pkcs8) {
  const [, algorithm] = seq(parseDer(pkcs8), "PrivateKeyInfo");
  const [id, params] = seq(algorithm, "AlgorithmIdentifier");
  const kind = oid(id);
  if (kind === OID.rsaEncryption) return "RSA";
  if (kind === OID.ecPublicKey && params?.tag === 6 && oid(params) === OID.p256) return "P-256";
  throw new KeyFileError("unsupported_key", kind);
}

/** Certificates in a certificate file (PEM with one or more blocks, or one DER certificate). */
export function readCertificateFile(bytes) {
  bytes = new Uint8Array(bytes);
  const text = asPemText(bytes);
  const ders = text !== null
    ? pemBlocks(text).filter((b) => b.label === "CERTIFICATE").map((b) => b.der)
    : [bytes];
  if (!ders.length) throw new KeyFileError("cert_unreadable", "no CERTIFICATE block");
  return ders.map(readCertificate);
}

/**
 * The parts of an X.509 certificate the page shows or needs: subject and issuer names, validity,
 * the SubjectPublicKeyInfo, and whether it is self-signed (a root: never sent in the chain).
 */
export function readCertificate(der) {
  try {
    der = new Uint8Array(der);
    const [tbs] = seq(parseDer(der), "Certificate");
    const fields = seq(tbs, "TBSCertificate");
    const i = fields[0].cls === 2 && fields[0].tag === 0 ? 1 : 0;
    const [serial, , issuer, validity, subject, spki] = fields.slice(i);
    const [notBefore, notAfter] = seq(validity, "Validity");
    const [keyAlgorithm] = seq(spki, "SubjectPublicKeyInfo");
    const keyOid = oid(seq(keyAlgorithm)[0]);
    return {
      der,
      serial: toHex(expect(serial, 2, "serial").content),
      subject: readName(subject),
      issuer: readName(issuer),
      selfIssued: equalBytes(subject.der, issuer.der),
      notBefore: readTime(notBefore),
      notAfter: readTime(notAfter),
      spki: spki.der,
      kind: keyOid === OID.rsaEncryption ? "RSA" : keyOid === OID.ecPublicKey ? "P-256" : keyOid,
    };
  } catch (error) {
    if (error instanceof KeyFileError) throw new KeyFileError("cert_unreadable", error.message);
    throw error;
  }
}

function readName(name) {
  const out = {};
  const keys = { [OID.commonName]: "commonName", [OID.organizationName]: "organisation", [OID.organizationIdentifier]: "organisationId" };
  for (const rdn of expect(name, 16, "Name").children) {
    for (const atv of expect(rdn, 17, "RDN").children) {
      const [type, value] = seq(atv);
      const key = keys[oid(type)];
      if (key && !(key in out)) out[key] = readString(value); // the first, as ca/trust.py reads it
    }
  }
  return out;
}

function readString(node) {
  if (node.tag === 30) {
    let text = "";
    for (let i = 0; i + 1 < node.content.length; i += 2) text += String.fromCharCode((node.content[i] << 8) | node.content[i + 1]);
    return text;
  }
  const encoding = node.tag === 12 ? "utf-8" : "latin1";
  return new TextDecoder(encoding).decode(node.content);
}

function readTime(node) {
  const text = new TextDecoder("latin1").decode(node.content);
  const m = node.tag === 23
    ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
    : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) throw unreadable("certificate time");
  let year = Number(m[1]);
  if (node.tag === 23) year += year < 50 ? 2000 : 1900;
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]))).toISOString();
}
