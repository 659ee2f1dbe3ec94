// A tus 1.0.0 client (core + creation), as the platform speaks it (docs/opening.md, Bids):
//
//   const upload = new Upload(blob, {endpoint, token, fingerprint, onProgress, onState});
//   const status = await upload.start();   // the server's GET /api/uploads/<id> answer
//   upload.abort();                        // stops; the upload can resume later
//
// - Creation: POST <endpoint> with Upload-Length; the Location is remembered in localStorage
//   under the fingerprint (lot + subject + the envelope's SHA-256, or a file's name/size/date),
//   so a reload or another visit resumes the same upload instead of starting over.
// - Resuming: HEAD <upload> gives the server's Upload-Offset; PATCH sends the rest from there in
//   chunks (4 MiB by default) with Content-Type application/offset+octet-stream.
// - A network error, a 409 offset_mismatch or upload_busy (or a 502/503/504) pauses, asks HEAD for
//   the server's offset (asking again while the link is down) and continues from there, never from
//   its own count. As `bidroom bid upload` does (bidroom/tus_client.py), the pauses grow (0.5 s
//   doubling, capped at 15 s, jittered) and the upload gives up only after `retryFor` ms (default
//   300 s) without the server taking a byte: an island's link drops for seconds to minutes. Then it
//   stops as "upload_interrupted" and start() may be called again; abort() stops it at any time.
// - Progress (onProgress) is what the server acknowledged (HEAD and PATCH Upload-Offset), never
//   what was handed to fetch: a cut loses the bytes in flight, and the bar must not claim them.
// - When the last byte is in, the server checks the envelope; GET <upload> tells the outcome
//   ("accepted" with the bid, or "refused" with the error), polled until it is not "uploading".
// - Every request carries Authorization: Bearer <session token> and Tus-Resumable: 1.0.0.
//
// Rules of this file: no DOM; errors are TusError with the server's stable code.

export const TUS_VERSION = "1.0.0";
export const CHUNK = 4 << 20;
const STORE_PREFIX = "bidroom.tus.";
export const RETRY_FOR_MS = 300_000; // without progress before giving up (the CLI's default too)
const BACKOFF_MS = [500, 15_000]; // the first pause and the longest
// Worth another try after a HEAD: the link dropped, our offset is stale, or the server is still
// finishing a request the dropped link had started.
const RETRY_CODES = new Set([
  "network", "offset_mismatch", "upload_busy", "body_timeout", "http_502", "http_503", "http_504",
]);
const POLL_MS = [100, 200, 400, 800, 1000];
const POLL_LIMIT_MS = 120000;

export class TusError extends Error {
  constructor(code, message = code, { status = 0, detail = {} } = {}) {
    super(message);
    this.name = "TusError";
    this.code = code;
    this.status = status;
    this.detail = detail;
  }
}

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new TusError("aborted"));
    const stop = () => {
      clearTimeout(timer);
      reject(new TusError("aborted"));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", stop);
      resolve();
    }, ms);
    signal?.addEventListener("abort", stop, { once: true });
  });

/** The pause before try `attempt` (0, 1, ...): doubling up to the cap, the upper half jittered
 * so that clients cut off together do not all come back in the same instant. */
export function backoff(attempt) {
  const [first, cap] = BACKOFF_MS;
  const ceiling = Math.min(cap, first * 2 ** Math.min(attempt, 32));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** How long a troubled link is waited for: `retryFor` ms since the server last took a byte. */
class Patience {
  constructor(retryFor) {
    this.retryFor = retryFor;
    this.attempt = 0;
    this.since = null; // when the trouble began; null while things go well
  }

  progressed() {
    this.attempt = 0;
    this.since = null;
  }

  /** The next pause in ms, or null once the budget is spent. */
  next() {
    const now = Date.now();
    if (this.since === null) this.since = now;
    const pause = backoff(this.attempt);
    if (now + pause - this.since > this.retryFor) return null;
    this.attempt += 1;
    return pause;
  }
}

/** The remembered upload URL for a fingerprint, or null. */
export function remembered(fingerprint) {
  try {
    return JSON.parse(localStorage.getItem(STORE_PREFIX + fingerprint) || "null");
  } catch {
    return null;
  }
}

function remember(fingerprint, value) {
  try {
    if (value) localStorage.setItem(STORE_PREFIX + fingerprint, JSON.stringify(value));
    else localStorage.removeItem(STORE_PREFIX + fingerprint);
  } catch {
    // storage blocked: resuming works within this page only
  }
}

/** The server's error body as a TusError (its {code, message, detail}), else the HTTP status. */
async function refusal(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: the status speaks
  }
  const code = body?.code || (response.status === 413 ? "upload_too_large" : `http_${response.status}`);
  return new TusError(code, body?.message || response.statusText, {
    status: response.status,
    detail: body?.detail || {},
  });
}

