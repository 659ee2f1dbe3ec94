// A bidder's page for one lot (web/bid.html?lot=<id>; docs/opening.md, Bids).
//
// 1. The lot (GET /api/tenders, the published lot with this id) and its deadline, counted down
//    in Beijing time against the server's clock (servertime.js), not the computer's.
// 2. Sign-in is the certificate login (login.html): its session (sessionStorage SESSION_KEY)
//    carries the token; the key that seals and signs is the non-extractable one in IndexedDB
//    (keystore.js) whose id is the session holder's certificate fingerprint.
// 3. Register (POST /api/lots/{lot}/registrations), then fill the bid form (the lot's
//    sheet_fields) and attach documents: ZIP (zip.js, bid.json first) -> envelope (envelope.js,
//    to the bidder's certificate and the lot's opening key, signed with the certificate key) ->
//    SHA-256 -> tus upload (tus.js) with progress. The envelope waits in IndexedDB until the
//    server accepts it, so a cut connection or a reload resumes the same upload.
//    An envelope sealed elsewhere (the CLI) is uploaded as a file, after a look at its header.
// 4. The receipt (received_at, envelope SHA-256, the audit receipt for receipt.html), my versions
//    (GET /api/lots/{lot}/bids/mine), and withdrawal with a signed action (bid.withdraw).

import { loginSession } from "./session.js";
import { canonical, fromBase64, Sha256, toBase64, toHex } from "./bytes.js";
import { byId, fill, h } from "./dom.js";
import * as envelope from "./envelope.js";
import * as i18n from "./i18n.js";
import "./i18n-bids.js";
import * as keystore from "./keystore.js";
import * as lotkey from "./lotkey.js";
import * as servertime from "./servertime.js";
import { TusError, Upload } from "./tus.js";
import { zip } from "./zip.js";

const { t } = i18n;
const ACTION_PREFIX = "bidroom action v1\n";
const HASH_PIECE = 1 << 20;
const MONEY = /^(0|[1-9][0-9]{0,14})(\.[0-9]{1,2})?$/; // bidroom/money.py's one format
const PERCENT = /^(0|[1-9]\d{0,2})(\.\d{1,4})?$/;
const INTEGER = /^(0|[1-9]\d{0,5})$/; // and at most 100000 (bidroom/bidform.py)
const TEXT_MAX = 200;
const DB = { name: "bidroom-bids", version: 1, store: "pending" };
const CLIENT = { name: "bidroom web", version: "1" };

const FIELDS = {
  price: { kind: "money" },
  duration_days: { kind: "integer" },
  quality: { kind: "text" },
  project_manager: { kind: "text" },
  warranty_months: { kind: "integer" },
  discount_rate: { kind: "percent" },
  guarantee: { kind: "guarantee" },
};
const GUARANTEE_KINDS = ["bank", "insurance", "deposit"];

const page = {
  lotId: new URLSearchParams(location.search).get("lot") || "",
  lot: null,
  tender: null,
  session: null,
  record: null, // the keystore identity of the session holder
  registered: false,
  bids: null, // my versions, newest first
  documents: [], // File[]
  pending: null, // {id, lot, subject, sha256, size, blob, source, name, savedAt}
  upload: null, // the running tus Upload
  stage: null, // {step, done, total, text}
  error: null, // {code, message, detail}
  receipt: null, // the latest accepted bid's receipt
  busy: false,
  loadError: null,
};

class PageError extends Error {
  constructor(code, message = code, detail = {}) {
    super(message);
    this.code = code;
    this.detail = detail;
  }
}

// time ------------------------------------------------------------------------------------

const now = servertime.now;

function deadlineMs() {
  return page.lot ? Date.parse(page.lot.deadline) : NaN;
}

function beforeDeadline() {
  return now() < deadlineMs();
}

// the server ------------------------------------------------------------------------------

async function api(path, { method = "GET", body = undefined, auth = true } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth && page.session) headers.Authorization = `Bearer ${page.session.token}`;
  let response;
  const sent = Date.now();
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new PageError("network");
  }
  servertime.learn(response, sent);
  if (!response.ok) {
    let error = {};
    try {
      error = await response.json();
    } catch {
      // not JSON
    }
    throw new PageError(error.code || `http_${response.status}`, error.message || response.statusText, error.detail || {});
  }
  return response.status === 204 ? null : response.json();
}

