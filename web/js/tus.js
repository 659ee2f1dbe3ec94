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
// - A network error, a 409 offset_mismatch or upload_busy resyncs with HEAD and continues from the
//   server's offset, a few times with growing pauses; then the upload stops as "interrupted" and
//   start() may be called again.
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
const RETRIES = [500, 1000, 2000, 4000];
// Worth another try after a HEAD: the link dropped, our offset is stale, or the server is still
// finishing a request the dropped link had started.
const RETRY_CODES = new Set(["network", "offset_mismatch", "upload_busy", "http_502", "http_503", "http_504"]);
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
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new TusError("aborted"));
    }, { once: true });
  });

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
   *          metadata?: object, onProgress?: (sent: number, total: number) => void,
   *          onState?: (state: string, detail?: object) => void}} options
   */
  constructor(blob, options) {
    this.blob = blob;
    this.endpoint = options.endpoint;
    this.token = options.token;
    this.fingerprint = options.fingerprint;
    this.chunkSize = options.chunkSize || CHUNK;
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
    let failures = 0;
    this.onState("uploading");
    while (this.offset < this.blob.size) {
      try {
        await this._patch(signal);
        failures = 0;
      } catch (error) {
        if (signal.aborted) throw error;
        if (error.code === "upload_finished") return; // the last PATCH's answer was lost
        const retry = RETRY_CODES.has(error.code);
        if (!retry || failures >= RETRIES.length) {
          if (retry) throw new TusError("upload_interrupted", error.message, { detail: { offset: this.offset } });
          throw error;
        }
        this.onState("retrying", { attempt: failures + 1, offset: this.offset });
        await sleep(RETRIES[failures], signal);
        failures += 1;
        const offset = await this._head(this.url, signal).catch((e) => {
          if (signal.aborted) throw e;
          return this.offset; // still offline: the last offset the server acknowledged
        });
        if (offset === null) throw new TusError("upload_gone", "the server no longer has this upload");
        this.offset = offset;
        this.onProgress(offset, this.blob.size);
        this.onState("uploading");
      }
    }
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
    for (let i = 0; ; i++) {
      const response = await this._fetch(this.url, {
        headers: this._headers({ Accept: "application/json" }),
        signal,
        cache: "no-store",
      });
      if (!response.ok) throw await refusal(response);
      const status = await response.json();
      if (status.status !== "uploading") return status;
      if (Date.now() - started > POLL_LIMIT_MS) throw new TusError("upload_unconfirmed");
      await sleep(POLL_MS[Math.min(i, POLL_MS.length - 1)], signal);
    }
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
