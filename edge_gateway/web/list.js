// The item list: a status filter, each item's price and time left (on the platform's clock, from the
// answer's Date header), and a link to its live page.

import { api } from "./api.js";
import { mountChrome } from "./chrome.js";
import { ServerClock, formatRemaining } from "./clock.js";
import { $, h, itemLink, say, setText } from "./dom.js";
import { formatMoney } from "./money.js";

const clock = new ServerClock();
const shown = []; // [{item, left}]
let cursor = null;

function timeLeft(item) {
  if (item.status === "closed" || item.result) return "ended";
  const now = clock.now();
  const starts = Date.parse(item.starts_at);
  if (now < starts) return `opens in ${formatRemaining(starts - now)}`;
  const ends = Date.parse(item.ends_at);
  return now < ends ? `${formatRemaining(ends - now)} left` : "closing…";
}

function card(item) {
  const price = item.current_price === null ? `starts at ${formatMoney(item.starting_price, item.currency)}` : formatMoney(item.current_price, item.currency);
  const left = h("span", { class: "left" }, timeLeft(item));
  const element = h(
    "li",
    { dataset: { id: item.id, status: item.status } },
    h("h2", {}, itemLink(item.id, item.title)),
    h("p", { class: "meta" }, h("span", { class: "price" }, price), " · ", left, " · ", h("span", { class: "status" }, item.status)),
  );
  shown.push({ item, left });
  return element;
}

function tick() {
  for (const { item, left } of shown) setText(left, timeLeft(item));
}

async function load(more = false) {
  const status = $("#status").value;
  const message = $("#list-message");
  const query = new URLSearchParams({ limit: "50" });
  if (status) query.set("status", status);
  if (more && cursor) query.set("cursor", cursor);
  say(message, "Loading…", "loading");
  const answer = await api(`/items?${query}`);
  if (!answer.ok) {
    say(message, answer.status === 429 ? "Too many requests: wait a moment and reload." : "The items could not be loaded; try again.", "error");
    return;
  }
  clock.observeHttpDate(answer.headers.get("Date"));
  const list = $("#items");
  if (!more) {
    list.replaceChildren();
    shown.length = 0;
  }
  list.append(...answer.data.items.map(card));
  cursor = answer.data.next_cursor;
  $("#more").hidden = !cursor;
  say(message, shown.length ? `${shown.length} item${shown.length === 1 ? "" : "s"}.` : `No ${status || ""} items.`.replace("  ", " "), "loaded");
}

async function main() {
  mountChrome();
  const select = $("#status");
  const wanted = new URLSearchParams(location.search).get("status");
  if (wanted !== null && [...select.options].some((o) => o.value === wanted)) select.value = wanted;
  select.addEventListener("change", () => {
    const url = new URL(location.href);
    url.searchParams.set("status", select.value);
    history.replaceState(null, "", url);
    load();
  });
  $("#filter").addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  $("#more").addEventListener("click", () => load(true));
  await load();
  setInterval(tick, 1000);
}

main();
