// Staff (chair) create, edit and publish tenders and their lots (web/tenders.html;
// docs/opening.md, Tenders and lots).
//
//   GET /api/tenders (chair: drafts too), POST /api/tenders, PUT /api/tenders/{id} (draft only),
//   POST /api/tenders/{id}/publish. Publication freezes the tender and, per lot, makes the
//   opening key (split k-of-n to the custodians) and the opening room; the page then shows the
//   key's fingerprint, the custodians and the links to the room and the bid page.
//
// Times are typed as Beijing wall-clock time (datetime-local) and sent in UTC; money is a
// decimal string in yuan with 2 places.

import { holderKey, loginSession } from "./session.js";
import { signedBody } from "./actions.js";
import * as lotkey from "./lotkey.js";
import * as krange from "./krange.js";
import { byId, fill, h } from "./dom.js";
import * as i18n from "./i18n.js";
import "./i18n-bids.js";
import * as servertime from "./servertime.js";

const { t } = i18n;
const BEIJING_MS = 8 * 3600 * 1000; // UTC+8, no daylight saving
const MiB = 1 << 20;
const MONEY = /^(0|[1-9][0-9]{0,14})(\.[0-9]{1,2})?$/; // bidroom/money.py's one format
const DECIMAL = /^\d+(\.\d+)?$/; // k_range's own rules: krange.js
const CATALOGUE = ["price", "duration_days", "quality", "project_manager", "guarantee", "warranty_months", "discount_rate"];
const METHODS = ["low_price", "benchmark", "lowest_evaluated"];
const PEM = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

const page = {
  session: null,
  tenders: null,
  editing: null, // the tender being edited ({} for a new one)
  viewing: null, // the tender shown
  error: null,
  busy: false,
  notice: "",
};

class PageError extends Error {
  constructor(code, message = code, detail = {}) {
    super(message);
    this.code = code;
    this.detail = detail;
  }
}

// the server ------------------------------------------------------------------------------

async function api(path, { method = "GET", body = undefined } = {}) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${page.session.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new PageError("network");
  }
  if (!response.ok) {
    let error = {};
    try {
      error = await response.json();
    } catch {
      // not JSON
    }
    throw new PageError(error.code || `http_${response.status}`, error.message || response.statusText, error.detail || {});
  }
  return response.json();
}

const isChair = () => Boolean(page.session?.roles?.includes("chair"));

// start -----------------------------------------------------------------------------------

async function boot() {
  byId("lang").addEventListener("click", () => {
    i18n.setLang(i18n.lang() === "zh-CN" ? "en" : "zh-CN");
    relabel();
    render();
  });
  byId("new-tender").addEventListener("click", () => edit({ lots: [] }));
  byId("add-lot").addEventListener("click", () => byId("lots").append(lotEditor({}, byId("lots").children.length)));
  byId("cancel-edit").addEventListener("click", () => {
    page.editing = null;
    render();
  });
  byId("tender-form").addEventListener("submit", (event) => {
    event.preventDefault();
    withBusy(save);
  });
  byId("edit").addEventListener("click", () => edit(page.viewing));
  byId("publish").addEventListener("click", () => withBusy(publish));
  byId("close-viewer").addEventListener("click", () => {
    page.viewing = null;
    render();
  });
  page.session = loginSession();
  render();
  if (isChair()) await withBusy(load);
}

async function load() {
  const answer = await api("/api/tenders");
  page.tenders = answer.tenders || answer;
  const wanted = new URLSearchParams(location.search).get("tender");
  if (wanted && !page.viewing) page.viewing = page.tenders.find((x) => String(x.id) === wanted) || null;
  else if (page.viewing) page.viewing = page.tenders.find((x) => x.id === page.viewing.id) || page.viewing;
}

// editing ---------------------------------------------------------------------------------

