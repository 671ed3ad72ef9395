// The admin page: create an item (soft close and reserve optional). The platform validates everything;
// the page only turns amounts into minor units and local times into RFC 3339, and shows what it says.

import { api } from "./api.js";
import { mountChrome } from "./chrome.js";
import { $, h, itemLink, say } from "./dom.js";
import { parseMoney } from "./money.js";
import { currentSession, signOut } from "./session.js";

const value = (id) => $(`#${id}`).value.trim();

/** A `datetime-local` value (the viewer's own time zone) as RFC 3339 UTC; null when empty or invalid. */
function instant(id) {
  const text = value(id);
  if (!text) return null;
  const at = new Date(text);
  return Number.isNaN(at.getTime()) ? null : at.toISOString();
}

function localInput(date) {
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return shifted.toISOString().slice(0, 19);
}

/** The request body, or a list of what to fix before sending. */
function readForm() {
  const problems = [];
  const currency = value("currency-input").toUpperCase();
  const amount = (id, label, optional = false) => {
    const text = value(id);
    if (!text && optional) return null;
    const minor = parseMoney(text, currency);
    if (minor === null) problems.push(`${label}: enter an amount in ${currency}, such as 12.50.`);
    return minor;
  };
  const body = {
    title: value("title-input"),
    description: $("#description-input").value,
    currency,
    starting_price: amount("starting-input", "Starting price"),
    min_increment: amount("increment-input", "Minimum increment"),
    ends_at: instant("ends-input"),
  };
  if (!body.title) problems.push("Title: give the item a title.");
  if (!body.ends_at) problems.push("Ends: choose when the auction ends.");
  const starts = instant("starts-input");
  if (starts) body.starts_at = starts;
  const reserve = amount("reserve-input", "Reserve price", true);
  if (reserve !== null) body.reserve_price = reserve;
  if ($("#soft-close-input").checked) {
    body.soft_close = {
      window_seconds: Number(value("window-input")),
      extension_seconds: Number(value("extension-input")),
      max_ends_at: instant("cap-input"),
    };
  }
  return { body, problems };
}

function showProblems(message, lines) {
  message.dataset.state = "error";
  message.replaceChildren(h("p", {}, "Not created:"), h("ul", {}, lines.map((line) => h("li", {}, line))));
}

async function create(event) {
  event.preventDefault();
  const message = $("#create-message");
  const session = currentSession();
  if (!session) {
    say(message, "You are signed out: sign in with an admin token to create items.", "signed-out");
    return;
  }
  const { body, problems } = readForm();
  if (problems.length) {
    showProblems(message, problems);
    return;
  }
  const button = $("#create-button");
  button.disabled = true; // one press, one item (creating has no idempotency key)
  say(message, "Creating…", "pending");
  const answer = await api("/items", { method: "POST", token: session.token, body });
  button.disabled = false;
  if (answer.status === 201) {
    message.dataset.state = "created";
    message.replaceChildren(h("p", {}, "Created: ", itemLink(answer.data.id, answer.data.title), "."));
  } else if (answer.status === 401) {
    signOut();
    say(message, "You are signed out (the token is missing, expired or not valid): sign in as an admin.", "signed-out");
  } else if (answer.status === 403) {
    say(message, "Only admins create items: sign in with an admin token.", "forbidden");
  } else if (answer.status === 422 && Array.isArray(answer.data?.errors)) {
    showProblems(message, answer.data.errors.map((e) => `${e.loc.filter((p) => p !== "body").join(".") || "item"}: ${e.msg}`));
  } else {
    say(message, answer.data?.detail ? `Not created: ${answer.data.detail}.` : `Not created (HTTP ${answer.status}).`, "error");
  }
}

function main() {
  mountChrome();
  $("#ends-input").value = localInput(new Date(Date.now() + 10 * 60000));
  $("#create-form").addEventListener("submit", create);
}

main();
