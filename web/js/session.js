// The signed-in session a room page works with: the token handed over in the URL's fragment or
// left by the certificate login (login.js), and the holder's key in this browser's key store.

import * as keystore from "./keystore.js";

export const SESSION_KEY = "bidroom.session"; // what login.js leaves in this tab

/** login.js's session in this tab ({token, expires_at, holder}), unless it has expired. */
export function loginSession() {
  try {
    const session = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    if (session?.token && !(Date.parse(session.expires_at) <= Date.now())) return session;
  } catch {
    // not ours, or damaged: sign in again
  }
  return null;
}

/**
 * The room's token. It travels in the fragment (never sent to the server or its logs): it moves
 * to sessionStorage and out of the address bar, so it is not bookmarked, shared or
 * screenshotted, while a reload of this tab still signs in. Else the login's token, or "".
 */
export function takeToken(room) {
  const key = `bidroom.token.${room}`;
  const fromUrl = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromUrl) {
    sessionStorage.setItem(key, fromUrl);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return fromUrl || sessionStorage.getItem(key) || loginSession()?.token || "";
}

/** The signed-in holder's key record (keystore.js), or the only one stored; null if none. */
export async function holderKey() {
  const wanted = String(loginSession()?.holder?.fingerprint || "").toLowerCase().replace(/[^0-9a-f]/g, "");
  const record = wanted ? await keystore.load(wanted).catch(() => null) : null;
  if (record) return record;
  const stored = await keystore.list().catch(() => []);
  return stored.length === 1 ? stored[0] : null;
}
