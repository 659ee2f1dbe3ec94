// The certificate login page (server side: bidroom/login.py, ca/login.py).
//
// 1. The holder's key reaches WebCrypto as a non-extractable key: from a key file they pick
//    (PKCS#12, or PKCS#8 PEM/DER plus a certificate file), from IndexedDB (a returning holder), or
//    in the demo only from /api/demo/people/<id>. It is stored with its chain (keystore.js).
// 2. POST /api/login/challenge; sign "bidroom login v1\n" + origin + "\n" + challenge.
// 3. POST /api/login with the certificate, chain and signature; keep the session token in this
//    tab's sessionStorage (room.js takes it from there) and continue to ?room=, if given.

import { byId, fill, h } from "./dom.js";
import * as i18n from "./i18n.js";
import * as keystore from "./keystore.js";
import * as pkcs from "./pkcs.js";
import { SESSION_KEY } from "./session.js"; // where the room pages find the session

const { t } = i18n;
const LOGIN_PREFIX = "bidroom login v1\n";
const MAX_CHAIN = 5;

/**
 * Where to go after signing in: a page of this site only. The value is parsed as the browser
 * will parse it (which drops tabs and newlines: "/\t/evil.example/" is "//evil.example/") and
 * its origin compared with ours; what goes to location.assign is the parsed URL, absolute.
 */
function sameSitePath(value) {
  if (!value) return "";
  let url;
  try {
    url = new URL(value, location.origin);
  } catch {
    return "";
  }
  if (url.origin !== location.origin) return "";
  // A same-origin URL may still have a path that reads as protocol-relative once dot-segments
  // go ("/.//evil.example/" parses to the path "//evil.example/"): refused; and what is followed
  // is the whole parsed URL, never a path a later parse could read otherwise.
  if (/^[/\\]{2}/.test(url.pathname)) return "";
  return url.href;
}

const query = new URLSearchParams(location.search);
const page = {
  room: query.get("room") || "",
  next: sameSitePath(query.get("next")),
  demo: query.get("demo") || "",
  people: null, // demo people, when this is the demo
  stored: [],
  busy: false,
  progress: "",
  error: null, // {code, message}
  done: null, // the login's answer, when there is no room to go to
};

/** A refusal the page shows: the server's {code, message, detail} or a local KeyFileError. */
class LoginError extends Error {
  constructor(code, message = code, detail = {}) {
    super(message);
    this.code = code;
    this.detail = detail;
  }
}

// start -----------------------------------------------------------------------------------

function boot() {
  byId("lang").addEventListener("click", switchLanguage);
  byId("key-form").addEventListener("submit", onUpload);
  byId("demo-signin").addEventListener("click", () => withBusy(() => demoSignIn(page.demo)));
  render();
  loadStored();
  loadDemo();
}

async function loadStored() {
  try {
    page.stored = await keystore.list();
  } catch {
    page.stored = []; // IndexedDB blocked (some private modes): upload still works per visit
  }
  render();
}

async function loadDemo() {
  let response;
  try {
    response = await fetch("/api/demo/people", { headers: { Accept: "application/json" } });
  } catch {
    response = null;
  }
  if (response?.ok) page.people = await response.json();
  if (page.demo && !page.people) page.error = new LoginError("demo_unavailable");
  else if (page.demo && !demoPerson()) page.error = new LoginError("demo_unknown");
  render();
}

function demoPerson() {
  return page.people?.find((p) => p.id === page.demo) || null;
}

// the three ways to a key -----------------------------------------------------------------

async function onUpload(event) {
  event.preventDefault();
  await withBusy(async () => {
    const keyFile = byId("key-file").files[0];
    const certFile = byId("cert-file").files[0];
    const password = byId("password").value;
    if (!keyFile) throw new LoginError("key_file_missing");
    setProgress(t("login.progress.reading"));
    const found = await pkcs.readKeyFile(await keyFile.arrayBuffer(), password);
    if (!found.pkcs8) throw new LoginError("no_private_key");
    const certificates = [...found.certificates];
    if (certFile) certificates.push(...pkcs.readCertificateFile(await certFile.arrayBuffer()).map((c) => c.der));
    if (!certificates.length) throw new LoginError("certificate_required");
    const record = await storeIdentity(found.pkcs8, certificates);
    byId("password").value = "";
    await signIn(record);
  });
}