// start -----------------------------------------------------------------------------------

async function boot() {
  byId("lang").addEventListener("click", () => {
    i18n.setLang(i18n.lang() === "zh-CN" ? "en" : "zh-CN");
    render();
  });
  byId("register-button").addEventListener("click", () => withBusy(register));
  byId("bid-form").addEventListener("submit", onSeal);
  byId("file-form").addEventListener("submit", onFileUpload);
  byId("documents").addEventListener("change", onDocuments);
  byId("pending-resume").addEventListener("click", () => withBusy(() => uploadPending(page.pending)));
  byId("pending-discard").addEventListener("click", () => withBusy(discardPending));
  byId("pause").addEventListener("click", () => page.upload?.abort());
  byId("receipt-download").addEventListener("click", () => download(page.receipt, "receipt"));
  byId("receipt-audit").addEventListener("click", () => download(page.receipt?.audit, "audit-receipt"));
  byId("login-link").href = `/login.html`;
  page.session = loginSession();
  render();
  setInterval(renderClock, 1000);
  servertime.onChange(renderClock);
  servertime.start();
  await loadLot();
  if (page.lot && page.session) await loadMine();
  render();
}

async function loadLot() {
  if (!page.lotId) {
    page.loadError = new PageError("lot_missing");
    return;
  }
  try {
    const tenders = await api("/api/tenders", { auth: Boolean(page.session) });
    for (const tender of tenders.tenders || tenders) {
      const lot = (tender.lots || []).find((l) => String(l.id) === page.lotId);
      if (lot) {
        page.tender = tender;
        page.lot = lot;
      }
    }
    if (!page.lot) page.loadError = new PageError("lot_not_found");
  } catch (error) {
    page.loadError = error;
  }
  if (page.lot) page.keyCheck = await checkLotKey();
}

/** Whether the lot's key statement is signed by an owner of the tender ({signer} or {error}). */
async function checkLotKey() {
  try {
    return { signer: await lotkey.check(page.lot) };
  } catch (error) {
    return { error };
  }
}

async function loadMine() {
  const subject = subjectKey();
  page.registered = localStorage.getItem(`bidroom.registered.${page.lotId}.${subject}`) === "1";
  try {
    page.record = await keystore.load(page.session.holder?.fingerprint || "");
  } catch {
    page.record = null;
  }
  await refreshBids();
  try {
    page.pending = await loadPending(pendingId());
  } catch {
    page.pending = null; // IndexedDB blocked: the envelope lives only while the page is open
  }
}

async function refreshBids() {
  try {
    const answer = await api(`/api/lots/${encodeURIComponent(page.lotId)}/bids/mine`);
    page.bids = answer.bids || answer;
    if (page.bids.length) markRegistered();
    const current = page.bids.find((b) => b.status === "current");
    page.receipt = page.receipt || current?.receipt || null;
  } catch (error) {
    page.bids = [];
    if (error.code === "not_registered") page.registered = false;
    else if (!["http_404"].includes(error.code)) page.error = error;
  }
}

function subjectKey() {
  return page.session?.holder?.fingerprint || page.session?.holder?.subject || "";
}

function markRegistered() {
  page.registered = true;
  try {
    localStorage.setItem(`bidroom.registered.${page.lotId}.${subjectKey()}`, "1");
  } catch {
    // not remembered; the server knows
  }
}

// registering -----------------------------------------------------------------------------

async function register() {
  await api(`/api/lots/${encodeURIComponent(page.lotId)}/registrations`, { method: "POST", body: {} });
  markRegistered();
}

// the bid form ----------------------------------------------------------------------------

function sheetFields() {
  const fields = page.lot?.sheet_fields || ["price"];
  return fields.includes("price") ? fields : ["price", ...fields];
}

function onDocuments(event) {
  const known = new Set(page.documents.map(documentKey));
  for (const file of event.target.files) if (!known.has(documentKey(file))) page.documents.push(file);
  event.target.value = "";
  renderDocuments();
}

