// The signed-in bidder's notices across items, from the fan-out's `/ws/me` (CONTRACT.md, "Per-bidder
// notices"): `outbid`, `won`, `lost` and `extended`. The token goes in the first message, never in the
// URL (URLs end up in logs). When the endpoint is missing or down the list says so and the feed retries
// slowly; a refused token (a 44xx or policy close) is not retried until the session changes.

export const NOTICE_TYPES = new Set(["outbid", "won", "lost", "extended"]);

export class NoticeFeed {
  constructor(baseUrl, { onNotice, onStatus, backoffInitialMs = 1000, backoffMaxMs = 30000 }) {
    this.url = `${baseUrl.replace(/\/+$/, "")}/ws/me`;
    this.onNotice = onNotice;
    this.onStatus = onStatus;
    this.backoff = [backoffInitialMs, backoffMaxMs];
    this.attempt = 0;
    this.socket = null;
    this.timer = null;
    this.token = null;
    this.seen = new Set();
  }

  /** (Re)start for `token`; null stops (signed out). */
  start(token) {
    this.stop();
    this.token = token;
    this.attempt = 0;
    if (token) this.#connect();
    else this.onStatus({ state: "signed-out" });
  }

  stop() {
    clearTimeout(this.timer);
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, "signed out");
  }

  #connect() {
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch {
      this.#retry(false);
      return;
    }
    this.socket = socket;
    let opened = false;
    let error = null;
    socket.onopen = () => {
      opened = true;
      socket.send(JSON.stringify({ type: "auth", token: this.token }));
      this.onStatus({ state: "live" });
    };
    socket.onmessage = (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      this.attempt = 0;
      const frames = frame.type === "batch" ? frame.events ?? frame.notices ?? [] : [frame];
      for (const notice of frames) {
        if (notice?.type === "error") error = notice;
        else if (NOTICE_TYPES.has(notice?.type)) this.#deliver(notice);
      }
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if ((event.code >= 4400 && event.code < 4500) || event.code === 1008) {
        this.onStatus({ state: "refused", detail: error?.detail ?? event.reason });
      } else {
        this.#retry(opened);
      }
    };
  }

  #deliver(notice) {
    // A notice repeated after a reconnect is shown once.
    const key = [notice.type, notice.item_id, notice.current_price, notice.min_next_bid, notice.final_price, notice.ends_at].join("|");
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.onNotice(notice);
  }

  #retry(wasOpen) {
    const [initial, max] = this.backoff;
    const delay = Math.round(initial / 2 + (Math.random() * Math.min(max, initial * 2 ** this.attempt)) / 2);
    this.attempt += 1;
    this.onStatus({ state: wasOpen ? "reconnecting" : "unavailable", inMs: delay });
    this.timer = setTimeout(() => this.#connect(), delay);
  }
}