function edit(tender) {
  page.editing = tender;
  page.viewing = null;
  page.error = null;
  byId("t-number").value = tender.number || "";
  byId("t-title").value = tender.title || "";
  // The server shows custodians by name only: the certificates typed in this tab are kept
  // (sessionStorage) so that editing a draft does not mean pasting them again.
  const kept = keptPems(tender.id);
  const lots = tender.lots?.length
    ? tender.lots.map((lot) => ({ ...lot, custodians: kept[lot.number] || [] }))
    : [{}];
  fill(byId("lots"), lots.map((lot, i) => lotEditor(lot, i)));
  render();
  byId("t-number").focus();
}

/** "2026-12-20T09:30" (Beijing) for a UTC ISO instant; and back. */
function toLocalInput(iso) {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return "";
  return new Date(ms + BEIJING_MS).toISOString().slice(0, 16);
}

function fromLocalInput(value) {
  const ms = Date.parse(`${value}:00Z`);
  if (!value || Number.isNaN(ms)) return null;
  return new Date(ms - BEIJING_MS).toISOString().replace(/\.\d{3}Z$/, "+00:00");
}

function defaultDeadline() {
  // 21 days from now, 09:30 Beijing time: past the 20-day minimum (BIDROOM_MIN_BID_DAYS)
  const day = new Date(servertime.now() + BEIJING_MS + 21 * 86400 * 1000).toISOString().slice(0, 10);
  return `${day}T09:30`;
}

function field(id, label, input, wide = false) {
  return h("div", { class: `field${wide ? " field-wide" : ""}` }, h("label", { for: id }, label), input);
}