function documentKey(file) {
  return `${file.name}:${file.size}:${file.lastModified}`;
}

/** The bid form from the inputs, checked: {form, warnings}; PageError on a missing/bad value. */
function readForm() {
  const form = { format: "bidroom-bid-form", version: 1, lot: page.lot.id };
  const warnings = [];
  for (const name of sheetFields()) {
    const spec = FIELDS[name];
    if (!spec) continue;
    form[name] = spec.kind === "guarantee" ? readGuarantee(warnings) : readValue(name, spec.kind);
  }
  const ceiling = Number(page.lot.ceiling_price);
  if (ceiling && Number(form.price) > ceiling) warnings.push(t("bid.warn.overCeiling", { ceiling: money(page.lot.ceiling_price) }));
  return { form, warnings };
}

function readValue(name, kind) {
  const input = byId(`f-${name}`);
  const value = input.value.trim().replace(/,/g, "");
  const fail = (code) => {
    input.setAttribute("aria-invalid", "true");
    input.focus();
    throw new PageError(code, code, { field: t(`field.${name}`) });
  };
  input.removeAttribute("aria-invalid");
  if (!value) fail("form_missing");
  if (kind === "money") {
    if (!MONEY.test(value)) fail("form_money");
    // a sealed price is out of sight until the opening: 0.00 is caught here or never
    if (name === "price" && !/[1-9]/.test(value)) fail("price_not_positive");
    return value.includes(".") ? value.padEnd(value.indexOf(".") + 3, "0") : `${value}.00`;
  }
  if (kind === "integer") {
    if (!INTEGER.test(value) || Number(value) > 100000) fail("form_integer");
    return Number(value);
  }
  if (kind === "percent") {
    if (!PERCENT.test(value) || Number(value) > 100) fail("form_percent");
    return value;
  }
  return value; // at most TEXT_MAX (200) characters: the input's maxlength
}

function readGuarantee(warnings) {
  const required = page.lot.guarantee?.required;
  const kind = byId("g-kind").value;
  const fields = {};
  for (const part of ["issuer", "number", "amount", "payer"]) fields[part] = byId(`g-${part}`).value.trim();
  const empty = !Object.values(fields).some(Boolean);
  if (empty && !required) return null;
  for (const [part, value] of Object.entries(fields)) {
    if (!value) {
      byId(`g-${part}`).focus();
      throw new PageError("form_missing", "form_missing", { field: t(`guarantee.${part}`) });
    }
  }
  const amount = fields.amount.replace(/,/g, "");
  if (!MONEY.test(amount)) {
    byId("g-amount").focus();
    throw new PageError("form_money", "form_money", { field: t("guarantee.amount") });
  }
  const wanted = Number(page.lot.guarantee?.amount || 0);
  if (wanted && Number(amount) < wanted) warnings.push(t("bid.warn.guarantee", { amount: money(page.lot.guarantee.amount) }));
  return {
    kind: GUARANTEE_KINDS.includes(kind) ? kind : "bank",
    issuer: fields.issuer,
    number: fields.number,
    amount: amount.includes(".") ? amount.padEnd(amount.indexOf(".") + 3, "0") : `${amount}.00`,
    payer: fields.payer,
  };
}

/** Member names for the documents: their own names, made unique, never bid.json. */
function documentEntries() {
  const used = new Set(["bid.json"]);
  return page.documents.map((file) => {
    const clean = file.name.replace(/[\\/\0]/g, "_").replace(/^\.+/, "_") || "document";
    let name = clean;
    for (let i = 2; used.has(name); i++) name = clean.replace(/(\.[^.]*)?$/, (ext) => `(${i})${ext || ""}`);
    used.add(name);
    return { name, data: file };
  });
}

