// A benchmark lot's k_range, read as publication reads it (bidroom/tenders.py _check_k_range,
// docs/opening.md "The draw of K"), and what it means for the price scores
// (docs/evaluation.md "Price scores"): K is drawn from low, low + step, ..., high, and the
// benchmark is B = S x (1 - K), so B lies between (1 - high) and (1 - low) of S, the mean of the
// valid prices. Exact: decimals are scaled BigInts, never floats.
//
//   meaning(["0.00", "0.05", "0.01"]) ->
//     {ok: true, values: ["0.00", "0.01", "0.02", "0.03", "0.04", "0.05"], count: 6,
//      lowest: "95.00", highest: "100.00"}          // B as a percentage of S
//   meaning(["0.00", "0.05", "0.03"]) -> {ok: false, code: "k_range_invalid", reason: "step",
//      values: ["0.00", "0.03"], count: 2, high: "0.05"}   // 0.05 cannot be drawn
//   meaning(["0.95", "0.99", "0.01"]) -> {ok: false, code: "k_range_invalid", reason: "over",
//      suggested: ["0.01", "0.05", "0.01"]}          // the B = S x K convention: write 1 - K

export const K_MAX = "0.20"; // bidroom.scoring.K_MAX
export const K_SCALE = 6; // bidroom.scoring.K_SCALE: decimal places at most
const PLAIN = /^(0|[1-9]\d*)(\.\d+)?$/; // plain decimal notation: no sign, exponent, spaces

/** The number of digits after the point ("0.050" -> 3, "2" -> 0). */
function scale(text) {
  const dot = text.indexOf(".");
  return dot < 0 ? 0 : text.length - dot - 1;
}

/** ``text`` as an integer count of 10^-places (places >= scale(text)). */
function scaled(text, places) {
  const [whole, fraction = ""] = text.split(".");
  return BigInt(whole + fraction.padEnd(places, "0"));
}

/** An integer count of 10^-places as text with exactly ``places`` decimals. */
function unscaled(units, places) {
  const digits = units.toString().padStart(places + 1, "0");
  return places ? `${digits.slice(0, -places)}.${digits.slice(-places)}` : digits;
}

/** (1 - K) x 100 as a percentage text, K in units of 10^-places (places >= 2): exact, with
 * 2 decimals or more ("95.00", "99.9999"). */
function percentOfMean(k, places) {
  const one = 10n ** BigInt(places);
  let text = unscaled((one - k) * 100n, places);
  while (scale(text) > 2 && text.endsWith("0")) text = text.slice(0, -1);
  return text;
}

export function meaning(range) {
  if (!Array.isArray(range) || range.length !== 3) return { ok: false, code: "k_range_invalid", reason: "number" };
  const texts = range.map((v) => String(v ?? "").trim());
  if (!texts.every((v) => PLAIN.test(v))) return { ok: false, code: "k_range_invalid", reason: "number" };
  const places = Math.max(...texts.map(scale), scale(K_MAX));
  const [low, high, step] = texts.map((v) => scaled(v, places));
  if (!(low < high && step > 0n && step <= high - low)) return { ok: false, code: "k_range_invalid", reason: "order" };
  if (high > scaled(K_MAX, places)) {
    // [0.95, 0.99, 0.01] is the B = S x K convention's range: the same benchmarks are 1 - K
    const one = 10n ** BigInt(places);
    const mirrored = high <= one && one - low <= scaled(K_MAX, places);
    const suggested = mirrored
      ? [unscaled(one - high, places), unscaled(one - low, places), texts[2]].map((v) => trimTo(v, texts))
      : null;
    return { ok: false, code: "k_range_invalid", reason: "over", suggested };
  }
  if (texts.some((v) => scale(v) > K_SCALE)) return { ok: false, code: "k_range_invalid", reason: "places" };
  const shown = Math.max(scale(texts[0]), scale(texts[2])); // K's text: docs/opening.md
  const count = (high - low) / step + 1n; // the values drawable: low + i x step <= high
  const at = (i) => trimTo(unscaled(low + i * step, places), [], shown);
  const values = count <= 7n ? Array.from({ length: Number(count) }, (_, i) => at(BigInt(i))) : [at(0n), at(1n), at(2n), "…", at(count - 1n)];
  if ((high - low) % step !== 0n) {
    return { ok: false, code: "k_range_invalid", reason: "step", values, count: Number(count), high: texts[1] };
  }
  return {
    ok: true,
    values, // all of them up to 7, else the first three, "…" and the last
    count: Number(count),
    lowest: percentOfMean(high, places),
    highest: percentOfMean(low, places),
  };
}

/** ``text`` with exactly ``places`` decimals (default: the most the range's texts have). */
function trimTo(text, texts, places = Math.max(0, ...texts.map(scale))) {
  const [whole, fraction = ""] = text.split(".");
  const cut = fraction.slice(0, places).padEnd(places, "0");
  return places ? `${whole}.${cut}` : whole;
}
