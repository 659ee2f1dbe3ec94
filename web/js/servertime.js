// The platform's time, for every countdown on every page.
//
// A bidder's computer may be minutes off; a countdown read from it would say "time is up" while
// there is time left, or show time left when the window has closed. So pages count from now(),
// the computer's clock corrected by an offset estimated from the server's HTTP Date header:
//
//   - a Date header says the server's time in whole seconds, refreshed about once a second
//     (uvicorn), so when a response sent at local time `sent` comes back at `received`, the
//     server's clock at that moment lies in [date, date + DATE_SLACK_MS), which bounds the
//     offset (server - local) to [date - received, date + DATE_SLACK_MS - sent];
//   - a few probes (HEAD /healthz, a burst spread over a couple of seconds so their sub-second
//     phases differ) intersect these intervals; the estimate is the middle, good to about a
//     second, which is what a countdown in seconds and a 30 s warning need;
//   - pages also feed their own API answers (learn()); an empty intersection means a clock
//     moved (the computer's, set by hand): the newest interval wins;
//   - probes again every 10 minutes, when the page comes back to the foreground or online, and
//     when the computer's clock jumps against the monotonic one.
//
// A clock off by more than SKEW_WARN_MS is shown in #clock-skew (zh-CN first, English).
// Rules of this file: no room logic; renders only #clock-skew.

import * as i18n from "./i18n.js";

export const SKEW_WARN_MS = 30000;
const DATE_SLACK_MS = 2000;
const PROBE = "/healthz";
const BURST_GAP_MS = 370; // five probes 370 ms apart cover every phase of a second
const BURST = 5;
const RESYNC_MS = 10 * 60 * 1000;
const JUMP_MS = 2000;

const clock = {
  low: -Infinity, // bounds of server - local, ms
  high: Infinity,
  samples: 0,
  syncing: null,
  anchor: null, // {wall, mono}: to notice the computer's clock jumping
  listeners: new Set(),
};

/** The server's time now, in ms since the epoch (the computer's until the first answer). */
export function now() {
  return Date.now() + offset();
}

/** Server time minus the computer's, ms (0 until known). */
export function offset() {
  if (!clock.samples) return 0;
  return Math.round(Number.isFinite(clock.high) ? (clock.low + clock.high) / 2 : clock.low + DATE_SLACK_MS / 2);
}

/** Whether at least one answer from the server has told its time. */
export function known() {
  return clock.samples > 0;
}

/** Whether the computer's clock is off by more than SKEW_WARN_MS. */
export function skewed() {
  return known() && Math.abs(offset()) > SKEW_WARN_MS;
}

/** Call `fn` whenever the estimate changes (a countdown re-renders). */
export function onChange(fn) {
  clock.listeners.add(fn);
}

/**
 * Take the server's time from a fetch Response: `sent` and `received` are Date.now() just
 * before the request and just after the answer's headers.
 */
export function learn(response, sent, received = Date.now()) {
  const date = Date.parse(response?.headers?.get("Date") || "");
  if (Number.isNaN(date) || !(received >= sent)) return;
  const low = date - received;
  const high = date + DATE_SLACK_MS - sent;
  const before = offset();
  if (low > clock.high || high < clock.low) {
    clock.low = low; // a clock moved: start again from this answer
    clock.high = high;
  } else {
    clock.low = Math.max(clock.low, low);
    clock.high = Math.min(clock.high, high);
  }
  clock.samples += 1;
  clock.anchor = { wall: Date.now(), mono: performance.now() };
  if (offset() !== before || clock.samples === 1) changed();
}

/** Probe the server a few times (at most one burst at a time); resolves when done. */
export function sync() {
  if (!clock.syncing) {
    clock.syncing = burst().finally(() => {
      clock.syncing = null;
    });
  }
  return clock.syncing;
}

async function burst() {
  for (let i = 0; i < BURST; i++) {
    if (i) await new Promise((resolve) => setTimeout(resolve, BURST_GAP_MS));
    const sent = Date.now();
    try {
      const response = await fetch(PROBE, { method: "HEAD", cache: "no-store" });
      learn(response, sent, Date.now());
    } catch {
      return; // offline: the next sync will do
    }
  }
}

/** Start keeping time: a burst now, again now and then, and #clock-skew kept current. */
export function start() {
  sync();
  setInterval(followJumps, 1000);
  setInterval(sync, RESYNC_MS);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") sync();
  });
  window.addEventListener("online", () => sync());
  onChange(renderSkew);
}

/** The computer's clock was set (by hand, or by NTP): the offset moves by as much, at once. */
function followJumps() {
  const anchor = clock.anchor;
  if (!anchor) return;
  const jump = Date.now() - anchor.wall - (performance.now() - anchor.mono);
  if (Math.abs(jump) <= JUMP_MS) return;
  clock.low -= jump;
  clock.high -= jump;
  clock.anchor = { wall: Date.now(), mono: performance.now() };
  changed();
  sync();
}

function changed() {
  for (const fn of clock.listeners) {
    try {
      fn();
    } catch (error) {
      console.warn(error);
    }
  }
}

/** Show (or hide) the warning about the computer's clock in #clock-skew, in the page's language. */
export function renderSkew() {
  const el = document.getElementById("clock-skew");
  if (!el) return;
  const off = offset();
  el.hidden = !skewed();
  el.dataset.offsetMs = known() ? String(off) : "";
  el.textContent = skewed() ? i18n.t(off < 0 ? "clock.skew.fast" : "clock.skew.slow", { amount: duration(Math.abs(off)) }) : "";
}

function duration(ms) {
  const seconds = Math.round(ms / 1000);
  const [m, s] = [Math.floor(seconds / 60), seconds % 60];
  return i18n.t(m ? "clock.skew.minutes" : "clock.skew.seconds", { m, s });
}