async function onSeal(event) {
  event.preventDefault();
  await withBusy(async () => {
    requireReady();
    const { form, warnings } = readForm();
    byId("form-warnings").textContent = warnings.join(" ");
    if (warnings.length && !confirm(`${warnings.join("\n")}\n\n${t("bid.warn.continue")}`)) return;
    if (!page.record) throw new PageError("key_not_here");
    await lotkey.check(page.lot); // seal only to a key the tender's chair signed
    setStage("zip", 0, 1);
    const plain = await zip([
      { name: "bid.json", data: new TextEncoder().encode(JSON.stringify(form, null, 2)) },
      ...documentEntries(),
    ], { progress: (done, total) => setStage("zip", done, total) });
    checkSize(plain.size);
    setStage("seal", 0, plain.size);
    const sealed = await envelope.seal(plain, {
      lot: page.lot.id,
      certificateDer: page.record.certificate,
      signingKey: page.record.sign,
      openingKey: fromBase64(page.lot.opening_key),
      client: CLIENT,
    }, (done, total) => setStage("seal", done, total));
    const pending = await prepare(sealed, "browser", "");
    await savePending(pending);
    await uploadPending(pending);
  });
}

async function onFileUpload(event) {
  event.preventDefault();
  await withBusy(async () => {
    requireReady();
    const file = byId("envelope-file").files[0];
    if (!file) throw new PageError("file_missing");
    const header = await envelope.readHeader(file);
    if (header.lot !== page.lot.id) throw new PageError("envelope_lot", "", { lot: header.lot });
    const mine = page.session.holder?.fingerprint;
    if (mine && (await keystore.fingerprint(header.bidderCert)) !== mine) throw new PageError("envelope_not_mine");
    checkSize(file.size);
    await uploadPending(await prepare(file, "file", file.name));
    byId("envelope-file").value = "";
  });
}

function requireReady() {
  if (!page.session) throw new PageError("token_missing");
  if (!page.lot) throw new PageError("lot_not_found");
  if (!beforeDeadline()) throw new PageError("deadline_passed");
  if (!page.registered) throw new PageError("not_registered");
}

function checkSize(size) {
  const limit = Number(page.lot.max_bid_bytes || 0);
  if (limit && size > limit) throw new PageError("upload_too_large", "", { limit });
}

/** The pending upload's record: its SHA-256 (computed here, checked against the receipt). */
async function prepare(blob, source, name) {
  const sha = new Sha256();
  for (let at = 0; at < blob.size; at += HASH_PIECE) {
    sha.update(new Uint8Array(await blob.slice(at, at + HASH_PIECE).arrayBuffer()));
    setStage("hash", Math.min(blob.size, at + HASH_PIECE), blob.size);
  }
  return {
    id: pendingId(), lot: page.lotId, subject: subjectKey(), sha256: toHex(sha.digest()),
    size: blob.size, blob, source, name, savedAt: new Date().toISOString(),
  };
}

function pendingId() {
  return `${page.lotId}:${subjectKey()}`;
}

// uploading -------------------------------------------------------------------------------

async function uploadPending(pending) {
  if (!pending) return;
  requireReady();
  page.pending = pending;
  const upload = new Upload(pending.blob, {
    endpoint: `/api/lots/${encodeURIComponent(page.lotId)}/uploads`,
    token: page.session.token,
    fingerprint: `${pending.lot}:${pending.subject}:${pending.sha256}`,
    // the bar shows what the server acknowledged (upload.offset), from 0 until it says more
    onProgress: (acked, total) => setStage("upload", acked, total),
    onState: (state, detail) => setStage(state === "checking" ? "check" : "upload", upload.offset, pending.size, state, detail),
  });
  page.upload = upload;
  render();
  try {
    const status = await upload.start();
    const bid = status.bid || {};
    page.receipt = bid.receipt || null;
    if (bid.envelope_sha256 && bid.envelope_sha256 !== pending.sha256) throw new PageError("receipt_mismatch");
    await dropPending(pending);
    page.stage = { step: "done", done: 1, total: 1 };
    await refreshBids();
    render();
    byId("receipt").focus();
  } catch (error) {
    if (error instanceof TusError && !["aborted", "upload_interrupted", "network"].includes(error.code)) {
      await dropPending(pending); // refused: this envelope will never be accepted
    }
    if (error.code === "aborted") {
      page.stage = { ...page.stage, state: "paused" };
      return;
    }
    throw error;
  } finally {
    page.upload = null;
  }
}

