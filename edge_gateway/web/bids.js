// Placing a bid so that it is placed at most once, whatever the network does.
//
// An intended bid gets one Idempotency-Key, and every retry of that intent sends the same key: the
// edge replays the first answer for a key it has seen, so a bid whose answer was lost on the way back,
// retried, is still one bid. A second press while a bid is in flight joins it instead of sending
// another (and the page drops the second click of a double click, so a double click is one bid even
// when the first click's answer comes back before the second click). The intent ends with a definite answer (accepted or refused); an
// intent left without one (the platform never answered) is kept, so pressing Bid again with the same
// amount retries it with the same key. A new amount is a new intent with a new key.
//
// The body is built by the caller (`{amount}` today; a maximum for proxy bids and buy-now fit the same
// path): an intent is "the same" when its path and body are.

import { api } from "./api.js";
import { formatMoney } from "./money.js";
import { formatMoment } from "./clock.js";

export function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16)); // works outside secure contexts too
  return `web-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

const RETRYABLE = new Set([0, 502, 503, 504]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class BidSender {
  constructor(itemId, { attempts = 4, backoffMs = 400 } = {}) {
    this.path = `/items/${encodeURIComponent(itemId)}/bid`;
    this.attempts = attempts;
    this.backoffMs = backoffMs;
    this.intent = null; // {path, body, text, key}
    this.inFlight = null;
  }

  /** Send `body` as `token`'s bid: `{kind: "accepted" | "refused" | "lost", answer}`. */
  place(body, token, path = this.path) {
    if (this.inFlight) return this.inFlight;
    const text = JSON.stringify(body);
    if (!this.intent || this.intent.text !== text || this.intent.path !== path) {
      this.intent = { path, body, text, key: newIdempotencyKey() };
    }
    this.inFlight = this.#send(this.intent, token).finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  async #send(intent, token) {
    let answer;
    for (let attempt = 0; attempt < this.attempts; attempt += 1) {
      if (attempt) await sleep(this.backoffMs * 2 ** (attempt - 1));
      answer = await api(intent.path, {
        method: "POST",
        token,
        body: intent.body,
        headers: { "Idempotency-Key": intent.key },
      });
      if (!RETRYABLE.has(answer.status)) break;
    }
    if (RETRYABLE.has(answer.status)) return { kind: "lost", answer, key: intent.key };
    // 429 is a definite "not now" too: the same intent may go again after the wait, with its key.
    if (answer.status !== 429 && this.intent === intent) this.intent = null;
    return { kind: answer.status === 201 ? "accepted" : "refused", answer, key: intent.key };
  }
}

/** Seconds to wait from a 429's Retry-After (whole seconds; an HTTP date is turned into seconds). */
export function retryAfterSeconds(headers) {
  const value = headers?.get("Retry-After");
  if (!value) return 1;
  if (/^\d+$/.test(value)) return Math.max(1, Number(value));
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(1, Math.ceil((at - Date.now()) / 1000)) : 1;
}

/** Every refusal of a bid in words (the `type` of its problem+json answer decides). */
export function refusalText(answer, item) {
  const problem = answer.data ?? {};
  const currency = item?.currency ?? "";
  switch (RETRYABLE.has(answer.status) ? "lost" : problem.type) {
    case "bid-too-low":
      return `Too low: the minimum bid is now ${formatMoney(problem.min_next_bid, currency)}.`;
    case "auction-closed":
      return "Too late: this auction has ended, so it takes no more bids.";
    case "auction-not-open":
      return item?.starts_at
        ? `Not open yet: bidding starts at ${formatMoment(item.starts_at)}.`
        : "Not open yet: this auction has not started.";
    case "rate-limited":
      return `Too many bids in a short time: wait ${retryAfterSeconds(answer.headers)} s, then bid again.`;
    case "unauthorized":
      return "You are signed out (your token is missing, expired or not valid): sign in to bid.";
    case "forbidden":
      return "This token may not bid.";
    case "item-not-found":
      return "This item does not exist.";
    case "validation-error":
      return `That amount is not valid: ${problem.errors?.[0]?.msg ?? problem.detail}.`;
    case "idempotency-key-reused":
      return "This bid was already sent with another amount; press Bid again to send it as a new bid.";
    case "lost":
      return "No answer from the platform, so your bid may not be placed yet. Press Bid again to retry it: it will not be placed twice.";
    default:
      return problem.detail ? `Refused: ${problem.detail}.` : `Refused (HTTP ${answer.status}).`;
  }
}
