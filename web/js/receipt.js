// Checking an audit receipt in the browser, offline, as bidroom/receipts.py's check does
// (docs/audit.md, Receipts). Each failed check throws a CheckError with Python's code:
//   audit_receipt            not a version-1 or version-2 bidroom receipt
//   audit_note_unknown_key   the receipt is for another log (or no signature of the key)
//   audit_key_malformed, audit_note_malformed, audit_checkpoint_malformed, audit_checkpoint_origin
//   audit_note_signature     the checkpoint's Ed25519 signature does not verify
//   audit_entry_altered      the entry (with its salt) is not the one whose leaf hash the receipt
//                            carries
//   audit_inclusion_invalid  the inclusion proof does not lead to the checkpoint's root
//   audit_timestamp          a TSA root was given but the receipt has no timestamp
//   tsa_*                    the RFC 3161 token (web/js/tsp.js)
// Nothing here calls the server: the page only prefills the verifier key from
// GET /api/audit/checkpoint when it is served by the platform, and works without it.

import { canonical, concat, equal, fromBase64, toHex, utf8 } from "./bytes.js";
import { CheckError, readPemCertificates, verifyToken } from "./tsp.js";
import * as i18n from "./i18n.js";
import { t } from "./i18n.js";
import { byId, fill, h } from "./dom.js";

export { CheckError };

const subtle = globalThis.crypto.subtle;
const FORMAT = "bidroom-receipt";
const VERSIONS = [1, 2]; // 2: made since salts (its entry version 1 or 2); 1: made before
const SIGNATURE_PREFIX = "\u2014 "; // em dash, space
const MAX_SIGNATURES = 100;

async function sha256(...parts) {
  return new Uint8Array(await subtle.digest("SHA-256", concat(...parts)));
}

function b64(text, code, what) {
  try {
    return fromBase64(text);
  } catch {
    throw new CheckError(code, `${what} is not standard base64`);
  }
}

// signed notes (ca/checkpoint.py) -----------------------------------------------------------

const validText = (text) => [...text].every((c) => c === "\n" || c >= " ");
const validName = (name) => Boolean(name) && !name.includes("+") && !/\s/u.test(name);

async function keyId(name, raw) {
  return (await sha256(utf8(name), [0x0a, 0x01], raw)).subarray(0, 4);
}

/** `<name>+<8 hex>+<base64(0x01 || key)>` -> {name, id, raw}; audit_key_malformed. */
export async function parseVerifierKey(text) {
  const bad = (why) => new CheckError("audit_key_malformed", `cannot read the verifier key: ${why}`);
  // Python's partition: the name ends at the first "+", the key ID at the next (base64 has "+").
  const first = text.indexOf("+");
  const second = first < 0 ? -1 : text.indexOf("+", first + 1);
  if (second < 0) throw bad("it is not <name>+<8 hex digits>+<base64 key>");
  const [name, hexId, encoded] = [text.slice(0, first), text.slice(first + 1, second), text.slice(second + 1)];
  const raw = b64(encoded, "audit_key_malformed", "the verifier key");
  if (!validName(name) || !/^[0-9a-fA-F]{8}$/.test(hexId) || raw.length !== 33) {
    throw bad("it is not <name>+<8 hex digits>+<base64 Ed25519 key>");
  }
  if (raw[0] !== 0x01) throw bad("its signature type is not Ed25519 (0x01)");
  const id = await keyId(name, raw.subarray(1));
  if (toHex(id) !== hexId.toLowerCase()) throw bad("its key ID is not the hash of its name and key");
  return { name, id, raw: raw.subarray(1) };
}

