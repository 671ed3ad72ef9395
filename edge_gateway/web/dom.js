// Tiny DOM helpers. Elements are built from text nodes only (never innerHTML), so nothing an item title,
// a description or a bidder's name contains can ever become markup.

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

export const $ = (selector, root = document) => root.querySelector(selector);

/** Set a text only when it changes: the countdown ticks four times a second. */
export function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

/** Show a message in a live region with a state (`data-state`) that styles and tests can key on. */
export function say(element, text, state = "info") {
  element.dataset.state = state;
  setText(element, text);
}

export const ITEM_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function itemLink(itemId, text) {
  return h("a", { href: `item.html?id=${encodeURIComponent(itemId)}` }, text);
}
