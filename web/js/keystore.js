// The holder's certificate key in this browser: imported into WebCrypto as NON-EXTRACTABLE keys
// and kept in IndexedDB with its certificate chain.
//
// CryptoKey objects are structured-cloneable, so IndexedDB stores the keys themselves; a key made
// non-extractable can sign (and, later, open bids addressed to it) but no script, this page's
// included, can read it back out. The key file's bytes are dropped right after the import.
//
// One PKCS#8 key becomes two CryptoKeys, because WebCrypto gives each key one algorithm:
//   P-256: ECDSA (sign, login and commands) and ECDH (deriveBits, HPKE bid opening);
//   RSA:   RSA-PSS SHA-256 (sign) and RSA-OAEP SHA-256 (decrypt, key unwrapping).
// The record's {kind, sign, unwrap} is what web/js/envelope.js expects of a private key.

import { KeyFileError, toHex } from "./pkcs.js";

const subtle = globalThis.crypto.subtle;
const DB_NAME = "bidroom-keys";
const DB_VERSION = 1;
const STORE = "identities";

const ALGORITHMS = {
  "P-256": {
    sign: { name: "ECDSA", namedCurve: "P-256" },
    unwrap: { name: "ECDH", namedCurve: "P-256" },
    unwrapUsages: ["deriveBits"],
    params: { name: "ECDSA", hash: "SHA-256" },
  },
  RSA: {
    sign: { name: "RSA-PSS", hash: "SHA-256" },
    unwrap: { name: "RSA-OAEP", hash: "SHA-256" },
    unwrapUsages: ["decrypt"],
    params: { name: "RSA-PSS", saltLength: 32 },
  },
};

/** Import a PKCS#8 key of `kind` ("P-256" | "RSA") as {kind, sign, unwrap}, all non-extractable. */
export async function importPrivateKey(pkcs8, kind) {
  const alg = ALGORITHMS[kind];
  if (!alg) throw new KeyFileError("unsupported_key", kind);
  try {
    return {
      kind,
      sign: await subtle.importKey("pkcs8", pkcs8, alg.sign, false, ["sign"]),
      unwrap: await subtle.importKey("pkcs8", pkcs8, alg.unwrap, false, alg.unwrapUsages),
    };
  } catch (error) {
    throw new KeyFileError("key_unreadable", error.message);
  }
}

/** Sign `bytes` with the record's key as the server verifies it (ECDSA raw r||s, or PSS salt 32). */
export async function sign(record, bytes) {
  return new Uint8Array(await subtle.sign(ALGORITHMS[record.kind].params, record.sign, bytes));
}

/** Whether the key signs what the certificate's public key (its SPKI) verifies. */
export async function keyMatches(keys, certificate) {
  if (certificate.kind !== keys.kind) return false;
  const alg = ALGORITHMS[keys.kind];
  const publicKey = await subtle.importKey("spki", certificate.spki, alg.sign, false, ["verify"]);
  const probe = crypto.getRandomValues(new Uint8Array(32));
  const signature = await subtle.sign(alg.params, keys.sign, probe);
  return subtle.verify(alg.params, publicKey, signature, probe);
}

/** SHA-256 of a certificate's DER, hex: the record's id (and the server's cert: fingerprint). */
export async function fingerprint(der) {
  return toHex(new Uint8Array(await subtle.digest("SHA-256", der)));
}

// IndexedDB ----------------------------------------------------------------------------------

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE, { keyPath: "id" });
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error("the key store is open in another tab"));
  });
}

async function run(mode, action) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = action(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error || new Error("key store transaction aborted"));
    });
  } finally {
    db.close();
  }
}

/**
 * Store an identity: {id, kind, sign, unwrap, certificate (DER), chain ([DER]), name,
 * organisation, organisationId, notAfter, storedAt}. The same certificate replaces its record.
 */
export function save(record) {
  return run("readwrite", (store) => store.put(record));
}

/** Every stored identity, the most recently stored first. */
export async function list() {
  const all = await run("readonly", (store) => store.getAll());
  return all.sort((a, b) => String(b.storedAt).localeCompare(String(a.storedAt)));
}

export function load(id) {
  return run("readonly", (store) => store.get(id));
}

/** Forget a stored identity: its keys are deleted from this browser. */
export function forget(id) {
  return run("readwrite", (store) => store.delete(id));
}