function splitNote(note) {
  const bad = (why) => new CheckError("audit_note_malformed", `not a signed note: ${why}`);
  if (!note.isWellFormed() || !validText(note)) throw bad("a note holds no control character but newlines");
  const split = note.lastIndexOf("\n\n");
  const block = note.slice(split + 2);
  if (split < 0 || !block.endsWith("\n")) throw bad("a note is a text, a blank line and signature lines");
  const lines = block.slice(0, -1).split("\n");
  if (lines.length > MAX_SIGNATURES) throw bad(`a note carries at most ${MAX_SIGNATURES} signatures`);
  const signatures = lines.map((line) => {
    const rest = line.startsWith(SIGNATURE_PREFIX) ? line.slice(SIGNATURE_PREFIX.length) : line;
    const space = rest.indexOf(" ");
    const name = space < 0 ? rest : rest.slice(0, space);
    const raw = b64(space < 0 ? "" : rest.slice(space + 1), "audit_note_malformed", "a signature");
    if (!line.startsWith(SIGNATURE_PREFIX) || !validName(name) || raw.length < 5) {
      throw bad(`'${line}' is not '— <key name> <base64 signature>'`);
    }
    return { name, id: raw.subarray(0, 4), signature: raw.subarray(4) };
  });
  return { text: note.slice(0, split + 1), signatures };
}

function parseCheckpoint(text) {
  const bad = (why) => new CheckError("audit_checkpoint_malformed", `not a checkpoint: ${why}`);
  const lines = text.split("\n");
  if (lines.length < 4 || lines.at(-1) !== "" || !lines.slice(0, -1).every(Boolean)) {
    throw bad("it is not three or more non-empty lines, each ending");
  }
  const [origin, size, encoded] = lines;
  if (!/^(0|[1-9][0-9]*)$/.test(size) || BigInt(size) >= 1n << 64n) throw bad(`its size ${size} is not a decimal`);
  if (!Number.isSafeInteger(Number(size))) throw bad(`its size ${size} is too large for this page`);
  const root = b64(encoded, "audit_checkpoint_malformed", "the root hash");
  if (root.length !== 32) throw bad("its root is not the base64 of a 32-byte hash");
  return { origin, size: Number(size), root };
}

/** The checkpoint in `note` once the verifier's Ed25519 signature on it verifies. */
export async function openCheckpoint(note, verifier) {
  const { text, signatures } = splitNote(note);
  let key;
  let verified = 0;
  for (const s of signatures) {
    if (s.name !== verifier.name || !equal(s.id, verifier.id)) continue;
    key ??= await subtle.importKey("raw", verifier.raw, { name: "Ed25519" }, false, ["verify"]);
    const ok = s.signature.length === 64
      && (await subtle.verify({ name: "Ed25519" }, key, s.signature, utf8(text)));
    if (!ok) {
      throw new CheckError(
        "audit_note_signature",
        `the signature of ${verifier.name} on the note does not verify: the note was altered or the signature forged`,
      );
    }
    verified += 1;
  }
  if (!verified) {
    throw new CheckError("audit_note_unknown_key", `the note is not signed by ${verifier.name} (key ID ${toHex(verifier.id)})`);
  }
  const checkpoint = parseCheckpoint(text);
  if (checkpoint.origin !== verifier.name) {
    throw new CheckError("audit_checkpoint_origin", `the checkpoint is of log ${checkpoint.origin}, not ${verifier.name}`);
  }
  return checkpoint;
}

// Merkle proofs (ca/merkle.py, RFC 9162 §2.1.3.2) -------------------------------------------

export async function leafHash(entry) {
  return sha256([0x00], entry);
}

async function nodeHash(left, right) {
  return sha256([0x01], left, right);
}

