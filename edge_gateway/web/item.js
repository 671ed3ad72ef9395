// The live item page: the item's state from the fan-out (a snapshot, then every event in `seq` order),
// a countdown on the platform's clock, the latest activity, the result, the bid form (an amount, a
// maximum for the platform to bid up to, or both) and buy-now while the item has no bid.

import { api } from "./api.js";
import { BidSender, refusalText, retryAfterSeconds } from "./bids.js";
import { mountChrome } from "./chrome.js";
import { ServerClock, formatMoment, formatRemaining } from "./clock.js";
import { $, h, ITEM_ID, say, setText } from "./dom.js";
import { LiveFeed } from "./live.js";
import { myMaximum, rememberMaximum } from "./maximum.js";
import { formatMoney, parseMoney, plainMoney } from "./money.js";
import { currentSession, signOut } from "./session.js";

const SHOWN_EVENTS = 50;
const itemId = new URLSearchParams(location.search).get("id") ?? "";
const clock = new ServerClock();
const sender = new BidSender(itemId);
const buyer = new BidSender(itemId); // its own intent: a buy-now is not a bid
const buyPath = `/items/${encodeURIComponent(itemId)}/buy`;
const page = {
  item: null,
  entries: new Map(), // seq -> {seq, type, text, appliedAt}
  outbid: false, // the signed-in bidder led, then someone else did
  myBid: false,
  amountTouched: false,
  waitUntil: 0,
  historyAsked: false,
  feed: null,
  offline: null, // {from, to, missed}: when the feed was down (platform clock), and what it missed then
};

const money = (minor) => formatMoney(minor, page.item?.currency ?? "");
const isClosed = () => page.item?.status === "closed" || Boolean(page.item?.result);

/** The bid's body: an amount, a maximum (a proxy bid: the platform bids up to it), or both. */
function bidBody(amount, maximum) {
  const body = {};
  if (amount !== null) body.amount = amount;
  if (maximum !== null) body.max_amount = maximum;
  return body;
}

/** The maximum this tab sent, while it still means something: its owner leads and it is above the price. */
function standingMaximum() {
  const me = currentSession()?.sub;
  const item = page.item;
  if (!me || !item || item.highest_bidder !== me) return null;
  const maximum = myMaximum(itemId, me);
  return maximum !== null && maximum > (item.current_price ?? 0) ? maximum : null;
}

function entryText(event) {
  switch (event.type) {
    case "bid":
      return event.proxy
        ? `${event.bidder} bid ${money(event.amount)} (automatic, within their maximum)`
        : `${event.bidder} bid ${money(event.amount)}`;
    case "extended": {
      const moved = Date.parse(event.ends_at) - Date.parse(event.previous_ends_at);
      const by = Number.isFinite(moved) && moved > 0 ? ` (+${formatRemaining(moved)})` : "";
      return `Extended: now ends at ${formatMoment(event.ends_at)}${by}`;
    }
    case "closed":
      return event.outcome === "sold"
        ? `Closed: sold to ${event.winner} for ${money(event.final_price)}`
        : "Closed: no sale";
    default:
      return event.type;
  }
}

/** Whether an event happened while the feed was down (so it arrived in the catch-up after it). An
 * extension has no time of its own: it goes with the bid right before it. */
function missedOffline(event, at) {
  const window = page.offline;
  if (!window || window.to === null) return false;
  if (!at) return page.entries.get(event.seq - 1)?.missed ?? false;
  const moment = Date.parse(at);
  return moment >= window.from && moment <= window.to;
}

function remember(event, appliedAt) {
  const known = page.entries.get(event.seq);
  if (known && (known.appliedAt !== null || appliedAt === null)) return; // live beats the archive's copy
  const at = event.placed_at ?? event.closed_at ?? null;
  const missed = appliedAt !== null && missedOffline(event, at);
  if (missed) page.offline.missed += 1;
  page.entries.set(event.seq, { seq: event.seq, type: event.type, text: entryText(event), at, appliedAt, missed });
}

