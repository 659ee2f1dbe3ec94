// A custodian's share file (ca/shares.py, format version 1), opened in the browser with the
// custodian's certificate key, and the commitment the platform checks it against.
//
//   openShareFile(json, keyRecord) -> {index, mnemonic, lot_id, key_fingerprint, custodian, k, n}
//   shareCommitment(share)         -> hex SHA-256, as ca.shares.commitment_digest
//   sealShare(mnemonic, roomPublicKey, room, commitment) -> the share sealed to the room
//   shareBody(keyRecord, room, share, roomPublicKey) -> the signed POST /api/openings/{room}/share
//     body: the share sealed to the room (ca.handoff.seal_share), never in clear
//
// Associated data: the header fields "format" .. "scheme" as JSON with sorted keys, no spaces,
// non-ASCII kept (bytes.js canonical = json.dumps(sort_keys, separators, ensure_ascii=False)).
// P-256: HPKE base mode, info = "bidroom share v1" + lot id. RSA: AES-256-GCM under a key wrapped
// with RSA-OAEP-SHA256.

import { asBytes, canonical, concat, fromBase64, fromHex, fromUtf8, toBase64, toHex, u32, utf8 } from "./bytes.js";
import { signedBody } from "./actions.js";
import { ownSpki } from "./handoff.js";
import * as hpke from "./hpke.js";

export const FILE_FORMAT = "bidroom-key-share";
export const FILE_VERSION = 1;
export const SCHEME_HPKE = "hpke-p256-sha256-aes256gcm";
export const SCHEME_RSA = "rsa-oaep-sha256-aes256gcm";
const HEADER_FIELDS = [
  "format", "version", "lot_id", "key_fingerprint", "custodian", "index", "k", "n", "recipient", "scheme",
];
const COMMITMENT_TAG = utf8("bidroom share commitment v1");
const subtle = globalThis.crypto.subtle;

/** ShareError: `code` as ca/errors.py ShareError (share_file, share_file_recipient, share_file_open). */
export class ShareError extends Error {
  constructor(message, code, detail = {}) {
    super(message);
    this.name = "ShareError";
    this.code = code;
    this.detail = detail;
  }
}

function readDoc(json) {
  let doc = json;
  if (typeof json === "string" || json instanceof Uint8Array || json instanceof ArrayBuffer) {
    try {
      doc = JSON.parse(typeof json === "string" ? json : fromUtf8(asBytes(json)));
    } catch {
      throw new ShareError("not a bidroom share file (not JSON)", "share_file");
    }
  }
  if (doc === null || typeof doc !== "object" || doc.format !== FILE_FORMAT) {
    throw new ShareError("not a bidroom share file", "share_file");
  }
  if (doc.version !== FILE_VERSION) {
    throw new ShareError(`share file version ${doc.version} is not supported`, "share_file");
  }
  if (doc.scheme !== SCHEME_HPKE && doc.scheme !== SCHEME_RSA) {
    throw new ShareError(`unknown share file scheme ${doc.scheme}`, "share_file");
  }
  return doc;
}

/** The associated data: exactly ca/shares.py _header_bytes. */
export function headerBytes(doc) {
  return canonical(Object.fromEntries(HEADER_FIELDS.map((name) => [name, doc[name]])));
}

async function decrypt(doc, keyRecord, spki) {
  const aad = headerBytes(doc);
  if (doc.scheme === SCHEME_HPKE && keyRecord.kind === "P-256") {
    const info = utf8(`bidroom share v1${doc.lot_id}`);
    return hpke.open(fromBase64(doc.enc), keyRecord.unwrap, spki, info, aad, fromBase64(doc.ciphertext));
  }
  if (doc.scheme === SCHEME_RSA && keyRecord.kind === "RSA") {
    const OAEP = { name: "RSA-OAEP", hash: "SHA-256" };
    const raw = new Uint8Array(await subtle.decrypt(OAEP, keyRecord.unwrap, fromBase64(doc.wrapped_key)));
    const key = await subtle.importKey("raw", raw, { name: "AES-GCM" }, false, ["decrypt"]);
    raw.fill(0);
    const params = { name: "AES-GCM", iv: fromBase64(doc.nonce), additionalData: aad, tagLength: 128 };
    return new Uint8Array(await subtle.decrypt(params, key, fromBase64(doc.ciphertext)));
  }
  throw new Error("scheme and key kind differ");
}

/**
 * Open a share file (its JSON text, bytes, or parsed object) with the custodian's key record
 * ({kind, unwrap, certificate}). Throws ShareError with ca.shares' codes.
 */
export async function openShareFile(json, keyRecord) {
  const doc = readDoc(json);
  const spki = await ownSpki(keyRecord);
  const mine = toHex(new Uint8Array(await subtle.digest("SHA-256", spki)));
  if (doc.recipient !== mine) {
    throw new ShareError(
      `this share file is for another custodian key (of ${doc.custodian})`,
      "share_file_recipient",
      { custodian: doc.custodian, recipient: doc.recipient },
    );
  }
  let plaintext;
  try {
    plaintext = await decrypt(doc, keyRecord, spki);
  } catch {
    throw new ShareError(
      "the share file does not open: it was altered, or not written for this key", "share_file_open",
    );
  }
  return {
    lot_id: String(doc.lot_id),
    key_fingerprint: String(doc.key_fingerprint),
    custodian: String(doc.custodian),
    index: Number(doc.index),
    k: Number(doc.k),
    n: Number(doc.n),
    mnemonic: fromUtf8(plaintext),
  };
}

function lp(bytes) {
  return concat(u32(bytes.length), bytes);
}

/** Hex SHA-256 commitment of an opened share (ca.shares.commitment_digest). */
export async function shareCommitment(share) {
  const encoded = concat(
    COMMITMENT_TAG,
    lp(utf8(share.lot_id)),
    lp(fromHex(share.key_fingerprint)),
    lp(utf8(share.custodian)),
    [share.index, share.k, share.n],
    lp(utf8(share.mnemonic)),
  );
  return toHex(new Uint8Array(await subtle.digest("SHA-256", encoded)));
}

export const SHARE_HANDOFF_INFO = utf8("bidroom share handoff v1");

/**
 * The share sealed to the room's HPKE key (base64 uncompressed point): base64(enc || ct), info
 * "bidroom share handoff v1", aad canonical {"commitment", "room"} — as ca.handoff.seal_share.
 */
export async function sealShare(mnemonic, roomPublicKey, room, commitment) {
  const point = typeof roomPublicKey === "string" ? fromBase64(roomPublicKey) : roomPublicKey;
  const aad = canonical({ commitment, room });
  const { enc, ciphertext } = await hpke.seal(point, SHARE_HANDOFF_INFO, aad, utf8(mnemonic));
  return toBase64(concat(enc, ciphertext));
}

/** The body of POST /api/openings/{room}/share: the share sealed to the room, signed as action
 *  "opening.share" over {room, index, commitment, sealed_share}. */
export async function shareBody(keyRecord, room, share, roomPublicKey) {
  const commitment = await shareCommitment(share);
  const sealed_share = await sealShare(share.mnemonic, roomPublicKey, room, commitment);
  const fields = { room, index: share.index, commitment, sealed_share };
  return signedBody(keyRecord, "opening.share", fields);
}
