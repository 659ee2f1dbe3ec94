// Tiny DOM helpers. Data only ever becomes text (textContent / text nodes), never markup, so a
// name or message from another participant cannot inject HTML or script into the page.

/**
 * Create an element: h("li", {class: "x", "aria-label": "..."}, "text", child, ...).
 * `onclick`-style keys take functions; `hidden`/`disabled` take booleans; others are attributes.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

export function byId(id) {
  return document.getElementById(id);
}
