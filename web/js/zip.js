// A minimal ZIP writer for the bid's plaintext (docs/opening.md, Bids): stored members (no
// compression), CRC-32, UTF-8 names (general purpose flag bit 11), local headers and a central
// directory, `bid.json` first.
//
//   zip([{name, data: Blob | Uint8Array | string}], {date}) -> Blob
//
// Choices:
// - Stored, not deflated: bid documents are mostly PDFs and images that do not shrink, and the
//   envelope's integrity and the opening do not depend on it. Readers (Python zipfile, 7-Zip,
//   Windows Explorer) all read stored members.
// - Streaming: a member's CRC-32 is computed over Blob.slice() pieces of 1 MiB, and the result is
//   a Blob made of the headers and the members' own Blobs: nothing large is copied into one array
//   (the browser keeps blob data outside the JS heap).
// - No ZIP64: a member or the archive over 4 GiB - 1 is refused (bids are far below that; the
//   platform's limit is BIDROOM_MAX_BID_BYTES).

const PIECE = 1 << 20;
const MAX32 = 0xffffffff;
const UTF8_FLAG = 0x0800;
const VERSION = 20; // 2.0: stored members, no ZIP64
export const FIRST = "bid.json";

export class ZipError extends Error {
  constructor(message, code = "zip_invalid") {
    super(message);
    this.name = "ZipError";
    this.code = code;
  }
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE, as zlib.crc32) of `bytes`, continuing from `crc` (0 to start). */
export function crc32(bytes, crc = 0) {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** CRC-32 of a whole Blob, read one piece at a time. */
export async function blobCrc32(blob) {
  let crc = 0;
  for (let at = 0; at < blob.size; at += PIECE) {
    crc = crc32(new Uint8Array(await blob.slice(at, at + PIECE).arrayBuffer()), crc);
  }
  return crc;
}

/** MS-DOS time and date of `date` as the local wall clock (ZIP has no time zone). */
function dosTime(date) {
  const year = Math.min(Math.max(date.getFullYear(), 1980), 2107);
  return {
    time: (date.getHours() << 11) | (date.getMinutes() << 5) | (date.getSeconds() >> 1),
    date: ((year - 1980) << 9) | ((date.getMonth() + 1) << 5) | date.getDate(),
  };
}

function header(size) {
  const bytes = new Uint8Array(size);
  return { bytes, view: new DataView(bytes.buffer) };
}

function asBlob(data) {
  if (data instanceof Blob) return data;
  if (typeof data === "string") return new Blob([new TextEncoder().encode(data)]);
  if (data instanceof Uint8Array || data instanceof ArrayBuffer) return new Blob([data]);
  throw new ZipError("a member's data is a Blob, a Uint8Array or a string");
}

/** A member name a reader will not turn into a path outside the archive. */
function checkName(name) {
  const bad =
    typeof name !== "string" ||
    !name ||
    name.startsWith("/") ||
    name.includes("\\") ||
    name.includes("\0") ||
    name.split("/").some((part) => part === ".." || part === "." || part === "");
  if (bad) throw new ZipError(`not a member name: ${JSON.stringify(name)}`, "zip_name");
  return name;
}

/** The members in archive order: bid.json first, names unique. */
function ordered(entries) {
  const seen = new Set();
  for (const entry of entries) {
    checkName(entry.name);
    if (seen.has(entry.name)) throw new ZipError(`two members named ${entry.name}`, "zip_duplicate");
    seen.add(entry.name);
  }
  const first = entries.filter((e) => e.name === FIRST);
  return [...first, ...entries.filter((e) => e.name !== FIRST)];
}

/**
 * The archive as a Blob (type application/zip). `date`: the members' modification time
 * (default now). `progress(done, total)` after each member's CRC, in bytes.
 */
export async function zip(entries, { date = new Date(), progress = null } = {}) {
  const members = ordered(entries).map((e) => ({ name: e.name, blob: asBlob(e.data) }));
  const total = members.reduce((n, m) => n + m.blob.size, 0);
  const stamp = dosTime(date);
  const encoder = new TextEncoder();
  const parts = [];
  const central = [];
  let offset = 0;
  let done = 0;
  for (const member of members) {
    const name = encoder.encode(member.name);
    const size = member.blob.size;
    if (size > MAX32 || offset > MAX32) throw new ZipError("too large for a ZIP without ZIP64", "zip_too_large");
    const crc = await blobCrc32(member.blob);
    const local = header(30 + name.length);
    const lv = local.view;
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, VERSION, true);
    lv.setUint16(6, UTF8_FLAG, true);
    lv.setUint16(8, 0, true); // stored
    lv.setUint16(10, stamp.time, true);
    lv.setUint16(12, stamp.date, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, size, true);
    lv.setUint32(22, size, true);
    lv.setUint16(26, name.length, true);
    lv.setUint16(28, 0, true);
    local.bytes.set(name, 30);
    parts.push(local.bytes, member.blob);
    central.push(centralEntry(name, crc, size, offset, stamp));
    offset += local.bytes.length + size;
    done += size;
    if (progress) progress(done, total);
  }
  const directory = new Blob(central);
  if (offset > MAX32 || members.length > 0xffff) throw new ZipError("too large for a ZIP without ZIP64", "zip_too_large");
  const end = header(22);
  const ev = end.view;
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, members.length, true);
  ev.setUint16(10, members.length, true);
  ev.setUint32(12, directory.size, true);
  ev.setUint32(16, offset, true);
  return new Blob([...parts, directory, end.bytes], { type: "application/zip" });
}

function centralEntry(name, crc, size, offset, stamp) {
  const entry = header(46 + name.length);
  const v = entry.view;
  v.setUint32(0, 0x02014b50, true);
  v.setUint16(4, VERSION, true); // made by: MS-DOS attributes, 2.0
  v.setUint16(6, VERSION, true);
  v.setUint16(8, UTF8_FLAG, true);
  v.setUint16(10, 0, true);
  v.setUint16(12, stamp.time, true);
  v.setUint16(14, stamp.date, true);
  v.setUint32(16, crc, true);
  v.setUint32(20, size, true);
  v.setUint32(24, size, true);
  v.setUint16(28, name.length, true);
  // extra, comment, disk, internal and external attributes: all zero
  v.setUint32(42, offset, true);
  entry.bytes.set(name, 46);
  return entry.bytes;
}
