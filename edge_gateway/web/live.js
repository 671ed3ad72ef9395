// One item's live feed from the fan-out (`ws://<fanout>/ws/items/<id>`), kept whole across reconnects.
//
// `FeedDecoder` holds the bookkeeping and no I/O (the page's tests drive it directly): the last `seq`
// applied, so a frame seen twice (a replay after a reconnect overlapping what already arrived) is never
// applied twice; a jump in `seq` is a gap, answered by reconnecting with `since` so the server fills it.
// `LiveFeed` owns the WebSocket: when it drops, it says so, waits (exponential backoff with full jitter,
// so a crowd does not come back in step), and resumes with `since=<last seq>`, which makes the server
// send exactly the missed events, or `reset` and a fresh snapshot when it no longer holds them.
// The `closed` event is an item's last: after it the feed stops for good.

export class FeedDecoder {
  constructor(since = null) {
    this.lastSeq = since;
    this.duplicates = 0;
    this.gaps = 0;
    this.finished = false;
    this.afterReset = false;
  }

  /** The actions of one parsed frame, in order, and whether it ended on a gap (`{actions, gap}`). */
  decode(message) {
    const actions = [];
    switch (message?.type) {
      case "batch":
        for (const event of message.events ?? []) {
          if (!this.#event(event, actions)) return { actions, gap: true };
        }
        break;
      case "snapshot": {
        const seq = Number(message.seq);
        if (this.lastSeq !== null && seq < this.lastSeq && !this.afterReset) break; // older than shown
        this.afterReset = false;
        this.lastSeq = seq;
        if (message.item?.result) this.finished = true;
        actions.push({ kind: "snapshot", item: message.item, seq });
        break;
      }
      case "reset":
        this.afterReset = true;
        actions.push({ kind: "reset" });
        break;
      case "error":
        actions.push({ kind: "error", code: message.code, detail: message.detail });
        break;
      default:
        if (typeof message?.type === "string" && Number.isInteger(message.seq)) {
          if (!this.#event(message, actions)) return { actions, gap: true };
        }
    }
    return { actions, gap: false };
  }

  #event(event, actions) {
    const seq = Number(event.seq);
    if (this.lastSeq !== null) {
      if (seq <= this.lastSeq) {
        this.duplicates += 1;
        return true;
      }
      if (seq !== this.lastSeq + 1) {
        this.gaps += 1;
        return false;
      }
    }
    this.lastSeq = seq;
    if (event.type === "closed") this.finished = true;
    actions.push({ kind: "event", event });
    return true;
  }
}

export const CLOSE_NOT_FOUND = 4404;
const CLOSE_GAP = 4000; // ours: "reconnecting to fill a gap"

export class LiveFeed {
  /**
   * `onAction(action)` gets every snapshot, reset, event and error; `onStatus({state, ...})` each
   * change of the connection: `connecting`, `live`, `reconnecting` (with `inMs`, `attempt`),
   * `not-found`, `finished`.
   */
  constructor(baseUrl, itemId, { clock, onAction, onStatus, backoffInitialMs = 250, backoffMaxMs = 5000 }) {
    this.url = `${baseUrl.replace(/\/+$/, "")}/ws/items/${encodeURIComponent(itemId)}`;
    this.decoder = new FeedDecoder();
    this.clock = clock;
    this.onAction = onAction;
    this.onStatus = onStatus;
    this.backoff = [backoffInitialMs, backoffMaxMs];
    this.connects = 0;
    this.attempt = 0;
    this.socket = null;
    this.timer = null;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.#connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket?.close(1000, "page closed");
  }

  resumeUrl() {
    const since = this.decoder.lastSeq;
    return since === null ? this.url : `${this.url}?since=${since}`;
  }

  #connect() {
    this.timer = null;
    this.onStatus({ state: this.connects ? "reconnecting-now" : "connecting", attempt: this.attempt });
    let socket;
    try {
      socket = new WebSocket(this.resumeUrl());
    } catch {
      this.#retry();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.connects += 1;
      // Open is live: with `since` the server sends nothing more until something was missed or happens.
      this.onStatus({ state: "live", connects: this.connects, since: this.decoder.lastSeq });
    };
    socket.onmessage = (message) => {
      if (this.socket !== socket) return;
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      this.attempt = 0; // the backoff restarts only once the server really serves again
      this.clock?.observe(frame.server_time);
      const { actions, gap } = this.decoder.decode(frame);
      for (const action of actions) this.onAction(action);
      if (gap) socket.close(CLOSE_GAP, "gap");
      else if (this.decoder.finished) this.stop();
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.decoder.finished) {
        this.stopped = true;
        this.onStatus({ state: "finished" });
      } else if (event.code === CLOSE_NOT_FOUND) {
        this.stopped = true;
        this.onStatus({ state: "not-found" });
      } else if (!this.stopped) {
        this.#retry(event.code === CLOSE_GAP);
      }
    };
  }

  #retry(now = false) {
    const [initial, max] = this.backoff;
    const ceiling = Math.min(max, initial * 2 ** this.attempt);
    const delay = now ? 0 : Math.round(Math.random() * ceiling);
    this.attempt += 1;
    this.onStatus({ state: "reconnecting", inMs: delay, attempt: this.attempt });
    this.timer = setTimeout(() => this.#connect(), delay);
  }
}