async function demoSignIn(id) {
  setProgress(t("login.progress.demo"));
  const response = await fetch(`/api/demo/people/${encodeURIComponent(id)}`);
  if (!response.ok) throw await serverError(response);
  const files = await response.json();
  const [key] = pkcs.pemBlocks(files.key_pkcs8_pem).filter((b) => b.label === "PRIVATE KEY");
  if (!key) throw new LoginError("no_private_key");
  const certificates = [files.certificate_pem, ...files.chain_pem].flatMap((pem) =>
    pkcs.pemBlocks(pem).filter((b) => b.label === "CERTIFICATE").map((b) => b.der));
  await signIn(await storeIdentity(key.der, certificates));
}

async function storedSignIn(id) {
  const record = await keystore.load(id);
  if (!record) throw new LoginError("stored_missing");
  await signIn(record);
}

async function forgetStored(id) {
  await keystore.forget(id);
  page.stored = await keystore.list();
  setProgress(t("login.stored.forgotten"));
}

/**
 * Import the key non-extractable, find its certificate among `certificates` (the one whose public
 * key verifies the key's signature), and store both with the rest of the chain.
 */
async function storeIdentity(pkcs8, certificates) {
  setProgress(t("login.progress.importing"));
  const kind = pkcs.privateKeyKind(pkcs8);
  const keys = await keystore.importPrivateKey(pkcs8, kind);
  pkcs8.fill(0); // our copy of the key bytes; WebCrypto holds the key from now on
  const certs = certificates.map((der) => pkcs.readCertificate(der.slice()));
  let leaf = null;
  for (const cert of certs) {
    if (await keystore.keyMatches(keys, cert)) {
      leaf = cert;
      break;
    }
  }
  if (!leaf) throw new LoginError(certs.length ? "key_mismatch" : "certificate_required");
  const chain = certs.filter((c) => c !== leaf && !c.selfIssued).slice(0, MAX_CHAIN);
  const record = {
    id: await keystore.fingerprint(leaf.der),
    ...keys,
    // slice(): each certificate in its own buffer, so nothing else of the key file is stored
    certificate: leaf.der.slice(),
    chain: chain.map((c) => c.der.slice()),
    name: leaf.subject.commonName || "",
    organisation: leaf.subject.organisation || "",
    organisationId: leaf.subject.organisationId || "",
    notAfter: leaf.notAfter,
    storedAt: new Date().toISOString(),
  };
  try {
    await keystore.save(record);
  } catch {
    // not stored (IndexedDB unavailable): this sign-in still works, the next needs the file again
  }
  return record;
}

// the login itself ------------------------------------------------------------------------

async function signIn(record) {
  setProgress(t("login.progress.signing"));
  const challenge = await postJson("/api/login/challenge", {});
  // Sign only a challenge for this very site: a page elsewhere cannot borrow our signature.
  if (challenge.origin !== location.origin) throw new LoginError("challenge_origin");
  const message = new TextEncoder().encode(`${LOGIN_PREFIX}${challenge.origin}\n${challenge.challenge}`);
  const signature = await keystore.sign(record, message);
  const answer = await postJson("/api/login", {
    challenge: challenge.challenge,
    certificate: pkcs.toBase64(record.certificate),
    chain: record.chain.map(pkcs.toBase64),
    signature: pkcs.toBase64(signature),
  });
  sessionStorage.setItem(SESSION_KEY, JSON.stringify({
    token: answer.token, expires_at: answer.expires_at, roles: answer.roles, holder: answer.holder,
  }));
  if (page.room) {
    sessionStorage.setItem(`bidroom.token.${page.room}`, answer.token);
    setProgress(t("login.progress.entering"));
    // an evaluation session's room is its opening's, "-evaluation-<n>" (bidroom/evaluations.py)
    const where = /-evaluation-\d+$/.test(page.room) ? "/evaluation.html"
      : page.room.startsWith("opening-") ? "/opening.html" : "/room.html";
    location.assign(`${where}?room=${encodeURIComponent(page.room)}`);
    return;
  }
  if (page.next) {
    setProgress(t("login.progress.entering"));
    location.assign(page.next);
    return;
  }
  page.done = answer;
  page.stored = await keystore.list().catch(() => page.stored);
  setProgress("");
}

async function postJson(path, body) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
  } catch {
    throw new LoginError("network");
  }
  if (!response.ok) throw await serverError(response);
  return response.json();
}

async function serverError(response) {
  try {
    const body = await response.json();
    return new LoginError(body.code || `http_${response.status}`, body.message, body.detail || {});
  } catch {
    return new LoginError(`http_${response.status}`, response.statusText);
  }
}