/** Nothing if `proof` leads from `leaf` at `index` to `root` of the tree of `size`; else throw. */
export async function verifyInclusion(leaf, index, size, proof, root) {
  if (!(Number.isSafeInteger(index) && index >= 0 && index < size)) {
    throw new CheckError("audit_index_out_of_range", `no entry ${index} in a tree of ${size}`);
  }
  if ([leaf, root, ...proof].some((x) => x.length !== 32)) {
    throw new CheckError("audit_hash_malformed", "a Merkle hash is 32 bytes (SHA-256)");
  }
  // fn, sn < 2^53: halve with Math.floor, test the low bit with % 2 (no 32-bit bit operators).
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) {
      sn = -1;
      break;
    }
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      while (fn !== 0 && fn % 2 === 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0 || !equal(r, root)) {
    throw new CheckError(
      "audit_inclusion_invalid",
      `the inclusion proof of entry ${index} does not lead to the root of the tree of ${size}`,
    );
  }
}

// the receipt -------------------------------------------------------------------------------

const TIME = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$/;
const SALT = /^[0-9a-f]{64}$/; // 32 random bytes, lowercase hex
const HEX_DIGEST = SALT; // an object's SHA-256: 64 lowercase hex digits, like a salt
const V1_FIELDS = ["action", "actor", "index", "objects", "room", "seq", "time", "v"];
const V2_FIELDS = ["action", "actor", "index", "objects", "room", "salt", "seq", "time", "v"];

/** A whole number from 0 to 2^53 - 1 (the text "1.0" parses to 1 here, but is not canonical). */
const isCount = (value) => Number.isSafeInteger(value) && value >= 0;
const isText = (value) => typeof value === "string" && value !== "";
const isPlain = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

/** A real UTC time in the one format (a 30 February or a year 0 is not one), as Python's
 * strptime("%Y-%m-%dT%H:%M:%S.%fZ") with the format's six digits. */
function isTime(text) {
  if (typeof text !== "string" || !TIME.test(text) || text.startsWith("0000")) return false;
  const ms = Date.parse(`${text.slice(0, 23)}Z`);
  return !Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 19) === text.slice(0, 19);
}

/** The entry its canonical encoding holds (audit.decode, docs/audit.md "Entries"): version 2
 * with its salt, or version 1 (recorded before salts), every field of its type; null if it is
 * not one. JSON's 1.0 parses to 1 here: the canonical bytes (1.0 is not canonical) refuse it. */
export function decodeEntry(text) {
  try {
    const fields = JSON.parse(text);
    if (!isPlain(fields) || !equal(canonical(fields), utf8(text))) return null;
    if (fields.v !== 1 && fields.v !== 2) return null;
    const keys = Object.keys(fields).sort().join();
    if (keys !== (fields.v === 2 ? V2_FIELDS : V1_FIELDS).join()) return null;
    if (!isCount(fields.index) || !isTime(fields.time)) return null;
    if (!isText(fields.actor) || !isText(fields.action)) return null;
    if (fields.room !== null && typeof fields.room !== "string") return null;
    if (fields.seq !== null && !isCount(fields.seq)) return null;
    if (!isPlain(fields.objects)) return null;
    if (!Object.values(fields.objects).every((v) => typeof v === "string" && HEX_DIGEST.test(v))) {
      return null;
    }
    if (fields.v === 2 && !(typeof fields.salt === "string" && SALT.test(fields.salt))) return null;
    return fields;
  } catch {
    return null;
  }
}

function wellFormed(r) {
  return (
    r && typeof r === "object" && !Array.isArray(r) && r.format === FORMAT && VERSIONS.includes(r.version)
    && Number.isSafeInteger(r.index) && typeof r.entry === "string" && typeof r.leaf === "string"
    && typeof r.checkpoint === "string" && typeof r.verifier_key === "string"
    && Array.isArray(r.inclusion) && r.inclusion.every((x) => typeof x === "string")
    && (r.timestamp === undefined || r.timestamp === null || typeof r.timestamp === "string")
  );
}

/**
 * Verify a receipt (its parsed JSON) against the log's verifier key and, when `rootsPem` is
 * given, the TSA's root(s). Returns {entry, index, size, timestamp: {genTime, tsa, trusted, ...}
 * | null}; throws CheckError naming the first check that fails, in Python's order.
 */
