// RFC 3161 time-stamp tokens checked in the browser, as ca/tsa.py's verify_token checks them.
//
// A token is a CMS ContentInfo (RFC 5652) holding SignedData over a TSTInfo (RFC 3161 §2.4.2).
// The checks, each failing with the code Python gives:
//   - it parses as ContentInfo / SignedData / one SignerInfo with signed attributes (tsa_malformed);
//   - the signer's certificate is in the token (tsa_untrusted otherwise);
//   - the message-digest attribute is the hash of the encapsulated TSTInfo, the signature over the
//     DER SET OF signed attributes verifies with that certificate's key, and signingCertificate(V2)
//     names that certificate by hash (tsa_bad_signature);
//   - the certificate is issued by one of the given roots, which signed it, both valid at genTime,
//     with the EKU timeStamping alone and critical (tsa_untrusted). One level only: a TSA under an
//     intermediate CA fails with detail.chain = "longer" (the page says so);
//   - the imprint is the hash of the data given (tsa_imprint_mismatch).
// Signatures: ECDSA P-256/P-384 with SHA-256/384/512 (the DER signature becomes raw r||s for
// WebCrypto), RSA PKCS#1 v1.5 and RSASSA-PSS. Revocation is not checked (nor is it in Python).
//
// Rules of this file: no DOM, no network; WebCrypto does every cryptographic step.

import { parseDer, oid, octets, readCertificate, pemBlocks } from "./pkcs.js";

const subtle = globalThis.crypto.subtle;

/** A check that does not hold; `code` is the one Python's TimestampError / AuditError gives. */
export class CheckError extends Error {
  constructor(code, message = code, detail = {}) {
    super(message);
    this.code = code;
    this.detail = detail;
  }
}

const OIDS = {
  signedData: "1.2.840.113549.1.7.2",
  tstInfo: "1.2.840.113549.1.9.16.1.4",
  contentType: "1.2.840.113549.1.9.3",
  messageDigest: "1.2.840.113549.1.9.4",
  signingCertificate: "1.2.840.113549.1.9.16.2.12",
  signingCertificateV2: "1.2.840.113549.1.9.16.2.47",
  ecPublicKey: "1.2.840.10045.2.1",
  rsaEncryption: "1.2.840.113549.1.1.1",
  rsaPss: "1.2.840.113549.1.1.10",
  mgf1: "1.2.840.113549.1.1.8",
  extKeyUsage: "2.5.29.37",
  basicConstraints: "2.5.29.19",
  timeStamping: "1.3.6.1.5.5.7.3.8",
};

const HASHES = {
  "1.3.14.3.2.26": "SHA-1",
  "2.16.840.1.101.3.4.2.1": "SHA-256",
  "2.16.840.1.101.3.4.2.2": "SHA-384",
  "2.16.840.1.101.3.4.2.3": "SHA-512",
};

const ECDSA = {
  "1.2.840.10045.4.3.2": "SHA-256",
  "1.2.840.10045.4.3.3": "SHA-384",
  "1.2.840.10045.4.3.4": "SHA-512",
};

const RSA_PKCS1 = {
  "1.2.840.113549.1.1.11": "SHA-256",
  "1.2.840.113549.1.1.12": "SHA-384",
  "1.2.840.113549.1.1.13": "SHA-512",
};

const CURVES = {
  "1.2.840.10045.3.1.7": { name: "P-256", size: 32 },
  "1.3.132.0.34": { name: "P-384", size: 48 },
};

const malformed = (why, detail = {}) => new CheckError("tsa_malformed", `the token: ${why}`, detail);

function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function digest(hash, data) {
  return new Uint8Array(await subtle.digest(hash, data));
}

function is(node, tag, cls = 0) {
  return node && node.tag === tag && node.cls === cls;
}

function need(node, tag, what, cls = 0) {
  if (!is(node, tag, cls)) throw malformed(`expected ${what}`);
  return node;
}

function kids(node, what) {
  return need(node, 16, what).children;
}

function explicitChild(node, n, what) {
  if (!is(node, n, 2) || !node.children?.length) throw malformed(`expected [${n}] ${what}`);
  return node.children[0];
}

// certificates ------------------------------------------------------------------------------