function applyEvent(event) {
  const item = page.item;
  if (!item) return;
  const leaderBefore = item.highest_bidder;
  if (event.type === "bid") {
    item.current_price = event.current_price;
    item.highest_bidder = event.bidder;
    item.min_next_bid = event.min_next_bid;
    item.bid_count += 1;
  } else if (event.type === "extended") {
    item.ends_at = event.ends_at;
  } else if (event.type === "closed") {
    item.status = "closed";
    item.bid_count = event.bid_count;
    item.result = {
      outcome: event.outcome,
      winner: event.winner,
      final_price: event.final_price,
      closed_at: event.closed_at,
    };
  }
  item.seq = event.seq;
  remember(event, Date.now());
  const me = currentSession()?.sub;
  // A maximum stays remembered through an outbid: a challenger's named bid comes as its own event just
  // before the maximum's answer to it. It only shows while its owner leads below it.
  if (me && leaderBefore === me && item.highest_bidder !== me) page.outbid = true;
  if (me && item.highest_bidder === me) page.outbid = false;
}

function onAction(action) {
  const connection = $("#connection");
  if (action.kind === "snapshot") {
    page.item = { ...action.item };
    if (!page.historyAsked) loadHistory();
  } else if (action.kind === "event") {
    applyEvent(action.event);
  } else if (action.kind === "reset") {
    say(connection, "Some missed events are too old to replay: showing the current state.", "reset");
  } else if (action.kind === "error" && action.code === "item-not-found") {
    notFound();
    return;
  }
  if (page.item) document.body.dataset.feedSeq = String(page.item.seq); // what the feed has applied
  showLive();
  render();
}

function onStatus({ state, inMs }) {
  const connection = $("#connection");
  const feed = page.feed;
  connection.dataset.connects = String(feed?.connects ?? 0);
  switch (state) {
    case "connecting":
      say(connection, "Connecting to the live feed…", state);
      break;
    case "live":
      if (page.offline && page.offline.to === null) page.offline.to = clock.now();
      say(connection, "Live.", state);
      showLive();
      break;
    case "reconnecting":
      if (!page.offline || page.offline.to !== null) page.offline = { from: clock.now(), to: null, missed: 0 };
      say(connection, `Connection lost: reconnecting in ${(inMs / 1000).toFixed(1)} s…`, state);
      break;
    case "reconnecting-now":
      say(connection, "Connection lost: reconnecting now…", "reconnecting");
      break;
    case "not-found":
      notFound();
      break;
    case "finished":
      say(connection, "The auction is over; the live feed has ended.", state);
      break;
  }
}

function showLive() {
  const connection = $("#connection");
  const offline = page.offline;
  if (connection.dataset.state !== "live" || !offline || offline.to === null) return;
  const missed = offline.missed;
  const what = missed ? `caught up with ${missed} missed event${missed === 1 ? "" : "s"}` : "nothing was missed";
  say(connection, `Live again: ${what}.`, "live");
}

function notFound() {
  page.feed?.stop();
  setText($("#title"), "No such item");
  say($("#connection"), "This item does not exist (or no longer does).", "not-found");
  $("#bid-fields").disabled = true;
}

async function loadHistory() {
  page.historyAsked = true;
  const answer = await api(`/items/${encodeURIComponent(itemId)}/bids?limit=20`);
  if (!answer.ok || !Array.isArray(answer.data?.bids)) return; // history is a nicety: the feed is the truth
  for (const bid of answer.data.bids) remember({ ...bid, type: "bid" }, null);
  render();
}

function youState() {
  const me = currentSession()?.sub;
  const item = page.item;
  if (!me || !item) return ["", "none"];
  if (item.result) {
    if (item.result.winner === me) return [`You won this auction at ${money(item.result.final_price)}.`, "won"];
    return page.myBid || page.outbid ? ["You did not win this auction.", "lost"] : ["", "none"];
  }
  if (item.highest_bidder === me) {
    const maximum = standingMaximum();
    return maximum === null
      ? ["You are the highest bidder.", "leading"]
      : [`You are the highest bidder, up to your maximum of ${money(maximum)}.`, "leading-maximum"];
  }
  if (page.outbid) {
    const again = `Bid at least ${money(item.min_next_bid)} to lead again.`;
    return [`Outbid: ${item.highest_bidder} leads at ${money(item.current_price)}. ${again}`, "outbid"];
  }
  return ["", "none"];
}