/** Run one sign-in attempt: buttons off meanwhile, any failure shown by its code. */
async function withBusy(action) {
  if (page.busy) return;
  page.busy = true;
  page.error = null;
  page.done = null;
  render();
  try {
    await action();
  } catch (error) {
    page.error = error instanceof LoginError || error instanceof pkcs.KeyFileError
      ? error
      : new LoginError("unexpected", error?.message || String(error));
    page.progress = "";
  } finally {
    page.busy = false;
    render();
  }
}

function setProgress(text) {
  page.progress = text;
  byId("login-progress").textContent = text;
}

// rendering -------------------------------------------------------------------------------

function render() {
  i18n.translatePage();
  document.title = `${t("login.title")} · ${t("app.name")}`;
  const lang = byId("lang");
  lang.textContent = t("lang.switch");
  lang.setAttribute("aria-label", t("lang.switch.label"));
  const room = byId("login-room");
  room.hidden = !page.room;
  room.textContent = page.room ? t("login.room", { room: page.room }) : "";
  renderError();
  byId("login-progress").textContent = page.progress;
  renderDone();
  renderDemo();
  renderStored();
  // A demo link is one click: the demo person's button, nothing else to choose from.
  byId("upload").hidden = Boolean(demoPerson());
  for (const el of document.querySelectorAll("main button, main input")) el.disabled = page.busy;
}

function renderError() {
  const el = byId("login-error");
  el.hidden = !page.error;
  if (!page.error) return;
  const { code } = page.error;
  el.textContent = t("login.error", { text: i18n.errorText(page.error), code });
}

function renderDone() {
  const answer = page.done;
  byId("done").hidden = !answer;
  if (!answer) return;
  const { holder } = answer;
  const name = holder.name || holder.subject;
  const organisation = holder.organisation && holder.organisation !== name ? holder.organisation : "";
  byId("done-who").textContent = t(organisation ? "login.done.who" : "login.done.whoAlone", { name, organisation });
  byId("done-roles").textContent = t("login.done.roles", {
    roles: answer.roles.map((r) => t(`role.${r}`)).join(t("login.listSep")),
  });
}

function renderDemo() {
  const person = demoPerson();
  byId("demo").hidden = !person;
  if (person) {
    fill(byId("demo-person"),
      h("dt", {}, person.name),
      h("dd", {}, h("span", { class: `role role-${person.role}` }, t(`role.${person.role}`))),
      h("dt", { class: "muted" }, t("me.organisation")), h("dd", {}, person.organisation));
    const button = byId("demo-signin");
    button.textContent = t("login.demo.one", { name: person.name });
  }
  const others = !page.demo && page.people?.length ? page.people : [];
  byId("demo-list").hidden = !others.length;
  fill(byId("demo-people"), others.map((p) => h("li", { class: "choice" },
    h("div", { class: "choice-main" },
      h("div", { class: "person-name" }, p.name, " ", h("span", { class: `role role-${p.role}` }, t(`role.${p.role}`))),
      h("div", { class: "muted" }, p.organisation)),
    h("button", {
      type: "button", class: "primary", "data-demo": p.id, disabled: page.busy,
      onclick: () => withBusy(() => demoSignIn(p.id)),
    }, t("login.demo.as", { name: p.name })),
  )));
}

function renderStored() {
  byId("stored").hidden = !page.stored.length || Boolean(demoPerson());
  fill(byId("stored-list"), page.stored.map((r) => h("li", { class: "choice" },
    h("div", { class: "choice-main" },
      h("div", { class: "person-name" }, r.name || r.organisation),
      r.organisation && r.organisation !== r.name && h("div", { class: "muted" }, r.organisation),
      h("div", { class: "muted small" },
        t("login.stored.until", { date: i18n.formatDateTime(r.notAfter) }), " · ",
        t(`login.kind.${r.kind}`), " · ", `SHA-256 ${r.id.slice(0, 16)}…`)),
    h("div", { class: "person-actions" },
      h("button", {
        type: "button", class: "primary", "data-stored": r.id, disabled: page.busy,
        onclick: () => withBusy(() => storedSignIn(r.id)),
      }, t("login.stored.use")),
      h("button", {
        type: "button", class: "danger", "data-forget": r.id, disabled: page.busy,
        "aria-label": t("login.stored.forget.label", { name: r.name }),
        onclick: () => withBusy(() => forgetStored(r.id)),
      }, t("login.stored.forget"))),
  )));
}

function switchLanguage() {
  i18n.setLang(i18n.lang() === "zh-CN" ? "en" : "zh-CN");
  render();
}

boot();