export async function checkReceipt(receipt, verifierKey, rootsPem = null) {
  if (!wellFormed(receipt)) throw new CheckError("audit_receipt", "not a version-1 or version-2 bidroom receipt");
  if (receipt.verifier_key !== verifierKey) {
    throw new CheckError("audit_note_unknown_key", "the receipt is for another log");
  }
  const verifier = await parseVerifierKey(verifierKey);
  const checkpoint = await openCheckpoint(receipt.checkpoint, verifier);
  const encoding = utf8(receipt.entry);
  const entry = decodeEntry(receipt.entry);
  const leaf = await leafHash(encoding);
  if (!entry || entry.index !== receipt.index || toHex(leaf) !== receipt.leaf) {
    throw new CheckError("audit_entry_altered", "the receipt's entry was altered", { index: receipt.index });
  }
  const path = receipt.inclusion.map((x) => b64(x, "audit_receipt", "an inclusion hash"));
  await verifyInclusion(leaf, receipt.index, checkpoint.size, path, checkpoint.root);
  const roots = rootsPem && rootsPem.trim() ? readPemCertificates(rootsPem) : null;
  let timestamp = null;
  if (receipt.timestamp) {
    const token = b64(receipt.timestamp, "tsa_malformed", "the timestamp");
    timestamp = await verifyToken(token, utf8(receipt.checkpoint), roots);
  } else if (roots) {
    throw new CheckError("audit_timestamp", "the receipt has no timestamp");
  }
  return { entry, index: receipt.index, size: checkpoint.size, timestamp };
}

// the page ----------------------------------------------------------------------------------

const page = {
  receipt: null, // parsed JSON, or {error} when the file is not JSON
  fileName: "",
  result: null, // {ok: true, ...} or {ok: false, code, message, detail}
  keyFromServer: false,
  busy: false,
};

function boot() {
  byId("lang").addEventListener("click", () => {
    i18n.setLang(i18n.lang() === "zh-CN" ? "en" : "zh-CN");
    render();
  });
  byId("receipt-file").addEventListener("change", onReceiptFile);
  byId("root-file").addEventListener("change", onRootFile);
  byId("receipt-form").addEventListener("submit", onCheck);
  byId("verifier-key").addEventListener("input", () => {
    page.keyFromServer = false;
    renderKeySource();
  });
  render();
  prefillKey();
}

/** The platform's published key, when this page is served by it (a convenience only). */
async function prefillKey() {
  if (!/^https?:$/.test(location.protocol)) return;
  try {
    const response = await fetch("/api/audit/checkpoint", { headers: { accept: "application/json" } });
    if (!response.ok) return;
    const body = await response.json();
    const field = byId("verifier-key");
    if (typeof body.verifier_key === "string" && !field.value.trim()) {
      field.value = body.verifier_key;
      page.keyFromServer = true;
      renderKeySource();
    }
  } catch {
    // offline or not the platform: the holder pastes the key
  }
}

async function readText(file) {
  return new TextDecoder("utf-8").decode(await file.arrayBuffer());
}

async function onReceiptFile(event) {
  const file = event.target.files?.[0];
  page.result = null;
  page.receipt = null;
  page.fileName = file?.name ?? "";
  if (file) {
    try {
      page.receipt = JSON.parse(await readText(file));
    } catch {
      page.receipt = { error: true };
    }
  }
  render();
}

async function onRootFile(event) {
  const file = event.target.files?.[0];
  if (file) byId("tsa-root").value = await readText(file);
}

