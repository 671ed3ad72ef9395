// The platform's clock decides when an auction ends, not the viewer's. Every fan-out frame and snapshot
// carries `server_time`; the offset between it and the local clock when the frame arrived corrects every
// countdown on the page (it runs behind by the frame's one-way delay, usually milliseconds).

export class ServerClock {
  constructor(localNow = () => Date.now()) {
    this.offsetMs = 0;
    this.source = "local"; // then "http" (a Date header, 1 s resolution), then "frame"
    this.localNow = localNow;
  }

  /** A frame's `server_time` (RFC 3339), received now. */
  observe(serverTime, receivedAt = this.localNow()) {
    const at = typeof serverTime === "string" ? Date.parse(serverTime) : NaN;
    if (!Number.isFinite(at)) return;
    this.offsetMs = at - receivedAt;
    this.source = "frame";
  }

  /** An HTTP `Date` header: only until a frame told better (it has whole seconds: take the middle). */
  observeHttpDate(header, receivedAt = this.localNow()) {
    if (this.source === "frame" || !header) return;
    const at = Date.parse(header);
    if (!Number.isFinite(at)) return;
    this.offsetMs = at + 500 - receivedAt;
    this.source = "http";
  }

  now() {
    return this.localNow() + this.offsetMs;
  }
}

const two = (n) => String(n).padStart(2, "0");

/** `75_000` -> `1:15`; `3_725_000` -> `1:02:05`; more than a day -> `2 d 03:04:05`. Rounded up, so
 * "0:00" only shows once the time is really over. */
export function formatRemaining(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const days = Math.floor(total / 86400);
  const hours = Math.floor((total % 86400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  if (days) return `${days} d ${two(hours)}:${two(minutes)}:${two(seconds)}`;
  if (hours) return `${hours}:${two(minutes)}:${two(seconds)}`;
  return `${minutes}:${two(seconds)}`;
}

/** A moment for people, in their own time zone: `14:03:07` today, else with the date. */
export function formatMoment(iso) {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return "";
  const time = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const sameDay = at.toDateString() === new Date().toDateString();
  return sameDay ? time : `${at.toLocaleDateString()} ${time}`;
}