export class Upload {
  /**
   * @param {Blob} blob what to upload
   * @param {{endpoint: string, token: string, fingerprint: string, chunkSize?: number,
   *          retryFor?: number, metadata?: object,
   *          onProgress?: (sent: number, total: number) => void,
   *          onState?: (state: string, detail?: object) => void}} options
   */
  constructor(blob, options) {
    this.blob = blob;
    this.endpoint = options.endpoint;
    this.token = options.token;
    this.fingerprint = options.fingerprint;
    this.chunkSize = options.chunkSize || CHUNK;
    this.retryFor = options.retryFor ?? RETRY_FOR_MS;
    this.onProgress = options.onProgress || (() => {});
    this.onState = options.onState || (() => {});
    this.url = null;
    this.offset = 0;
    this.controller = null;
  }

  /** Stop now (a user's "pause" or leaving the page); start() resumes from the server's offset. */
  abort() {
    this.controller?.abort();
  }

  /** Upload (or resume) to the end; resolves with GET <upload> once accepted, else throws. */
  async start() {
    this.controller = new AbortController();
    const { signal } = this.controller;
    try {
      await this._locate(signal);
      await this._send(signal);
      this.onState("checking");
      const status = await this._outcome(signal);
      remember(this.fingerprint, null);
      if (status.status !== "accepted") {
        const error = status.error || {};
        throw new TusError(error.code || "bid_refused", error.message, { detail: error.detail || {} });
      }
      return status;
    } catch (error) {
      if (signal.aborted) throw new TusError("aborted");
      throw error;
    }
  }

  /** Forget the remembered upload and ask the server to drop its bytes (termination). */
  async cancel() {
    this.abort();
    const saved = remembered(this.fingerprint);
    remember(this.fingerprint, null);
    if (!saved?.url) return;
    try {
      await fetch(saved.url, { method: "DELETE", headers: this._headers() });
    } catch {
      // the server drops unfinished uploads on its own as well
    }
  }

  _headers(extra = {}) {
    return { "Tus-Resumable": TUS_VERSION, Authorization: `Bearer ${this.token}`, ...extra };
  }

  /** The upload URL and the server's offset: a remembered upload, or a new one. */
  async _locate(signal) {
    const saved = remembered(this.fingerprint);
    if (saved?.url && saved.length === this.blob.size) {
      this.onState("resuming");
      const offset = await this._head(saved.url, signal);
      if (offset !== null) {
        this.url = saved.url;
        this.offset = offset;
        this.onProgress(offset, this.blob.size);
        return;
      }
      remember(this.fingerprint, null);
    }
    await this._create(signal);
  }

  async _create(signal) {
    this.onState("creating");
    const response = await this._fetch(this.endpoint, {
      method: "POST",
      headers: this._headers({ "Upload-Length": String(this.blob.size) }),
      signal,
    });
    if (response.status !== 201) throw await refusal(response);
    const location = response.headers.get("Location");
    if (!location) throw new TusError("upload_no_location", "the server gave no upload URL");
    this.url = new URL(location, new URL(this.endpoint, globalThis.location.href)).href;
    this.offset = 0;
    remember(this.fingerprint, { url: this.url, length: this.blob.size, created: new Date().toISOString() });
  }