async function dropPending(pending) {
  page.pending = null;
  try {
    await deletePending(pending.id);
  } catch {
    // not stored
  }
}

async function discardPending() {
  if (!page.pending) return;
  const pending = page.pending;
  await new Upload(pending.blob, {
    endpoint: `/api/lots/${encodeURIComponent(page.lotId)}/uploads`,
    token: page.session.token,
    fingerprint: `${pending.lot}:${pending.subject}:${pending.sha256}`,
  }).cancel();
  await dropPending(pending);
  page.stage = null;
}

// withdrawing -----------------------------------------------------------------------------

async function withdraw(bid) {
  if (!confirm(t("bid.withdraw.confirm", { version: bid.version }))) return;
  if (!beforeDeadline()) throw new PageError("deadline_passed");
  if (!page.record) throw new PageError("key_not_here");
  // The version is signed too: the signature cannot withdraw a later identical upload.
  const fields = { lot: page.lot.id, envelope: bid.envelope_sha256, version: bid.version };
  const message = new TextEncoder().encode(ACTION_PREFIX);
  const signed = new Uint8Array([...message, ...canonical({ action: "bid.withdraw", ...fields })]);
  const signature = await keystore.sign(page.record, signed);
  await api(`/api/lots/${encodeURIComponent(page.lotId)}/bids/mine/withdraw`, {
    method: "POST",
    body: {
      ...fields,
      certificate: toBase64(page.record.certificate),
      chain: page.record.chain.map(toBase64),
      signature: toBase64(signature),
    },
  });
  page.receipt = null;
  page.stage = null;
  await refreshBids();
}