async function onCheck(event) {
  event.preventDefault();
  if (page.busy) return;
  page.busy = true;
  page.result = null;
  render();
  try {
    if (!page.receipt) throw new CheckError("receipt_missing", "choose a receipt file");
    const key = byId("verifier-key").value.trim();
    if (!key) throw new CheckError("verifier_key_missing", "give the log's verifier key");
    const proven = await checkReceipt(page.receipt, key, byId("tsa-root").value);
    page.result = { ok: true, ...proven };
  } catch (error) {
    if (!(error instanceof CheckError)) console.warn(error);
    page.result = error instanceof CheckError
      ? { ok: false, code: error.code, message: error.message, detail: error.detail }
      : { ok: false, code: "audit_receipt", message: String(error?.message ?? error), detail: {} };
  } finally {
    page.busy = false;
    render();
  }
}

function render() {
  i18n.translatePage();
  document.title = `${t("receipt.title")} · ${t("app.name")}`;
  const lang = byId("lang");
  lang.textContent = t("lang.switch");
  lang.setAttribute("aria-label", t("lang.switch.label"));
  byId("receipt-check").disabled = page.busy;
  byId("receipt-name").textContent = page.fileName ? t("receipt.file.chosen", { name: page.fileName }) : "";
  renderKeySource();
  renderResult();
}

function renderKeySource() {
  byId("key-source").textContent = page.keyFromServer ? t("receipt.key.fromServer") : t("receipt.key.paste");
}

/** A UTC instant in Beijing time, to the second, with the zone named. */
function beijing(date) {
  const d = new Date(date);
  if (Number.isNaN(d.getTime())) return "";
  const text = new Intl.DateTimeFormat(i18n.lang(), {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    second: "2-digit", hourCycle: "h23", timeZone: "Asia/Shanghai",
  }).format(d);
  return text + t("receipt.zone");
}

function row(label, value, id) {
  return [h("dt", {}, label), h("dd", id ? { id } : {}, value)];
}

function renderResult() {
  const box = byId("verdict");
  const r = page.result;
  box.hidden = !r;
  if (!r) return fill(box);
  box.className = `panel verdict ${r.ok ? "verdict-ok" : "verdict-bad"}`;
  if (!r.ok) {
    const known = i18n.errorText({ code: r.code, message: "" });
    const extra = r.detail?.chain === "longer" ? h("p", { class: "hint warn" }, t("receipt.chain.longer")) : null;
    return fill(
      box,
      h("h2", { id: "verdict-title", class: "danger" }, t("receipt.failed")),
      h("p", { id: "verdict-reason" }, known && known !== r.code ? known : r.message),
      extra,
      h("p", { class: "muted small" }, t("receipt.code"), " ", h("code", { id: "verdict-code" }, r.code)),
      h("details", {}, h("summary", {}, t("receipt.details")), h("p", { class: "small" }, r.message)),
    );
  }
  const e = r.entry;
  const ts = r.timestamp;
  const stamp = ts
    ? t(ts.trusted ? "receipt.ts.trusted" : "receipt.ts.untrusted", {
      time: beijing(ts.genTime),
      tsa: ts.tsa,
      root: ts.root,
    })
    : t("receipt.ts.none");
  const timeText = beijing(e.time);
  fill(
    box,
    h("h2", { id: "verdict-title", class: "ok" }, t("receipt.verified")),
    h("p", { id: "verdict-summary" }, t("receipt.summary", { index: r.index, action: e.action, size: r.size })),
    h("dl", { class: "me receipt-facts" },
      row(t("receipt.f.index"), String(r.index), "fact-index"),
      row(t("receipt.f.action"), e.action, "fact-action"),
      row(t("receipt.f.time"), timeText, "fact-time"),
      row(t("receipt.f.room"), e.room ?? "", "fact-room"),
      row(t("receipt.f.actor"), e.actor ?? "", "fact-actor"),
      row(t("receipt.f.size"), String(r.size), "fact-size"),
      row(t("receipt.f.timestamp"), stamp, "fact-timestamp")),
    ts && !ts.trusted ? h("p", { class: "hint warn", id: "verdict-warn" }, t("receipt.ts.noRoot")) : null,
  );
}

if (typeof document !== "undefined" && document.getElementById("receipt-form")) boot();