/** One lot's fieldset; its inputs carry data-k (the key in the lot object). */
function lotEditor(lot, index) {
  const p = `l${index}-`;
  const input = (key, attrs = {}) => h("input", { id: p + key, "data-k": key, autocomplete: "off", ...attrs });
  const select = (key, options, value) => h("select", { id: p + key, "data-k": key },
    options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
  const fields = new Set(lot.sheet_fields || ["price", "duration_days", "quality", "project_manager", "guarantee"]);
  const kRange = lot.k_range || ["0.00", "0.05", "0.01"];
  const method = lot.method || "benchmark";
  const custodians = h("textarea", {
    id: `${p}custodians`, "data-k": "custodians", rows: 4, spellcheck: "false",
    placeholder: "-----BEGIN CERTIFICATE-----", class: "mono",
  }, (lot.custodians || []).filter((c) => typeof c === "string").join("\n"));
  const count = h("span", { class: "muted small", "data-custodian-count": "" });
  const recount = () => {
    count.textContent = t("tenders.custodians.count", { n: (custodians.value.match(PEM) || []).length });
  };
  custodians.addEventListener("input", recount);
  recount();
  const kInputs = [["k-min", 0], ["k-max", 1], ["k-step", 2]].map(([key, i]) =>
    input(key, { value: kRange[i], inputmode: "decimal", "aria-describedby": `${p}k-meaning` }));
  // what the range means, as it is typed: the K values drawable and B = S x (1 - K) as a share
  // of the mean, so that a range typed for another convention shows before publication
  const kMeaning = h("p", { id: `${p}k-meaning`, class: "hint field-wide", "data-k-meaning": "", "aria-live": "polite" });
  const explain = () => {
    const meant = krange.meaning(kInputs.map((el) => el.value));
    kMeaning.textContent = kRangeText(meant);
    kMeaning.dataset.ok = meant.ok ? "yes" : "no";
    kMeaning.classList.toggle("warn", !meant.ok);
  };
  for (const el of kInputs) el.addEventListener("input", explain);
  explain();
  const kRangeBox = h("div", { class: "field-grid k-range", hidden: method !== "benchmark" },
    field(`${p}k-min`, t("tenders.kRange.min"), kInputs[0]),
    field(`${p}k-max`, t("tenders.kRange.max"), kInputs[1]),
    field(`${p}k-step`, t("tenders.kRange.step"), kInputs[2]),
    kMeaning);
  const methodSelect = select("method", METHODS.map((m) => [m, t(`method.${m}`)]), method);
  methodSelect.addEventListener("change", () => {
    kRangeBox.hidden = methodSelect.value !== "benchmark";
  });
  const box = h("fieldset", { class: "lot-editor", "data-lot": index },
    h("legend", {}, t("tenders.lot", { n: index + 1 })),
    h("div", { class: "field-grid" },
      field(`${p}number`, t("lot.number"), input("number", { value: lot.number || String(index + 1), required: true })),
      field(`${p}title`, t("tenders.lotTitle"), input("title", { value: lot.title || t("tenders.lotDefault", { n: index + 1 }), required: true }), true),
      field(`${p}ceiling_price`, `${t("lot.ceiling")} (${t("money.unit")})`, input("ceiling_price", { value: lot.ceiling_price || "", inputmode: "decimal", required: true })),
      field(`${p}deadline`, `${t("lot.deadline")}（${t("time.beijing")}）`, input("deadline", { type: "datetime-local", value: lot.deadline ? toLocalInput(lot.deadline) : defaultDeadline(), required: true })),
      field(`${p}window_minutes`, t("tenders.window"), input("window_minutes", { type: "number", min: 5, max: 240, value: lot.window_minutes ?? 30 })),
      field(`${p}max_bid_mib`, t("tenders.maxMiB"), input("max_bid_mib", { type: "number", min: 1, value: lot.max_bid_bytes ? Math.round(lot.max_bid_bytes / MiB) : 200 })),
    ),
    h("fieldset", { class: "field-wide sheet-fields" },
      h("legend", {}, t("lot.fields")),
      CATALOGUE.map((name) => h("label", { class: "check" },
        h("input", {
          type: "checkbox", "data-sheet": name, checked: name === "price" || fields.has(name),
          disabled: name === "price",
        }), ` ${t(`field.${name}`)}`))),
    h("div", { class: "field-grid" },
      field(`${p}g-required`, t("tenders.guarantee.required"), select("g-required", [["yes", t("tenders.yes")], ["no", t("tenders.no")]], lot.guarantee?.required === false ? "no" : "yes")),
      field(`${p}g-amount`, `${t("tenders.guarantee.amount")} (${t("money.unit")})`, input("g-amount", { value: lot.guarantee?.amount || "", inputmode: "decimal" })),
      field(`${p}method`, t("lot.method"), methodSelect),
      field(`${p}remedy`, t("tenders.remedy"), select("remedy", [["quorum", t("remedy.quorum")], ["none", t("remedy.none")]], lot.remedy || "quorum")),
    ),
    kRangeBox,
    h("div", { class: "field field-wide" },
      h("label", { for: `${p}custodians` }, t("tenders.custodians")),
      h("p", { class: "hint" }, t("tenders.custodians.hint")),
      custodians,
      h("div", { class: "row" },
        h("label", { for: `${p}custodian-files`, class: "sub" }, t("tenders.custodians.files")),
        h("input", {
          id: `${p}custodian-files`, type: "file", multiple: true, accept: ".pem,.crt,.cer",
          onchange: async (event) => {
            for (const file of event.target.files) {
              const text = await file.text();
              custodians.value = `${custodians.value.trim()}\n${(text.match(PEM) || []).join("\n")}`.trim();
            }
            event.target.value = "";
            recount();
          },
        })),
      count),
    h("div", { class: "field-grid" },
      field(`${p}k`, t("tenders.k"), input("k", { type: "number", min: 2, value: lot.k ?? 2 })),
      field(`${p}confirm_minutes`, t("tenders.confirmMinutes"), input("confirm_minutes", { type: "number", min: 1, value: lot.record?.confirm_minutes ?? 30 })),
      field(`${p}silence`, t("tenders.silence"), select("silence", [["consent", t("silence.consent")], ["refusal", t("silence.refusal")]], lot.record?.silence || "consent")),
    ),
    h("div", { class: "actions end" },
      h("button", {
        type: "button", class: "small danger",
        onclick: () => {
          box.remove();
        },
      }, t("tenders.removeLot"))),
  );
  if (lot.id) box.dataset.id = lot.id;
  return box;
}

/** The lot object from its fieldset, checked; PageError naming the lot and the field. */
function readLot(box, index) {
  const value = (key) => box.querySelector(`[data-k="${key}"]`).value.trim();
  const fail = (key, code) => {
    const el = box.querySelector(`[data-k="${key}"]`);
    el?.setAttribute("aria-invalid", "true");
    el?.focus();
    throw new PageError(code, code, { lot: index + 1, field: el?.labels?.[0]?.textContent || key });
  };
  for (const el of box.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const key of ["number", "title"]) if (!value(key)) fail(key, "form_missing");
  const ceiling = value("ceiling_price").replace(/,/g, "");
  if (!MONEY.test(ceiling)) fail("ceiling_price", "form_money");
  const deadline = fromLocalInput(value("deadline"));
  if (!deadline) fail("deadline", "form_missing");
  const guaranteeRequired = value("g-required") === "yes";
  const guaranteeAmount = value("g-amount").replace(/,/g, "");
  if (guaranteeRequired && !MONEY.test(guaranteeAmount)) fail("g-amount", "form_money");
  const custodians = box.querySelector('[data-k="custodians"]').value.match(PEM) || [];
  if (custodians.length < 2) fail("custodians", "custodians_too_few");
  const k = Number(value("k"));
  if (!Number.isInteger(k) || k < 2 || k > custodians.length) fail("k", "k_out_of_range");
  const method = value("method");
  const lot = {
    number: value("number"),
    title: value("title"),
    ceiling_price: money2(ceiling),
    deadline,
    sheet_fields: [...box.querySelectorAll("[data-sheet]")].filter((c) => c.checked).map((c) => c.dataset.sheet),
    guarantee: guaranteeRequired ? { required: true, amount: money2(guaranteeAmount) } : { required: false },
    window_minutes: Number(value("window_minutes")),
    method,
    remedy: value("remedy"),
    custodians,
    k,
    record: { confirm_minutes: Number(value("confirm_minutes")), silence: value("silence") },
    max_bid_bytes: Math.round(Number(value("max_bid_mib")) * MiB),
  };
  if (method === "benchmark") {
    const range = ["k-min", "k-max", "k-step"].map((key) => {
      if (!DECIMAL.test(value(key))) fail(key, "form_decimal");
      return value(key);
    });
    const meant = krange.meaning(range);
    if (!meant.ok) {
      const el = box.querySelector(`[data-k="${meant.reason === "step" ? "k-step" : "k-max"}"]`);
      el.setAttribute("aria-invalid", "true");
      el.focus();
      throw new PageError("k_range_invalid", kRangeText(meant), { lot: index + 1 });
    }
    lot.k_range = range;
  }
  return lot;
}

/** What a k_range means (krange.meaning), or why it cannot be published, in words. */
function kRangeText(meant) {
  const sep = t("bids.listSep");
  if (meant.ok) return t("tenders.kRange.meaning", { ...meant, values: meant.values.join(sep) });
  if (meant.reason === "over" && meant.suggested) {
    const [low, high, step] = meant.suggested;
    return t("tenders.kRange.overMirrored", { max: krange.K_MAX, low, high, step });
  }
  if (meant.reason === "over") return t("tenders.kRange.over", { max: krange.K_MAX });
  if (meant.reason === "step") return t("tenders.kRange.offStep", { high: meant.high, values: meant.values.join(sep) });
  return t(`tenders.kRange.${meant.reason}`);
}

function money2(text) {
  return text.includes(".") ? text.padEnd(text.indexOf(".") + 3, "0") : `${text}.00`;
}

function readTender() {
  const number = byId("t-number").value.trim();
  const title = byId("t-title").value.trim();
  if (!number) throw new PageError("form_missing", "", { field: t("tenders.number") });
  if (!title) throw new PageError("form_missing", "", { field: t("tenders.name") });
  const boxes = [...byId("lots").querySelectorAll("fieldset.lot-editor")];
  if (!boxes.length) throw new PageError("lots_missing");
  return { number, title, lots: boxes.map(readLot) };
}

function keptPems(id) {
  try {
    return JSON.parse(sessionStorage.getItem(`bidroom.custodians.${id}`) || "{}");
  } catch {
    return {};
  }
}

function keepPems(id, lots) {
  try {
    sessionStorage.setItem(`bidroom.custodians.${id}`, JSON.stringify(Object.fromEntries(lots.map((l) => [l.number, l.custodians]))));
  } catch {
    // not kept: editing asks for the certificates again
  }
}

async function save() {
  const body = readTender();
  const id = page.editing?.id;
  const answer = id
    ? await api(`/api/tenders/${encodeURIComponent(id)}`, { method: "PUT", body })
    : await api("/api/tenders", { method: "POST", body });
  page.editing = null;
  page.viewing = answer.tender || answer;
  keepPems(page.viewing.id, body.lots);
  page.notice = t("tenders.saved");
  await load();
}

async function publish() {
  const tender = page.viewing;
  if (!tender || !confirm(t("tenders.publish.confirm", { title: tender.title }))) return;
  const answer = await api(`/api/tenders/${encodeURIComponent(tender.id)}/publish`, { method: "POST" });
  page.viewing = answer.tender || answer;
  // the chair signs each lot's key statement at once: no bid is taken before (lot_key_unsigned)
  for (const lot of page.viewing.lots || []) {
    if (!lot.key_signature) await signKey(lot);
  }
  page.notice = t("tenders.published");
  await load();
}

/** Sign `lot`'s key statement with this chair's certificate key (docs/opening.md "The signed lot key"). */
async function signKey(lot) {
  const record = await holderKey();
  if (!record) throw new PageError("key_not_here");
  const body = await signedBody(record, lotkey.LOT_KEY_ACTION, lotkey.statement(lot));
  await api(`/api/lots/${encodeURIComponent(lot.id)}/key-signature`, { method: "POST", body });
}

async function signLot(lotId) {
  const lot = (page.viewing?.lots || []).find((l) => l.id === lotId);
  if (!lot || lot.key_signature) return;
  // a lot is signed once, right after publication: one that asks again may have had its key
  // replaced in the platform's database since (docs/opening.md "The signed lot key")
  if (!confirm(t("tenders.signKey.confirm", { fingerprint: lot.key_fingerprint }))) return;
  await signKey(lot);
  page.notice = t("tenders.keySigned");
  await load();
}

// doing things ----------------------------------------------------------------------------

async function withBusy(action) {
  if (page.busy) return;
  page.busy = true;
  page.error = null;
  page.notice = "";
  render();
  try {
    await action();
  } catch (error) {
    if (!(error instanceof PageError)) console.warn(error);
    page.error = { code: error.code || "unexpected", message: error.message || String(error), detail: error.detail || {} };
  } finally {
    page.busy = false;
    render();
  }
}

// rendering -------------------------------------------------------------------------------

function money(value) {
  const number = Number(value);
  if (value === null || value === undefined || Number.isNaN(number)) return "";
  return t("money.yuan", { amount: number.toLocaleString(i18n.lang(), { minimumFractionDigits: 2, maximumFractionDigits: 2 }) });
}

/** Labels built by lotEditor follow the language: rebuild the editor with its current values. */
function relabel() {
  if (!page.editing) return;
  const boxes = [...byId("lots").querySelectorAll("fieldset.lot-editor")];
  const lots = boxes.map((box, i) => {
    try {
      return { ...readLot(box, i), id: box.dataset.id };
    } catch {
      return null; // half-filled: keep the fieldset as it is
    }
  });
  if (lots.every(Boolean)) fill(byId("lots"), lots.map((lot, i) => lotEditor(lot, i)));
  // a lot kept as it is (half-filled, or a range that cannot be published) explains its range anew
  for (const el of byId("lots").querySelectorAll('[data-k="k-min"]')) el.dispatchEvent(new Event("input"));
}

function render() {
  i18n.translatePage();
  document.title = `${t("tenders.title")} · ${t("app.name")}`;
  const lang = byId("lang");
  lang.textContent = t("lang.switch");
  lang.setAttribute("aria-label", t("lang.switch.label"));
  const who = byId("who");
  who.hidden = !page.session;
  who.textContent = page.session?.holder?.name || "";
  const login = byId("login-needed");
  login.hidden = isChair();
  byId("login-needed-text").textContent = t(page.session ? "tenders.login.notChair" : "tenders.login.hint");
  renderError();
  byId("next-step").textContent = page.notice || nextStep();
  byId("list-panel").hidden = !isChair() || Boolean(page.editing);
  byId("editor").hidden = !page.editing;
  byId("editor-h").textContent = page.editing?.id ? t("tenders.editing", { title: page.editing.title }) : t("tenders.new");
  renderList();
  renderViewer();
  for (const el of document.querySelectorAll("main button")) el.disabled = page.busy;
}

function nextStep() {
  if (!isChair()) return "";
  if (page.editing) return t("tenders.next.edit");
  if (page.viewing?.status === "draft") return t("tenders.next.publish");
  if (page.viewing) return t("tenders.next.published");
  return t("tenders.next.list");
}

function renderError() {
  const el = byId("tenders-error");
  const error = page.error;
  el.hidden = !error;
  if (!error) return;
  const known = i18n.errorText({ code: error.code, message: "" });
  let text = known && known !== error.code && known !== "?" ? known : error.message || error.code;
  text = text.replace(/\{(\w+)\}/g, (_, k) => String(error.detail?.[k] ?? ""));
  const extra = Array.isArray(error.detail?.errors)
    ? error.detail.errors.map((e) => `${(e.loc || []).join(".")}: ${e.msg || e.message || ""}`).join("；")
    : error.message && error.message !== text && error.message !== error.code ? error.message : "";
  el.textContent = t("bids.error", { text: extra ? `${text}（${extra}）` : text, code: error.code });
}

function statusBadge(status) {
  return h("span", { class: `badge tender-${status}` }, t(`tender.status.${status}`));
}

function renderList() {
  const tenders = page.tenders || [];
  fill(byId("tender-list"), tenders.length ? tenders.map((tender) => h("li", { class: "choice", "data-tender": tender.id },
    h("div", { class: "choice-main" },
      h("div", { class: "person-name" }, tender.title, " ", statusBadge(tender.status)),
      h("div", { class: "muted small" }, `${tender.number} · ${t("tenders.lotCount", { n: tender.lots?.length || 0 })}`)),
    h("button", {
      type: "button", disabled: page.busy,
      onclick: () => {
        page.viewing = tender;
        page.editing = null;
        page.notice = "";
        render();
        byId("viewer").focus();
      },
    }, t("tenders.open")))) : h("li", { class: "empty" }, t("tenders.empty")));
}

function fact(label, value) {
  return [h("dt", {}, label), h("dd", {}, value)];
}

/** A custodian as the server shows it: name, and the subject or fingerprint (never a share). */
function custodianItem(c) {
  if (typeof c === "string") return h("li", {}, c.slice(0, 40));
  const id = c.subject || (c.fingerprint ? `cert:${c.fingerprint.slice(0, 16)}…` : "");
  return h("li", {}, h("strong", {}, c.name || ""), c.organisation ? `（${c.organisation}）` : "", " ",
    h("span", { class: "muted small" }, id),
    c.index !== undefined ? h("span", { class: "muted small" }, ` · ${t("tenders.shareIndex", { index: c.index })}`) : null,
    c.insider ? h("span", { class: "muted small" }, ` · ${t("tenders.insider")}`) : null);
}

function renderViewer() {
  const tender = page.viewing;
  byId("viewer").hidden = !tender || Boolean(page.editing);
  if (!tender) return;
  byId("viewer-h").textContent = `${tender.number} ${tender.title}`;
  fill(byId("viewer-status"), statusBadge(tender.status),
    tender.published_at ? h("span", { class: "muted" }, t("tenders.publishedAt", { time: i18n.formatDateTime(tender.published_at) })) : null);
  const draft = tender.status === "draft";
  byId("edit").hidden = !draft;
  byId("publish").hidden = !draft;
  fill(byId("viewer-lots"), (tender.lots || []).map((lot) => h("article", { class: "lot-card", "data-lot": lot.id || "" },
    h("h3", {}, `${t("lot.number")} ${lot.number} · ${lot.title}`),
    h("dl", { class: "me" },
      fact(t("lot.ceiling"), money(lot.ceiling_price)),
      fact(t("lot.deadline"), `${i18n.formatDateTime(lot.deadline)}（${t("time.beijing")}）`),
      fact(t("lot.method"), t(`method.${lot.method}`) + (lot.k_range ? ` · K ${lot.k_range[0]}–${lot.k_range[1]} / ${lot.k_range[2]}` : "")),
      lot.k_range ? fact(t("tenders.benchmark"), h("span", { "data-benchmark": "" }, kRangeText(krange.meaning(lot.k_range)))) : null,
      fact(t("lot.guarantee"), lot.guarantee?.required ? money(lot.guarantee.amount) : t("bids.guarantee.none")),
      fact(t("lot.fields"), (lot.sheet_fields || []).map((f) => t(`field.${f}`)).join(t("bids.listSep"))),
      fact(t("tenders.remedy"), t(`remedy.${lot.remedy}`)),
      fact(t("tenders.quorum"), t("tenders.kOfN", { k: lot.k, n: lot.custodians?.length || 0 })),
      fact(t("tenders.record"), t("tenders.recordRule", { minutes: lot.record?.confirm_minutes, silence: t(`silence.${lot.record?.silence}`) })),
      draft ? null : fact(t("lot.keyFingerprint"), h("code", { class: "fingerprint", "data-fingerprint": "" }, lot.key_fingerprint || "")),
      draft ? null : fact(t("lot.keySigner"), keySigned(lot)),
    ),
    h("div", {},
      h("h4", {}, t("tenders.custodians")),
      h("ol", { class: "custodians" }, (lot.custodians || []).map(custodianItem))),
    draft ? null : h("div", { class: "actions" },
      h("a", { class: "button", href: `/opening.html?room=${encodeURIComponent(lot.room)}` }, t("lot.room.open")),
      h("a", { class: "button", href: `/bid.html?lot=${encodeURIComponent(lot.id)}` }, t("tenders.bidPage"))),
  )));
}

function keySigned(lot) {
  const signed = lot.key_signature;
  if (signed) {
    const { name = "", organisation = null } = signed.signer || {};
    const who = organisation ? `${name}（${organisation}）` : name;
    return h("span", { "data-key-signed": "yes" }, t("lot.keySigner.by", { who, time: i18n.formatDateTime(signed.signed_at) }));
  }
  return h("span", { "data-key-signed": "no" },
    h("span", { class: "warn" }, t("tenders.keyUnsigned")), " ",
    h("button", { type: "button", class: "sign-key", onclick: () => withBusy(() => signLot(lot.id)) }, t("tenders.signKey")));
}

if (byId("tenders-main")) boot();