/** An X.509 certificate's parts for path checks: DERs of tbs, names, SPKI, signature; extensions. */
export function parseCertificate(der) {
  try {
    der = new Uint8Array(der);
    const [tbs, sigAlg, sig] = kids(parseDer(der), "Certificate");
    const fields = kids(tbs, "TBSCertificate");
    const i = is(fields[0], 0, 2) ? 1 : 0;
    const [serial, , issuer, , subject, spki] = fields.slice(i);
    const extensions = {};
    for (const f of fields.slice(i + 6)) {
      if (!is(f, 3, 2)) continue;
      for (const ext of kids(f.children[0], "Extensions")) {
        const parts = kids(ext, "Extension");
        const critical = parts.length === 3 && parts[1].tag === 1 && parts[1].content[0] !== 0;
        extensions[oid(parts[0])] = { critical, value: parseDer(parts[parts.length - 1].content) };
      }
    }
    need(sig, 3, "BIT STRING");
    return {
      der,
      info: readCertificate(der),
      tbs: tbs.der,
      serial: need(serial, 2, "serial").content,
      issuer: issuer.der,
      subject: subject.der,
      spki: spki.der,
      signatureAlgorithm: sigAlg,
      signature: sig.content.subarray(1),
      extensions,
    };
  } catch (error) {
    if (error instanceof CheckError) throw error;
    throw malformed(`a certificate does not parse (${error.message})`);
  }
}

/** Certificates in PEM text (one or more CERTIFICATE blocks); throws tsa_root_unreadable. */
export function readPemCertificates(text) {
  let blocks;
  try {
    blocks = pemBlocks(text).filter((b) => b.label === "CERTIFICATE");
    if (!blocks.length) throw new Error("no CERTIFICATE block");
    return blocks.map((b) => parseCertificate(b.der));
  } catch (error) {
    throw new CheckError("tsa_root_unreadable", `the TSA root certificate: ${error.message}`);
  }
}

/** A named hash from an AlgorithmIdentifier node (absent/NULL parameters). */
function hashOf(algorithm) {
  const name = HASHES[oid(kids(algorithm, "AlgorithmIdentifier")[0])];
  if (!name) throw malformed("unsupported digest algorithm");
  return name;
}

/** {params for importKey, params for verify, ecdsa size|0} from a signature AlgorithmIdentifier. */
function signatureScheme(algorithm, spki, fallbackHash) {
  const [id, params] = kids(algorithm, "AlgorithmIdentifier");
  const algo = oid(id);
  const [keyAlg] = kids(parseDer(spki), "SubjectPublicKeyInfo");
  const [keyId, keyParams] = kids(keyAlg, "AlgorithmIdentifier");
  const keyKind = oid(keyId);
  if (algo in ECDSA) {
    const curve = keyKind === OIDS.ecPublicKey && is(keyParams, 6) ? CURVES[oid(keyParams)] : null;
    if (!curve) throw malformed("an ECDSA signature by a key that is not P-256 or P-384");
    return {
      importParams: { name: "ECDSA", namedCurve: curve.name },
      verifyParams: { name: "ECDSA", hash: ECDSA[algo] },
      ecSize: curve.size,
    };
  }
  if (algo in RSA_PKCS1 || algo === OIDS.rsaEncryption) {
    const hash = RSA_PKCS1[algo] ?? fallbackHash;
    if (!hash) throw malformed("rsaEncryption without a digest algorithm");
    return {
      importParams: { name: "RSASSA-PKCS1-v1_5", hash },
      verifyParams: { name: "RSASSA-PKCS1-v1_5" },
      ecSize: 0,
    };
  }
  if (algo === OIDS.rsaPss) {
    // RSASSA-PSS-params: [0] hash, [1] MGF1(hash), [2] saltLength; defaults SHA-1, 20.
    let hash = "SHA-1";
    let salt = 20;
    for (const p of params?.children ?? []) {
      if (is(p, 0, 2)) hash = hashOf(p.children[0]);
      if (is(p, 2, 2)) salt = p.children[0].content.reduce((n, b) => n * 256 + b, 0);
    }
    return {
      importParams: { name: "RSA-PSS", hash },
      verifyParams: { name: "RSA-PSS", saltLength: salt },
      ecSize: 0,
    };
  }
  throw malformed(`unsupported signature algorithm ${algo}`);
}

/** DER Ecdsa-Sig-Value {r, s} as the raw r||s WebCrypto verifies (each `size` bytes). */
export function ecdsaRaw(der, size) {
  const [r, s] = kids(parseDer(der), "Ecdsa-Sig-Value");
  const out = new Uint8Array(2 * size);
  [r, s].forEach((n, i) => {
    let v = need(n, 2, "INTEGER").content;
    while (v.length > size && v[0] === 0) v = v.subarray(1);
    if (v.length > size) throw malformed("an ECDSA integer is too long");
    out.set(v, (i + 1) * size - v.length);
  });
  return out;
}