function render() {
  const item = page.item;
  if (!item) return;
  document.title = `${item.title} · Live auction`;
  setText($("#title"), item.title);
  setText($("#description"), item.description ?? "");
  setText($("#price"), item.current_price === null ? `No bids yet (starts at ${money(item.starting_price)})` : money(item.current_price));
  setText($("#leader"), item.highest_bidder ?? "—");
  setText($("#bid-count"), String(item.bid_count));
  setText($("#ends-at"), `(${isClosed() ? "ended" : "ends"} ${formatMoment(item.ends_at)})`);
  setText($("#amount-currency"), `(${item.currency})`);
  setText($("#amount-hint"), `Minimum bid: ${money(item.min_next_bid)}`);
  const amount = $("#amount");
  if (!page.amountTouched && document.activeElement !== amount) amount.value = plainMoney(item.min_next_bid, item.currency);
  const [you, state] = youState();
  say($("#you"), you, state);
  const result = $("#result");
  result.hidden = !item.result;
  if (item.result) {
    const { outcome, winner, final_price: price } = item.result;
    say($("#result-text"), outcome === "sold" ? `Sold to ${winner} for ${money(price)}.` : "Not sold (no bid, or the reserve was not met).", outcome);
  }
  $("#bid-button").disabled = isClosed() || Date.now() < page.waitUntil || sender.inFlight !== null;
  renderBuyNow();
  renderEvents();
  tick();
}

/** Buy-now is offered while the item is open, has a buy-now price and no bid yet. */
function renderBuyNow() {
  const item = page.item;
  const section = $("#buy-now");
  const open = !isClosed() && clock.now() >= Date.parse(item.starts_at);
  const offered = item.buy_now_price !== null && item.buy_now_price !== undefined && item.bid_count === 0 && open;
  if (!offered && section.dataset.bought !== "true") {
    section.hidden = true;
    return;
  }
  section.hidden = false;
  const button = $("#buy-button");
  setText(button, `Buy now for ${money(item.buy_now_price)}`);
  button.disabled = !offered || buyer.inFlight !== null;
}

function renderEvents() {
  const shown = [...page.entries.values()].sort((a, b) => b.seq - a.seq).slice(0, SHOWN_EVENTS);
  const list = $("#events");
  if (list.dataset.shown === shown.map((e) => e.seq).join(",")) return;
  list.dataset.shown = shown.map((e) => e.seq).join(",");
  list.replaceChildren(
    ...shown.map((entry) =>
      h(
        "li",
        { dataset: { seq: entry.seq, type: entry.type, appliedAt: entry.appliedAt ?? "", missed: entry.missed } },
        h("span", { class: "what" }, entry.text),
        entry.missed ? h("span", { class: "badge" }, "while you were offline") : null,
        entry.at ? h("time", { datetime: entry.at }, formatMoment(entry.at)) : null,
      ),
    ),
  );
}

function tick() {
  const item = page.item;
  if (!item) return;
  const countdown = $("#countdown");
  const now = clock.now();
  const starts = Date.parse(item.starts_at);
  const ends = Date.parse(item.ends_at);
  let label = "Time left";
  let text;
  if (isClosed()) {
    text = "ended";
  } else if (now < starts) {
    label = "Opens in";
    text = formatRemaining(starts - now);
  } else if (now < ends) {
    text = formatRemaining(ends - now);
  } else {
    text = "closing…";
  }
  setText($("#countdown-label"), label);
  setText(countdown, text);
  countdown.dataset.endsAt = item.ends_at;
}

async function submitBid(event) {
  event.preventDefault();
  const message = $("#bid-message");
  const session = currentSession();
  if (!session) {
    say(message, "You are signed out: sign in above to bid.", "signed-out");
    $("#session details")?.setAttribute("open", "");
    return;
  }
  const item = page.item;
  if (!item) return;
  const amountText = $("#amount").value.trim();
  const maximumText = $("#max-amount").value.trim();
  const amount = amountText === "" && maximumText !== "" ? null : parseMoney(amountText, item.currency);
  const maximum = maximumText === "" ? null : parseMoney(maximumText, item.currency);
  const example = plainMoney(item.min_next_bid, item.currency);
  if (amount === null && amountText !== "") {
    say(message, `Enter an amount in ${item.currency}, such as ${example}.`, "invalid");
    $("#amount").focus();
    return;
  }
  if (maximum === null && maximumText !== "") {
    say(message, `Enter your maximum in ${item.currency}, such as ${example}, or leave it empty.`, "invalid");
    $("#max-amount").focus();
    return;
  }
  if (amount === null && maximum === null) {
    say(message, `Enter an amount in ${item.currency}, such as ${example}.`, "invalid");
    $("#amount").focus();
    return;
  }
  if (amount !== null && maximum !== null && maximum < amount) {
    say(message, `Your maximum (${money(maximum)}) must be at least your bid (${money(amount)}).`, "invalid");
    $("#max-amount").focus();
    return;
  }
  const button = $("#bid-button");
  button.disabled = true;
  say(message, maximum === null ? `Sending your bid of ${money(amount)}…` : `Sending your bid with a maximum of ${money(maximum)}…`, "pending");
  const { kind, answer } = await sender.place(bidBody(amount, maximum), session.token);
  message.dataset.answeredAt = String(Date.now());
  if (kind === "accepted") {
    page.myBid = true;
    page.amountTouched = false;
    if (maximum !== null && answer.data.leading) rememberMaximum(itemId, session.sub, maximum);
    $("#max-amount").value = "";
    say(message, acceptedText(answer.data, maximum), answer.data.leading === false ? "accepted-outbid" : "accepted");
  } else {
    const type = kind === "lost" ? "lost" : answer.data?.type ?? "refused";
    say(message, refusalText(answer, item), type);
    if (type === "bid-too-low" && Number.isInteger(answer.data.min_next_bid)) {
      $("#amount").value = plainMoney(answer.data.min_next_bid, item.currency);
      page.amountTouched = true;
    } else if (type === "unauthorized") {
      signOut();
      $("#session details")?.setAttribute("open", "");
    } else if (type === "rate-limited") {
      page.waitUntil = Date.now() + retryAfterSeconds(answer.headers) * 1000;
      setTimeout(render, page.waitUntil - Date.now() + 50);
    }
  }
  render();
}

