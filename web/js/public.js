// Public notices (web/public.html): published tenders and their lots, no login needed
// (GET /api/tenders answers the public with published tenders only). For each lot: the deadline
// (= the opening time) counted down in Beijing time, the ceiling price, the links to bid and to
// the opening room, and once the opening is over its record (GET /api/openings/{room}/record:
// shown when 200, "not yet published" otherwise).

import { byId, fill, h } from "./dom.js";
import * as i18n from "./i18n.js";
import "./i18n-bids.js";
import "./i18n-opening.js"; // the statuses of bids, as the opening page names them
import * as servertime from "./servertime.js";

const { t } = i18n;

const page = {
  tenders: null,
  failure: null,
  records: new Map(), // room -> {state: "loading"|"none"|"ok"|"failed", record}
};

async function load() {
  try {
    const sent = Date.now();
    const response = await fetch("/api/tenders", { headers: { Accept: "application/json" } });
    servertime.learn(response, sent);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const answer = await response.json();
    page.tenders = (answer.tenders || answer).filter((x) => x.status === "published");
  } catch (error) {
    page.failure = error.message;
  }
  render();
  for (const tender of page.tenders || []) {
    for (const lot of tender.lots || []) if (Date.parse(lot.deadline) <= now()) loadRecord(lot.room);
  }
}

const now = servertime.now;

async function loadRecord(room) {
  if (!room || page.records.has(room)) return;
  page.records.set(room, { state: "loading" });
  try {
    const response = await fetch(`/api/openings/${encodeURIComponent(room)}/record`, { headers: { Accept: "application/json" } });
    page.records.set(room, response.ok ? { state: "ok", record: await response.json() } : { state: "none" });
  } catch {
    page.records.set(room, { state: "failed" });
  }
  render();
}

function money(value) {
  const number = Number(value);
  if (value === null || value === undefined || Number.isNaN(number)) return "";
  return t("money.yuan", { amount: number.toLocaleString(i18n.lang(), { minimumFractionDigits: 2, maximumFractionDigits: 2 }) });
}

function render() {
  i18n.translatePage();
  document.title = `${t("public.title")} · ${t("app.name")}`;
  servertime.renderSkew();
  const lang = byId("lang");
  lang.textContent = t("lang.switch");
  lang.setAttribute("aria-label", t("lang.switch.label"));
  const status = byId("public-status");
  if (page.failure) status.textContent = t("public.failed", { message: page.failure });
  else if (!page.tenders) status.textContent = t("bids.loading");
  else status.textContent = page.tenders.length ? "" : t("public.empty");
  fill(byId("notices"), (page.tenders || []).map(tenderNotice));
}

function tenderNotice(tender) {
  return h("section", { class: "panel notice", "data-tender": tender.id },
    h("h2", {}, tender.title),
    h("p", { class: "muted small" }, `${t("public.number")} ${tender.number}`,
      tender.published_at ? ` · ${t("tenders.publishedAt", { time: i18n.formatDateTime(tender.published_at) })}` : ""),
    h("div", { class: "lot-cards" }, (tender.lots || []).map(lotNotice)));
}

function lotNotice(lot) {
  const left = Date.parse(lot.deadline) - now();
  const open = left > 0;
  return h("article", { class: "lot-card", "data-lot": lot.id },
    h("h3", {}, `${t("lot.number")} ${lot.number} · ${lot.title}`, " ",
      h("span", { class: `badge ${open ? "phase-open" : "phase-closed"}` }, t(open ? "bid.phase.open" : "bid.phase.closed"))),
    h("dl", { class: "me" },
      h("dt", {}, t("lot.ceiling")), h("dd", {}, money(lot.ceiling_price)),
      h("dt", {}, t("public.opening")), h("dd", {}, `${i18n.formatDateTime(lot.deadline)}（${t("time.beijing")}）`),
      open ? [h("dt", {}, t("public.left")), h("dd", { class: "countdown", "data-deadline": lot.deadline }, i18n.formatCountdown(left))] : null,
      h("dt", {}, t("lot.method")), h("dd", {}, t(`method.${lot.method}`)),
      h("dt", {}, t("lot.guarantee")), h("dd", {}, lot.guarantee?.required ? money(lot.guarantee.amount) : t("bids.guarantee.none"))),
    h("div", { class: "actions" },
      open ? h("a", { class: "button primary", href: `/bid.html?lot=${encodeURIComponent(lot.id)}` }, t("public.bid")) : null,
      h("a", { class: "button", href: `/opening.html?room=${encodeURIComponent(lot.room)}` }, t("lot.room.open"))),
    open ? null : recordView(lot.room));
}