/** Whether `signature` over `data` verifies with the key in `spki` under `scheme`. */
async function verifySignature(scheme, spki, signature, data) {
  let key;
  try {
    key = await subtle.importKey("spki", spki, scheme.importParams, false, ["verify"]);
  } catch (error) {
    throw malformed(`a public key WebCrypto cannot import (${error.message})`);
  }
  let sig = signature;
  if (scheme.ecSize) {
    try {
      sig = ecdsaRaw(signature, scheme.ecSize);
    } catch {
      return false;
    }
  }
  return subtle.verify(scheme.verifyParams, key, sig, data);
}

// the token ---------------------------------------------------------------------------------

function readGeneralizedTime(node) {
  const text = new TextDecoder("latin1").decode(need(node, 24, "GeneralizedTime").content);
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d+))?Z$/.exec(text);
  if (!m) throw malformed(`genTime ${text}`);
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, "0")) : 0;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number);
  return new Date(Date.UTC(y, mo - 1, d, h, mi, s, ms));
}

/** The parts of a token: SignedData pieces, the signer, and the TSTInfo's fields. */
export function parseToken(token) {
  let outer;
  try {
    outer = parseDer(new Uint8Array(token));
  } catch (error) {
    throw malformed(`it does not parse (${error.message})`);
  }
  try {
    const [type, content] = kids(outer, "ContentInfo");
    if (oid(type) !== OIDS.signedData) throw malformed("it is not CMS SignedData");
    const signed = kids(explicitChild(content, 0, "content"), "SignedData");
    const [, , encap] = signed;
    const [encapType, encapContent] = kids(encap, "EncapsulatedContentInfo");
    if (oid(encapType) !== OIDS.tstInfo || !encapContent) throw malformed("it carries no TSTInfo");
    const tstDer = octets(need(explicitChild(encapContent, 0, "eContent"), 4, "OCTET STRING"));
    const certificates = [];
    let signerInfos = null;
    for (const node of signed.slice(3)) {
      if (is(node, 0, 2)) {
        for (const c of node.children) if (is(c, 16)) certificates.push(parseCertificate(c.der));
      } else if (is(node, 17)) signerInfos = node.children;
    }
    if (!signerInfos || signerInfos.length !== 1) throw malformed("a token has exactly one signer");
    const parts = kids(signerInfos[0], "SignerInfo");
    const [, sid, digestAlgorithm, attrs] = parts;
    if (!is(attrs, 0, 2) || !attrs.children.length) throw malformed("the signer has no signed attributes");
    const [signatureAlgorithm, signature] = parts.slice(4);
    const attributes = {};
    for (const a of attrs.children) {
      const [t, values] = kids(a, "Attribute");
      const name = oid(t);
      if (need(values, 17, "SET").children.length !== 1) throw malformed(`attribute ${name} has not one value`);
      attributes[name] = values.children[0];
    }
    // The signature is over the attributes as a DER SET OF: the [0] IMPLICIT tag becomes 0x31.
    const signedAttrs = attrs.der.slice();
    signedAttrs[0] = 0x31;
    const tst = kids(parseDer(tstDer), "TSTInfo");
    const [, policy, imprint, serial, genTime] = tst;
    const [imprintAlg, hashed] = kids(imprint, "MessageImprint");
    return {
      certificates,
      sid,
      digestHash: hashOf(digestAlgorithm),
      attributes,
      signedAttrs,
      signatureAlgorithm,
      signature: need(signature, 4, "signature").content,
      tstDer,
      policy: oid(policy),
      imprintHash: hashOf(imprintAlg),
      imprint: need(hashed, 4, "hashedMessage").content,
      serial: need(serial, 2, "serialNumber").content,
      genTime: readGeneralizedTime(genTime),
    };
  } catch (error) {
    if (error instanceof CheckError) throw error;
    throw malformed(error.message);
  }
}

function issuedAs(cert, sid) {
  if (is(sid, 0, 2)) {
    const ski = cert.extensions["2.5.29.14"];
    return Boolean(ski && equal(ski.value.content, sid.content));
  }
  const [issuer, serial] = kids(sid, "IssuerAndSerialNumber");
  return equal(cert.issuer, issuer.der) && equal(cert.serial, need(serial, 2, "serial").content);
}

function subjectText(cert) {
  const s = cert.info.subject;
  return s.commonName || s.organisation || "?";
}