  /** The server's offset for `url`; null when the upload is gone (404/410) or no longer ours. */
  async _head(url, signal) {
    const response = await this._fetch(url, { method: "HEAD", headers: this._headers(), signal, cache: "no-store" });
    if ([403, 404, 410].includes(response.status)) return null;
    if (!response.ok) throw await refusal(response);
    const offset = Number(response.headers.get("Upload-Offset"));
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > this.blob.size) {
      throw new TusError("upload_offset", "the server's Upload-Offset is not usable");
    }
    return offset;
  }

  /** PATCH chunks from the server's offset to the end, resyncing after network errors. */
  async _send(signal) {
    const patience = new Patience(this.retryFor);
    this.onState("uploading");
    while (this.offset < this.blob.size) {
      try {
        await this._patch(signal);
        patience.progressed();
      } catch (error) {
        if (signal.aborted) throw error;
        if (error.code === "upload_finished") return; // the last PATCH's answer was lost
        if (!RETRY_CODES.has(error.code)) throw error;
        await this._resync(patience, error, signal);
        this.onState("uploading");
      }
    }
  }

  /** Pause, then ask HEAD where the server is (again while the link stays down, as long as
   * patience lasts): the next PATCH starts there. The bar moves to what HEAD says. */
  async _resync(patience, error, signal) {
    for (;;) {
      await this._pause(patience, error, signal);
      let offset;
      try {
        offset = await this._head(this.url, signal);
      } catch (failed) {
        if (signal.aborted || !RETRY_CODES.has(failed.code)) throw failed;
        error = failed; // still offline: wait longer
        continue;
      }
      if (offset === null) throw new TusError("upload_gone", "the server no longer has this upload");
      if (offset > this.offset) patience.progressed(); // the cut PATCH's bytes got there
      this.offset = offset;
      this.onProgress(offset, this.blob.size);
      return;
    }
  }

  /** Wait before the next try ("retrying", attempt N); upload_interrupted once out of patience. */
  async _pause(patience, error, signal) {
    const pause = patience.next();
    if (pause === null) {
      throw new TusError("upload_interrupted", error.message, { detail: { offset: this.offset } });
    }
    this.onState("retrying", { attempt: patience.attempt, offset: this.offset });
    await sleep(pause, signal);
  }

  async _patch(signal) {
    const end = Math.min(this.blob.size, this.offset + this.chunkSize);
    const response = await this._fetch(this.url, {
      method: "PATCH",
      headers: this._headers({
        "Content-Type": "application/offset+octet-stream",
        "Upload-Offset": String(this.offset),
      }),
      body: this.blob.slice(this.offset, end),
      signal,
    });
    if (response.status !== 204) throw await refusal(response);
    const offset = Number(response.headers.get("Upload-Offset"));
    if (!Number.isSafeInteger(offset) || offset <= this.offset || offset > this.blob.size) {
      throw new TusError("upload_offset", "the server's Upload-Offset is not usable");
    }
    this.offset = offset;
    this.onProgress(offset, this.blob.size);
  }

  /** GET <upload> until the server has decided: accepted (with the bid) or refused. */
  async _outcome(signal) {
    const started = Date.now();
    const patience = new Patience(this.retryFor);
    for (let i = 0; ; i++) {
      let status;
      try {
        status = await this._status(signal);
      } catch (error) {
        if (signal.aborted || !RETRY_CODES.has(error.code)) throw error;
        await this._pause(patience, error, signal); // the link dropped while the server checks
        this.onState("checking");
        continue;
      }
      patience.progressed();
      if (status.status !== "uploading") return status;
      if (Date.now() - started > POLL_LIMIT_MS) throw new TusError("upload_unconfirmed");
      await sleep(POLL_MS[Math.min(i, POLL_MS.length - 1)], signal);
    }
  }

  async _status(signal) {
    const response = await this._fetch(this.url, {
      headers: this._headers({ Accept: "application/json" }),
      signal,
      cache: "no-store",
    });
    if (!response.ok) throw await refusal(response);
    return response.json();
  }

  /** fetch, with a network failure as TusError("network") (an abort stays an abort). */
  async _fetch(url, init) {
    try {
      return await fetch(url, init);
    } catch (error) {
      if (init.signal?.aborted) throw new TusError("aborted");
      throw new TusError("network", error?.message || "network error");
    }
  }
}