/** What an accepted bid did, in words: a maximum may lead above the bid, or another maximum may beat it. */
function acceptedText(answer, maximum) {
  const price = answer.item?.current_price ?? answer.amount;
  if (answer.leading === false) {
    return `Bid placed: ${money(answer.amount)}, but another bidder's maximum is higher: they lead at ${money(price)}.`;
  }
  if (maximum !== null) return `Bid placed: you lead at ${money(price)}; the platform bids for you up to ${money(maximum)}.`;
  return `Bid placed: ${money(answer.amount)}.`;
}

async function buyNow() {
  const message = $("#buy-message");
  const session = currentSession();
  if (!session) {
    say(message, "You are signed out: sign in above to buy.", "signed-out");
    $("#session details")?.setAttribute("open", "");
    return;
  }
  const item = page.item;
  if (!item) return;
  $("#buy-button").disabled = true;
  say(message, `Buying for ${money(item.buy_now_price)}…`, "pending");
  const { kind, answer } = await buyer.place({}, session.token, buyPath);
  if (kind === "accepted") {
    page.myBid = true;
    $("#buy-now").dataset.bought = "true";
    say(message, `Bought: the item is yours for ${money(answer.data.amount)}.`, "bought");
  } else {
    const type = kind === "lost" ? "lost" : answer.data?.type ?? "refused";
    say(message, buyRefusalText(answer, item), type);
    if (type === "unauthorized") signOut();
  }
  render();
}

function buyRefusalText(answer, item) {
  switch (answer.data?.type) {
    case "buy-now-unavailable":
      return "Buy now is gone: the first bid has been placed, so this item goes to the highest bidder.";
    case "auction-closed":
      return "Too late: this auction has ended (someone may have bought it first).";
    default:
      return answer.status === 0 || answer.status >= 502
        ? "No answer from the platform, so the purchase may not be made yet. Press Buy again to retry it: it will not be made twice."
        : refusalText(answer, item);
  }
}

async function main() {
  const config = await mountChrome(() => render());
  $("#bid-form").addEventListener("submit", submitBid);
  $("#buy-button").addEventListener("click", (event) => {
    if (event.detail > 1) return; // a double click is one purchase
    buyNow();
  });
  // The second click of a double click (the browser counts it in `detail`) is the same press: without
  // this, a fast answer to the first one re-enables the button in time for the second to bid again.
  $("#bid-button").addEventListener("click", (event) => {
    if (event.detail > 1) event.preventDefault();
  });
  $("#amount").addEventListener("input", () => {
    page.amountTouched = true;
  });
  if (!ITEM_ID.test(itemId)) {
    notFound();
    return;
  }
  page.feed = new LiveFeed(config.fanout_url, itemId, { clock, onAction, onStatus });
  page.feed.start();
  const answer = await api(`/items/${encodeURIComponent(itemId)}`);
  if (answer.status === 404) {
    notFound();
  } else if (answer.ok && page.item === null) {
    clock.observeHttpDate(answer.headers.get("Date"));
    page.item = answer.data; // until the snapshot, which replaces it
    render();
  }
  setInterval(tick, 250);
}

main();