async function checkSignature(parsed, cert) {
  const bad = (why) => new CheckError("tsa_bad_signature", why, { tsa: subjectText(cert) });
  const type = parsed.attributes[OIDS.contentType];
  if (!type || oid(type) !== OIDS.tstInfo) throw malformed("the content-type attribute is not id-ct-TSTInfo");
  const declared = parsed.attributes[OIDS.messageDigest];
  if (!declared || !equal(declared.content, await digest(parsed.digestHash, parsed.tstDer))) {
    throw bad("the TSTInfo is not the one that was signed");
  }
  const scheme = signatureScheme(parsed.signatureAlgorithm, cert.spki, parsed.digestHash);
  if (!(await verifySignature(scheme, cert.spki, parsed.signature, parsed.signedAttrs))) {
    throw bad("the TSA's signature does not verify");
  }
  const v2 = parsed.attributes[OIDS.signingCertificateV2];
  const v1 = parsed.attributes[OIDS.signingCertificate];
  let first;
  let expected;
  if (v2) {
    first = kids(kids(v2, "SigningCertificateV2")[0], "certs")[0].children;
    const hash = is(first[0], 16) ? hashOf(first.shift()) : "SHA-256";
    expected = await digest(hash, cert.der);
  } else if (v1) {
    first = kids(kids(v1, "SigningCertificate")[0], "certs")[0].children;
    expected = await digest("SHA-1", cert.der);
  } else {
    throw malformed("no signingCertificate(V2) attribute names the TSA certificate");
  }
  if (!equal(need(first[0], 4, "certHash").content, expected)) {
    throw bad("the signed attributes name another certificate");
  }
}

function validAt(cert, when) {
  return new Date(cert.info.notBefore) <= when && when <= new Date(cert.info.notAfter);
}

function onlyTimeStamping(cert) {
  const eku = cert.extensions[OIDS.extKeyUsage];
  return Boolean(
    eku?.critical && eku.value.children?.length === 1 && oid(eku.value.children[0]) === OIDS.timeStamping,
  );
}

function isCa(cert) {
  const bc = cert.extensions[OIDS.basicConstraints];
  const first = bc?.value.children?.[0];
  return Boolean(first && first.tag === 1 && first.content[0] !== 0);
}

/** The root that issued and signed `cert`, or a tsa_untrusted CheckError (one level). */
async function checkChain(cert, roots, token, when) {
  const detail = { tsa: subjectText(cert), issuer: cert.info.issuer.commonName || "?" };
  const untrusted = (why, extra = {}) =>
    new CheckError("tsa_untrusted", `the TSA is not trusted: ${why}`, { ...detail, ...extra });
  if (!onlyTimeStamping(cert)) throw untrusted("its certificate's only EKU is not timeStamping (critical)");
  if (!validAt(cert, when)) throw untrusted("its certificate was not valid at genTime");
  for (const root of roots) {
    if (!equal(root.subject, cert.issuer)) continue;
    const scheme = signatureScheme(cert.signatureAlgorithm, root.spki);
    if (!(await verifySignature(scheme, root.spki, cert.signature, cert.tbs))) continue;
    if (!isCa(root)) throw untrusted("the root is not a CA certificate");
    if (!validAt(root, when)) throw untrusted("the root was not valid at genTime");
    return root;
  }
  // An intermediate in the token between the TSA and a given root: a path this page does not
  // follow (one level only), said so rather than just "untrusted".
  const between = token.certificates.find((c) => equal(c.subject, cert.issuer) && !equal(c.subject, c.issuer));
  if (between && roots.some((r) => equal(r.subject, between.issuer))) {
    throw untrusted("the TSA is under an intermediate CA: a longer chain is not supported here", { chain: "longer" });
  }
  throw untrusted("its certificate is not issued by the given root");
}

/**
 * What `token` says if it is a time-stamp over `message` (bytes) by a TSA under one of `roots`
 * (parsed certificates; null: the issuer is not checked, `trusted` is then false). Throws
 * CheckError with Python's code otherwise. Returns {genTime (Date), tsa, tsaIssuer, serial,
 * policy, trusted, root}.
 */
export async function verifyToken(token, message, roots = null) {
  const parsed = parseToken(token);
  const cert = parsed.certificates.find((c) => issuedAs(c, parsed.sid));
  if (!cert) {
    throw new CheckError("tsa_untrusted", "the token names a signer whose certificate it does not carry");
  }
  await checkSignature(parsed, cert);
  let root = null;
  if (roots) {
    if (!roots.length) throw new CheckError("tsa_untrusted", "no TSA root is trusted");
    root = await checkChain(cert, roots, parsed, parsed.genTime);
  }
  const expected = await digest(parsed.imprintHash, message);
  if (!equal(expected, parsed.imprint)) {
    throw new CheckError("tsa_imprint_mismatch", "the time-stamp is over other data", {
      token: Array.from(parsed.imprint, (b) => b.toString(16).padStart(2, "0")).join(""),
    });
  }
  return {
    genTime: parsed.genTime,
    tsa: subjectText(cert),
    tsaIssuer: cert.info.issuer.commonName || "",
    serial: Array.from(parsed.serial, (b) => b.toString(16).padStart(2, "0")).join(""),
    policy: parsed.policy,
    trusted: Boolean(root),
    root: root ? subjectText(root) : "",
  };
}
