// Signed actions (docs/opening.md "Signed actions"): what the holder's certificate key signs
// for a consequential step, and the body that carries the signature to the server.
//
//   message = "bidroom action v1\n" + canonical({"action": ..., "room" or "lot": ..., ...fields})
//   body    = {...fields (without room / lot, which are in the URL), certificate, chain, signature}
//
// The server checks it with ca.login.verify_signed at its own time; the key never leaves
// WebCrypto (keystore.js).

import { canonical, concat, toBase64, utf8 } from "./bytes.js";
import * as keystore from "./keystore.js";

export const ACTION_PREFIX = "bidroom action v1\n";
const IN_URL = new Set(["room", "lot"]);

/** The exact bytes signed for `action` with `fields` (as the server rebuilds them). */
export function actionMessage(action, fields) {
  return concat(utf8(ACTION_PREFIX), canonical({ ...fields, action }));
}

/** Base64 signature of `action` over `fields` by the record's key (keystore.js record). */
export async function signAction(keyRecord, action, fields) {
  return toBase64(await keystore.sign(keyRecord, actionMessage(action, fields)));
}

/**
 * The request body for a signed action: the fields the URL does not already carry, then the
 * certificate, its chain and the signature (all base64 DER / bytes).
 */
export async function signedBody(keyRecord, action, fields, extra = {}) {
  const signature = await signAction(keyRecord, action, fields);
  const body = Object.fromEntries(Object.entries(fields).filter(([k]) => !IN_URL.has(k)));
  return {
    ...body,
    ...extra,
    certificate: toBase64(keyRecord.certificate),
    chain: (keyRecord.chain || []).map((der) => toBase64(der)),
    signature,
  };
}