// IndexedDB: the sealed envelope until the server accepts it ------------------------------

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB.name, DB.version);
    request.onupgradeneeded = () => request.result.createObjectStore(DB.store, { keyPath: "id" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function dbRun(mode, action) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(DB.store, mode);
      const request = action(tx.objectStore(DB.store));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

async function savePending(pending) {
  try {
    await dbRun("readwrite", (store) => store.put(pending));
  } catch {
    // not stored: resuming works while this page stays open
  }
}

const loadPending = (id) => dbRun("readonly", (store) => store.get(id));
const deletePending = (id) => dbRun("readwrite", (store) => store.delete(id));

// doing things ----------------------------------------------------------------------------

async function withBusy(action) {
  if (page.busy) return;
  page.busy = true;
  page.error = null;
  render();
  try {
    await action();
  } catch (error) {
    if (!(error instanceof PageError || error instanceof TusError || error instanceof envelope.EnvelopeError)) console.warn(error);
    page.error = { code: error.code || "unexpected", message: error.message || String(error), detail: error.detail || {} };
    if (page.error.code === "not_registered") page.registered = false;
    if (page.stage && page.stage.step !== "done") page.stage = { ...page.stage, state: "failed" };
  } finally {
    page.busy = false;
    render();
  }
}

function setStage(step, done, total, state = null, detail = null) {
  page.stage = { step, done, total, state: state || (step === "upload" ? "uploading" : null), detail };
  renderProgress();
}

function download(value, kind) {
  if (!value) return;
  const blob = new Blob([JSON.stringify(value, null, 2)], { type: "application/json" });
  const link = h("a", {
    href: URL.createObjectURL(blob),
    download: `${kind}-${page.lot?.room || page.lotId}-${(page.receipt?.envelope_sha256 || "").slice(0, 12)}.json`,
  });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

// rendering -------------------------------------------------------------------------------

function money(value) {
  const number = Number(value);
  if (value === null || value === undefined || Number.isNaN(number)) return String(value ?? "");
  return t("money.yuan", { amount: number.toLocaleString(i18n.lang(), { minimumFractionDigits: 2, maximumFractionDigits: 2 }) });
}

function size(bytes) {
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

function render() {
  i18n.translatePage();
  servertime.renderSkew();
  const lang = byId("lang");
  lang.textContent = t("lang.switch");
  lang.setAttribute("aria-label", t("lang.switch.label"));
  const title = page.lot ? `${page.tender.title} · ${page.lot.title}` : t("bid.title");
  byId("lot-title").textContent = title;
  document.title = `${title} · ${t("app.name")}`;
  renderWho();
  renderClock();
  renderError();
  renderLot();
  const ready = Boolean(page.lot && page.session);
  const open = ready && beforeDeadline();
  byId("login-needed").hidden = Boolean(page.session) || !page.lot;
  byId("register").hidden = !ready;
  byId("register-state").textContent = t(page.registered ? "bid.register.done" : "bid.register.hint");
  byId("register-button").hidden = page.registered || !open;
  byId("form-panel").hidden = !open || !page.registered;
  byId("file-panel").hidden = !open || !page.registered;
  renderFields();
  renderDocuments();
  renderPending();
  renderProgress();
  renderReceipt();
  renderVersions();
  for (const el of document.querySelectorAll("main form button, main form input, main form select, #register-button, #pending button")) {
    el.disabled = page.busy;
  }
}

function renderWho() {
  const who = byId("who");
  who.hidden = !page.session;
  if (page.session) {
    const holder = page.session.holder || {};
    who.textContent = holder.organisation || holder.name || "";
  }
}

function renderClock() {
  const deadline = deadlineMs();
  const phase = byId("phase");
  const countdown = byId("countdown");
  if (Number.isNaN(deadline)) {
    phase.hidden = true;
    countdown.textContent = "";
  } else {
    const left = deadline - now();
    phase.hidden = false;
    phase.textContent = t(left > 0 ? "bid.phase.open" : "bid.phase.closed");
    phase.className = `badge ${left > 0 ? "phase-open" : "phase-closed"}`;
    countdown.textContent = left > 0 ? t("bid.countdown", { left: i18n.formatCountdown(left) }) : "";
    countdown.classList.toggle("urgent", left > 0 && left < 3600 * 1000);
    byId("deadline").textContent = t("bid.deadline", { time: i18n.formatDateTime(page.lot.deadline) });
    if (left <= 0 && !byId("form-panel").hidden) render();
  }
  // set only when it changes: the line is aria-live, and a ticking clock must not re-announce it
  const step = nextStep();
  if (byId("next-step").textContent !== step) byId("next-step").textContent = step;
}

/** What the bidder must do now, in one sentence. */
function nextStep() {
  if (page.loadError) return "";
  if (!page.lot) return t("bids.loading");
  const open = beforeDeadline();
  const current = page.bids?.find((b) => b.status === "current");
  if (!open) return t(current ? "bid.next.closedWithBid" : "bid.next.closed");
  if (!page.session) return t("bid.next.login");
  if (!page.registered) return t("bid.next.register");
  if (page.upload || page.busy) return t("bid.next.wait");
  if (page.pending) return t("bid.next.pending");
  if (current) return t("bid.next.done", { version: current.version });
  return t("bid.next.fill");
}

function renderError() {
  const el = byId("bid-error");
  const error = page.error || page.loadError;
  el.hidden = !error;
  if (!error) return;
  const known = i18n.errorText({ code: error.code, message: "" });
  const text = known && known !== error.code && known !== "?" ? known : error.message || error.code;
  const filled = text.replace(/\{(\w+)\}/g, (_, k) => {
    if (k === "limit") return size(Number(error.detail?.limit || page.lot?.max_bid_bytes || 0));
    return String(error.detail?.[k] ?? "");
  });
  el.textContent = t("bids.error", { text: filled, code: error.code });
}

function fact(label, value, id = null) {
  return [h("dt", {}, label), h("dd", id ? { id } : {}, value)];
}

function renderLot() {
  const lot = page.lot;
  if (!lot) return fill(byId("lot-facts"));
  const guarantee = lot.guarantee?.required ? money(lot.guarantee.amount) : t("bids.guarantee.none");
  fill(byId("lot-facts"),
    fact(t("lot.tender"), `${page.tender.number} ${page.tender.title}`),
    fact(t("lot.number"), `${lot.number} ${lot.title}`),
    fact(t("lot.ceiling"), money(lot.ceiling_price), "fact-ceiling"),
    fact(t("lot.deadline"), `${i18n.formatDateTime(lot.deadline)}（${t("time.beijing")}）`),
    fact(t("lot.guarantee"), guarantee),
    fact(t("lot.method"), t(`method.${lot.method}`)),
    fact(t("lot.fields"), sheetFields().map((f) => t(`field.${f}`)).join(t("bids.listSep"))),
    fact(t("lot.maxSize"), size(Number(lot.max_bid_bytes || 0))),
    fact(t("lot.keyFingerprint"), h("code", { class: "fingerprint" }, lot.key_fingerprint || "")),
    fact(t("lot.keySigner"), keySigner(), "fact-key-signer"),
    fact(t("lot.room"), h("a", { href: `/opening.html?room=${encodeURIComponent(lot.room)}` }, t("lot.room.open"))),
  );
}

function keySigner() {
  const checked = page.keyCheck;
  if (!checked) return "";
  if (checked.error) {
    const code = checked.error.code || "lot_key_malformed";
    const known = i18n.errorText({ code, message: "" });
    const text = known && known !== code && known !== "?" ? known : checked.error.message;
    return h("span", { class: "warn", "data-code": code }, t("lot.keyRefused", { text }));
  }
  const { name, organisation, signedAt } = checked.signer;
  const who = organisation ? `${name}（${organisation}）` : name;
  const time = signedAt ? i18n.formatDateTime(signedAt) : "";
  return h("span", { "data-code": "signed" }, t("lot.keySigner.by", { who, time }));
}

function inputFor(name, kind) {
  const attrs = { id: `f-${name}`, name, autocomplete: "off", required: true, maxlength: kind === "text" ? TEXT_MAX : null };
  if (kind === "money" || kind === "percent") Object.assign(attrs, { inputmode: "decimal", placeholder: kind === "money" ? "0.00" : "0.0" });
  if (kind === "integer") Object.assign(attrs, { inputmode: "numeric" });
  return h("div", { class: "field" },
    h("label", { for: `f-${name}` }, t(`field.${name}`), kind === "money" ? ` (${t("money.unit")})` : kind === "percent" ? " (%)" : ""),
    h("input", attrs));
}

function guaranteeFields() {
  const required = page.lot.guarantee?.required;
  return h("fieldset", { class: "field field-wide" },
    h("legend", {}, t("field.guarantee"), required ? ` · ${t("bids.guarantee.required", { amount: money(page.lot.guarantee.amount) })}` : ""),
    h("div", { class: "field-grid" },
      h("div", { class: "field" },
        h("label", { for: "g-kind" }, t("guarantee.kind")),
        h("select", { id: "g-kind" }, GUARANTEE_KINDS.map((k) => h("option", { value: k }, t(`guarantee.kind.${k}`))))),
      ["issuer", "number", "amount", "payer"].map((part) => h("div", { class: "field" },
        h("label", { for: `g-${part}` }, t(`guarantee.${part}`)),
        h("input", { id: `g-${part}`, autocomplete: "off", maxlength: TEXT_MAX, inputmode: part === "amount" ? "decimal" : null }))),
    ));
}

/** The form's inputs, built once per lot and language (typed values survive a re-render). */
function renderFields() {
  const box = byId("form-fields");
  if (!page.lot) return;
  const key = `${page.lot.id}:${i18n.lang()}`;
  if (box.dataset.built === key) return;
  const values = {};
  for (const input of box.querySelectorAll("input, select")) values[input.id] = input.value;
  fill(box, sheetFields().map((name) => {
    const spec = FIELDS[name];
    if (!spec) return null;
    return spec.kind === "guarantee" ? guaranteeFields() : inputFor(name, spec.kind);
  }));
  for (const [id, value] of Object.entries(values)) if (byId(id)) byId(id).value = value;
  box.dataset.built = key;
}

function renderDocuments() {
  fill(byId("document-list"), page.documents.map((file, i) => h("li", {},
    h("span", {}, file.name), h("span", { class: "muted small" }, ` ${size(file.size)} `),
    h("button", {
      type: "button", class: "small danger", "aria-label": t("bid.form.remove.label", { name: file.name }),
      onclick: () => {
        page.documents.splice(i, 1);
        renderDocuments();
      },
    }, t("bid.form.remove")))));
}

function renderPending() {
  const pending = page.pending;
  const show = Boolean(pending && !page.upload && beforeDeadline() && page.session);
  byId("pending").hidden = !show;
  if (show) {
    byId("pending-text").textContent = t("bid.pending.text", {
      time: i18n.formatDateTime(pending.savedAt), size: size(pending.size), sha: pending.sha256.slice(0, 16),
    });
  }
}

const STEPS = ["zip", "seal", "hash", "upload", "check", "done"];

function renderProgress() {
  const stage = page.stage;
  byId("progress").hidden = !stage;
  if (!stage) return;
  const at = STEPS.indexOf(stage.step);
  fill(byId("steps"), STEPS.slice(0, -1).map((step, i) => h("li", {
    class: i < at || stage.step === "done" ? "step-done" : i === at ? `step-now${stage.state === "failed" ? " step-failed" : ""}` : "",
    "aria-current": i === at ? "step" : null,
  }, t(`bid.step.${step}`))));
  const bar = byId("progress-bar");
  bar.value = stage.total ? stage.done / stage.total : 0;
  bar.dataset.step = stage.step;
  bar.dataset.done = String(stage.done);
  bar.dataset.total = String(stage.total);
  let text = t(`bid.step.${stage.step}`);
  if (stage.total > 1 && stage.step !== "done") {
    text += ` ${size(stage.done)} / ${size(stage.total)} (${Math.floor((100 * stage.done) / stage.total)}%)`;
  }
  if (stage.state === "retrying") text += ` · ${t("bid.progress.retrying", { attempt: stage.detail?.attempt })}`;
  if (stage.state === "resuming") text += ` · ${t("bid.progress.resuming")}`;
  if (stage.state === "paused") text += ` · ${t("bid.progress.paused")}`;
  if (stage.state === "failed") text += ` · ${t("bid.progress.failed")}`;
  byId("progress-text").textContent = text;
  byId("pause").hidden = !page.upload || stage.step !== "upload";
}

function renderReceipt() {
  const receipt = page.receipt;
  byId("receipt").hidden = !receipt;
  if (!receipt) return;
  const current = page.bids?.find((b) => b.envelope_sha256 === receipt.envelope_sha256);
  fill(byId("receipt-facts"),
    current ? fact(t("bid.receipt.version"), String(current.version), "receipt-version") : null,
    fact(t("bid.receipt.time"), `${beijingSeconds(receipt.received_at)}（${t("time.beijing")}）`, "receipt-time"),
    fact(t("bid.receipt.sha"), h("code", { class: "fingerprint" }, receipt.envelope_sha256), "receipt-sha"),
    current ? fact(t("bid.receipt.size"), size(current.size)) : null,
  );
}

function beijingSeconds(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return new Intl.DateTimeFormat(i18n.lang(), {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    second: "2-digit", hourCycle: "h23", timeZone: "Asia/Shanghai",
  }).format(date);
}

function renderVersions() {
  const bids = page.bids || [];
  byId("versions-panel").hidden = !page.session || !page.lot;
  const open = beforeDeadline();
  fill(byId("versions"), bids.length ? bids.map((bid) => h("li", {
    class: `choice version version-${bid.status}`, "data-version": bid.version, "data-sha256": bid.envelope_sha256,
  },
    h("div", { class: "choice-main" },
      h("div", { class: "person-name" }, t("bid.versions.version", { version: bid.version }), " ",
        h("span", { class: `badge status-${bid.status}` }, t(`bid.status.${bid.status}`))),
      h("div", { class: "muted small" }, `${beijingSeconds(bid.received_at)} · ${size(bid.size)}`),
      h("div", { class: "muted small" }, h("code", {}, `SHA-256 ${bid.envelope_sha256.slice(0, 16)}…`))),
    bid.status === "current" && open ? h("button", {
      type: "button", class: "danger", disabled: page.busy,
      onclick: () => withBusy(() => withdraw(bid)),
    }, t("bid.withdraw")) : null,
  )) : h("li", { class: "empty" }, t("bid.versions.empty")));
}

if (byId("bid-main")) boot();
