// A lot's signed key statement (docs/opening.md "The signed lot key"; ca/lot_key.py is the
// same rule in Python): the tender's chair signs the lot's public parts in their browser, and
// the bid page seals only to a key so signed.
//
//   message = "bidroom action v1\n" + canonical({"action": "lot.sign_key", ...statement(lot)})
//
// What this page checks: the signature is by the key of the certificate served with it, the
// fingerprint is the key's, and the certificate names an owner of the tender (a chair assigned
// by subject, or the owning organisation's O). What it does not: the certificate's path to a
// root and its revocation (the server checked those when the chair signed). A bidder who trusts
// nothing the platform serves seals with `bidroom bid seal --lot-file --trust`, which checks
// the path against trust roots of their own.

import { equal, fromBase64, toHex } from "./bytes.js";
import { actionMessage } from "./actions.js";
import { readCertificate } from "./pkcs.js";

export const LOT_KEY_ACTION = "lot.sign_key";
const USCC_PREFIXES = ["USCC:", "NTRCN-"]; // organizationIdentifier forms (ca/trust.py)
export const FIELDS = ["id", "tender", "owner", "deadline", "opening_key", "key_fingerprint", "k", "custodians", "commitments"];

export class LotKeyError extends Error {
  constructor(code, message = code, detail = {}) {
    super(message);
    this.code = code;
    this.detail = detail;
  }
}

/** The fields the chair signs, from the served lot (GET /api/lots/{lot}'s `lot`). */
export function statement(lot) {
  const missing = FIELDS.filter((name) => !(name in lot));
  if (missing.length) throw new LotKeyError("lot_key_malformed", `the lot lacks ${missing.join(", ")}`, { missing });
  return Object.fromEntries(FIELDS.map((name) => [name, lot[name]]));
}

/**
 * A name as the platform compares organisations (ca/organisations.py): NFKC, no white space
 * (Python's str.isspace: JavaScript's \s and \x1c-\x1f, \x85) or format characters, case-folded
 * (upper then lower case: ß and ss compare equal, as with Python's casefold).
 */
export function organisationName(name) {
  if (!name) return null;
  const kept = name.normalize("NFKC").replace(/[\s\x1c-\x1f\x85\p{Cf}]/gu, "").toUpperCase().toLowerCase();
  return kept || null;
}

async function sha256Hex(bytes) {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

const VERIFY = {
  "P-256": { key: { name: "ECDSA", namedCurve: "P-256" }, params: { name: "ECDSA", hash: "SHA-256" } },
  RSA: { key: { name: "RSA-PSS", hash: "SHA-256" }, params: { name: "RSA-PSS", saltLength: 32 } },
};

/**
 * Check `lot` before sealing to it: its key statement is signed by an owner of the tender, and
 * its fingerprint is its key's. Resolves to the signer {name, organisation}; rejects with a
 * LotKeyError (lot_key_unsigned, lot_key_malformed, lot_key_mismatch, signature_invalid,
 * lot_key_signer).
 */
export async function check(lot) {
  const signed = lot.key_signature;
  if (!signed) throw new LotKeyError("lot_key_unsigned", "the lot's opening key is not signed by its tender's chair");
  const fields = statement(lot);
  let point;
  try {
    const der = fromBase64(lot.opening_key);
    const key = await crypto.subtle.importKey("spki", der, { name: "ECDH", namedCurve: "P-256" }, true, []);
    point = new Uint8Array(await crypto.subtle.exportKey("raw", key));
    // one encoding only: the SubjectPublicKeyInfo of the uncompressed point, as published
    if (!equal(new Uint8Array(await crypto.subtle.exportKey("spki", key)), der)) throw new Error("encoding");
  } catch {
    throw new LotKeyError("lot_key_malformed", "the lot's opening key is unreadable");
  }
  if ((await sha256Hex(point)) !== lot.key_fingerprint) {
    throw new LotKeyError("lot_key_mismatch", "the lot's key fingerprint is not its opening key's");
  }
  let certificate;
  try {
    certificate = readCertificate(fromBase64(signed.certificate));
  } catch {
    throw new LotKeyError("lot_key_malformed", "the signer's certificate is unreadable");
  }
  const alg = VERIFY[certificate.kind];
  if (!alg) throw new LotKeyError("lot_key_malformed", "the signer's key is of an unknown kind");
  const publicKey = await crypto.subtle.importKey("spki", certificate.spki, alg.key, false, ["verify"]);
  const message = actionMessage(LOT_KEY_ACTION, fields);
  if (!(await crypto.subtle.verify(alg.params, publicKey, fromBase64(signed.signature), message))) {
    throw new LotKeyError("signature_invalid", "the signature over the lot's key is not by the certificate served with it");
  }
  const name = certificate.subject.commonName || "";
  const organisation = certificate.subject.organisation || null;
  const owner = lot.owner || {};
  const keys = [`cert:${await sha256Hex(certificate.der)}`];
  const id = certificate.subject.organisationId || "";
  const prefix = USCC_PREFIXES.find((p) => id.startsWith(p));
  if (prefix) keys.push(`uscc:${id.slice(prefix.length).toUpperCase()}`);
  const assigned = keys.some((key) => (owner.chairs || []).includes(key));
  const same = organisationName(owner.organisation) !== null && organisationName(owner.organisation) === organisationName(organisation);
  if (!assigned && !same) {
    throw new LotKeyError("lot_key_signer", `${name} (${organisation || ""}) is not an owner of this tender`, { name, organisation });
  }
  return { name, organisation, signedAt: signed.signed_at || null };
}
