// The landing page: the room directory (GET /api/rooms). Joining needs a sign-in link; the room
// page opened from here without one explains that instead of failing silently.

import { byId, fill, h } from "./dom.js";
import * as i18n from "./i18n.js";

const { t } = i18n;
let rooms = null;
let failure = "";

async function load() {
  byId("rooms-status").textContent = t("index.loading");
  try {
    const response = await fetch("/api/rooms");
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    rooms = await response.json();
  } catch (error) {
    failure = error.message;
  }
  render();
}

function render() {
  i18n.translatePage();
  document.title = t("app.name");
  const button = byId("lang");
  button.textContent = t("lang.switch");
  button.setAttribute("aria-label", t("lang.switch.label"));
  if (failure) byId("rooms-status").textContent = t("index.failed", { message: failure });
  else if (rooms) byId("rooms-status").textContent = rooms.length ? "" : t("index.empty");
  fill(byId("rooms"), (rooms || []).map(roomItem));
}

function roomItem(room) {
  const link = `/room.html?room=${encodeURIComponent(room.id)}`;
  return h("li", {},
    h("div", { class: "room-title" }, room.title),
    h("div", { class: "muted" },
      kindLabel(room.kind),
      " · ", t("index.created", { time: i18n.formatDateTime(room.created_at) }), ` (${t("time.beijing")})`),
    h("a", { href: link }, t("index.open")),
  );
}

/** The room kind in the page's language; a kind this page does not know shows as it is. */
function kindLabel(kind) {
  const key = `index.kind.${kind}`;
  return t(key) === key ? kind : t(key);
}

byId("lang").addEventListener("click", () => {
  i18n.setLang(i18n.lang() === "zh-CN" ? "en" : "zh-CN");
  render();
});
render();
load();
