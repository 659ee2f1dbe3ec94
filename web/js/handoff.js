// The decryption hand-off (docs/opening.md "The room key and the decryption hand-off"): the
// bidder's browser unwraps its bid's data key with the certificate key and seals it to the
// opening room's key, so that the key travels only as ciphertext the room's key opens.
//
//   unwrapDataKey(headerOrBlob, keyRecord)            -> 32-byte data key (Uint8Array)
//   sealToRoom(dataKey, roomPublicKey, room, sha256)  -> sealed_key (base64 of enc || ct)
//   decryptBody(keyRecord, room, envelope, sealedKey) -> the signed POST body
//
// The unwrap follows ca/envelope.py unwrap (and web/js/envelope.js): HPKE P-256 for EC keys,
// RSA-OAEP-SHA256 of data key || SHA-256(binding) for RSA keys, both bound to
// canonical({"lot", "bidder": sha256(bidder certificate) hex, "prefix": b64(nonce prefix)}).

import {
  asBytes, canonical, certificateSpki, concat, equal, fromBase64, readU32, toBase64, toHex, utf8,
} from "./bytes.js";
import { EnvelopeError, HPKE_ALG, KEY_INFO, RSA_ALG, keyId, readHeader } from "./envelope.js";
import * as hpke from "./hpke.js";
import { signedBody } from "./actions.js";

export const HANDOFF_INFO = utf8("bidroom handoff v1");
const DATA_KEY = 32;
const HEAD = 14; // magic (8), version (2), preamble length (4)
const subtle = globalThis.crypto.subtle;
const OAEP = { name: "RSA-OAEP", hash: "SHA-256" };
const ECDH = { name: "ECDH", namedCurve: "P-256" };

async function sha256(bytes) {
  return new Uint8Array(await subtle.digest("SHA-256", asBytes(bytes)));
}

/** The certificate's SubjectPublicKeyInfo as WebCrypto (and Python) re-encode it. */
export async function ownSpki(keyRecord) {
  const spki = certificateSpki(asBytes(keyRecord.certificate));
  const alg = keyRecord.kind === "P-256" ? ECDH : OAEP;
  const key = await subtle.importKey("spki", spki, alg, true, []);
  return new Uint8Array(await subtle.exportKey("spki", key));
}

async function binding(header) {
  const bidder = toHex(await sha256(header.bidderCert));
  return canonical({ lot: header.lot, bidder, prefix: toBase64(header.prefix) });
}

function wrongRecipient(message = "the data key does not open with this key") {
  return new EnvelopeError(message, "envelope_wrong_recipient");
}

/**
 * The data key of an envelope (its parsed header, or the envelope Blob), unwrapped from the
 * `bidder` recipient with the record's non-extractable key ({kind, unwrap, certificate}).
 * Throws EnvelopeError "envelope_wrong_recipient" when this certificate is not that recipient.
 */
export async function unwrapDataKey(headerOrBlob, keyRecord) {
  const header = headerOrBlob instanceof Blob ? await readHeader(headerOrBlob) : headerOrBlob;
  const spki = await ownSpki(keyRecord);
  const entry = header.recipients.find((e) => e.to === "bidder");
  if (!entry || entry.key !== (await keyId(spki))) {
    throw wrongRecipient("this bid was sealed for another certificate");
  }
  const bound = await binding(header);
  let opened = null;
  try {
    if (entry.alg === HPKE_ALG && keyRecord.kind === "P-256") {
      opened = await hpke.open(
        fromBase64(entry.enc), keyRecord.unwrap, spki, KEY_INFO, bound, fromBase64(entry.wrapped),
      );
    } else if (entry.alg === RSA_ALG && keyRecord.kind === "RSA") {
      const plain = new Uint8Array(await subtle.decrypt(OAEP, keyRecord.unwrap, fromBase64(entry.wrapped)));
      if (plain.length === 2 * DATA_KEY && equal(plain.subarray(DATA_KEY), await sha256(bound))) {
        opened = plain.slice(0, DATA_KEY);
      }
      plain.fill(0);
    }
  } catch {
    throw wrongRecipient();
  }
  if (opened === null || opened.length !== DATA_KEY) throw wrongRecipient();
  return opened;
}

/** The associated data of a hand-off: which room, which envelope (hex SHA-256). */
export function handoffAad(room, envelopeSha256) {
  return canonical({ room, envelope: envelopeSha256 });
}

/**
 * Seal the data key to the room's HPKE key (base64 uncompressed point, or its bytes):
 * base64(enc || ciphertext), info "bidroom handoff v1", aad {"room", "envelope"}.
 */
export async function sealToRoom(dataKey, roomPublicKey, room, envelopeSha256) {
  const point = typeof roomPublicKey === "string" ? fromBase64(roomPublicKey) : roomPublicKey;
  const aad = handoffAad(room, envelopeSha256);
  const { enc, ciphertext } = await hpke.seal(point, HANDOFF_INFO, aad, dataKey);
  return toBase64(concat(enc, ciphertext));
}

/** The body of POST /api/openings/{room}/decrypt, signed as action "opening.decrypt". */
export function decryptBody(keyRecord, room, envelopeSha256, sealedKey) {
  const fields = { room, envelope: envelopeSha256, sealed_key: sealedKey };
  return signedBody(keyRecord, "opening.decrypt", fields);
}

/**
 * The envelope's header from a fetch Response, reading only as many bytes as the header needs
 * (a bid may be hundreds of MiB; its data key is all the page wants), then cancelling the rest.
 */
export async function headerFromResponse(response) {
  const reader = response.body.getReader();
  const parts = [];
  let have = 0;
  let need = HEAD;
  try {
    while (have < need) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      have += value.length;
      if (need === HEAD && have >= HEAD) need = HEAD + readU32(concat(...parts).subarray(10, HEAD));
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  return readHeader(new Blob(parts));
}
