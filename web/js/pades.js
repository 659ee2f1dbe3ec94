// The expert's half of a remote PAdES signature on the evaluation report (ca/pades.py prepare /
// finish). The server prepares the report's new revision and hands over `to_sign`, the DER of the
// CMS signed attributes (they carry the revision's digest); the key in this browser signs those
// bytes as it signs everything else (keystore.js: ECDSA P-256 raw r||s, or RSA-PSS with a 32-byte
// salt, both over SHA-256); the server checks the signature, time-stamps it and embeds it.

import { fromBase64, toBase64 } from "./bytes.js";
import { sign } from "./keystore.js";

/** The record's signature over the prepared bytes (`toSignBase64`), as base64. */
export async function signPrepared(keyRecord, toSignBase64) {
  return toBase64(await sign(keyRecord, fromBase64(toSignBase64)));
}