/** The opening record once published; its shape is the lead's (bidroom/openings.py). */
function recordView(room) {
  const entry = page.records.get(room) || { state: "loading" };
  if (entry.state !== "ok") {
    return h("p", { class: "hint", "data-record": entry.state }, t(`public.record.${entry.state}`));
  }
  const record = entry.record || {};
  const doc = record.document || record;
  const rows = doc.rows || doc.sheet?.rows || [];
  const fields = doc.fields || doc.sheet?.fields || ["price"];
  return h("details", { class: "record", "data-record": "ok", open: true },
    h("summary", {}, t("public.record.title")),
    record.digest ? h("p", { class: "muted small" }, "SHA-256 ", h("code", { class: "fingerprint" }, record.digest)) : null,
    rows.length
      ? h("div", { class: "table-wrap" }, h("table", { class: "sheet" },
        h("thead", {}, h("tr", {}, h("th", {}, t("public.record.bidder")), fields.map((f) => h("th", {}, t(`field.${f}`))), h("th", {}, t("public.record.status")))),
        h("tbody", {}, rows.map((row) => h("tr", {},
          h("td", {}, row.name || row.bidder),
          fields.map((f) => h("td", {}, cell(f, row.fields?.[f]))),
          h("td", { "data-status": row.status }, row.status ? t(`op.status.${row.status}`) : ""))))))
      : h("pre", { class: "record-json" }, JSON.stringify(doc, null, 2)),
    signatures(record),
    auditKeys(record),
    h("p", {}, h("a", { href: recordDownload(record), download: `opening-record-${room}.json` },
      t("public.record.download"))));
}

/** Who signed the record and how, and how many audit receipts prove its steps. */
function signatures(record) {
  const opinions = Object.values(record.confirmations || {}).map((c) => c.opinion);
  const counts = {
    confirmed: opinions.filter((o) => o === "confirm").length,
    dissent: opinions.filter((o) => o === "dissent").length,
    deemed: Object.keys(record.deemed || {}).length,
    proofs: (record.published?.proofs || []).length,
  };
  return h("p", { class: "muted small", "data-testid": "record-signatures" },
    t("public.record.signatures", counts),
    record.countersigned?.at ? ` ${t("public.record.countersigned")}` : "");
}

/** What the receipts are checked against, as the platform publishes it (docs/audit.md). */
function auditKeys(record) {
  const key = record.audit?.verifier_key;
  if (!key) return null;
  return h("p", { class: "muted small", "data-testid": "record-audit-key" },
    t("public.record.auditKey"), h("code", { class: "fingerprint" }, key), " · ",
    h("a", { href: "/.well-known/bidroom-tsa-roots.pem", download: "tsa-roots.pem" },
      t("public.record.tsaRoots")));
}

function recordDownload(record) {
  const blob = new Blob([JSON.stringify(record, null, 2)], { type: "application/json" });
  return URL.createObjectURL(blob);
}

function cell(field, value) {
  if (value === null || value === undefined) return "";
  if (field === "price") return money(value);
  if (field === "guarantee" && typeof value === "object") return `${value.issuer || ""} ${money(value.amount)}`;
  return String(value);
}

function tick() {
  for (const el of document.querySelectorAll("[data-deadline]")) {
    el.textContent = i18n.formatCountdown(Date.parse(el.dataset.deadline) - now());
  }
}

byId("lang").addEventListener("click", () => {
  i18n.setLang(i18n.lang() === "zh-CN" ? "en" : "zh-CN");
  render();
});
render();
load();
setInterval(tick, 1000);
servertime.onChange(tick);
servertime.start();
