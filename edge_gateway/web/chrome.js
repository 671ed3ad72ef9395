// What every page shares: the sign-in box in the header and the notice list.

import { itemSummary, loadConfig } from "./api.js";
import { $, h, itemLink, say, setText } from "./dom.js";
import { formatMoment } from "./clock.js";
import { formatMoney } from "./money.js";
import { NoticeFeed } from "./notices.js";
import { currentSession, fetchDevToken, onSessionChange, signIn, signOut } from "./session.js";

function signedInBox(session) {
  return h(
    "p",
    { class: "who" },
    "Signed in as ",
    h("strong", { id: "who-name" }, session.sub),
    ` (${session.role}) `,
    h("button", { type: "button", id: "sign-out", class: "link", onclick: () => signOut() }, "Sign out"),
  );
}

function signInBox(config) {
  const message = h("p", { id: "sign-in-message", role: "alert" });
  const pasted = h("form", { id: "token-form", class: "inline" },
    h("label", { for: "token-input" }, "Bearer token"),
    h("input", { id: "token-input", name: "token", type: "password", autocomplete: "off", required: true, spellcheck: "false" }),
    h("button", { type: "submit" }, "Use token"),
  );
  pasted.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!signIn($("#token-input").value)) say(message, "That is not a token (a JWT has three dot-separated parts).", "error");
  });
  const parts = [pasted];
  if (config?.dev_tokens) {
    const dev = h("form", { id: "dev-token-form", class: "inline" },
      h("label", { for: "dev-name" }, "Name"),
      h("input", { id: "dev-name", name: "sub", required: true, autocomplete: "username", pattern: "[A-Za-z0-9_.@\\-]{1,64}", value: "alice" }),
      h("label", { for: "dev-role" }, "Role"),
      h("select", { id: "dev-role", name: "role" }, h("option", { value: "bidder" }, "bidder"), h("option", { value: "admin" }, "admin")),
      h("button", { type: "submit" }, "Get a development token"),
    );
    dev.addEventListener("submit", async (event) => {
      event.preventDefault();
      const got = await fetchDevToken($("#dev-name").value.trim(), $("#dev-role").value);
      if (got.token) signIn(got.token);
      else say(message, got.error, "error");
    });
    parts.push(h("p", { class: "hint" }, "Local stack: a token for any name, valid for 1 h."), dev);
  }
  return h("details", { class: "sign-in" }, h("summary", {}, "Sign in"), ...parts, message);
}

function noticeText(notice, info) {
  const money = (minor) => (info ? formatMoney(minor, info.currency) : String(minor));
  switch (notice.type) {
    case "outbid":
      return `Outbid: now ${money(notice.current_price)}; bid at least ${money(notice.min_next_bid)}.`;
    case "won":
      return `Won at ${money(notice.final_price)}.`;
    case "lost":
      return `Lost: it went for ${money(notice.final_price)}.`;
    default:
      return `Extended: it now ends at ${formatMoment(notice.ends_at)}.`;
  }
}

const NOTICE_STATUS = {
  live: "Notices are live.",
  "signed-out": "Sign in to get notices when you are outbid, win or lose.",
  reconnecting: "Notices: connection lost, reconnecting…",
  unavailable: "Notices are not available right now; retrying in the background.",
};

function mountNotices(config) {
  const panel = $("#notices");
  if (!panel) return;
  const status = h("p", { id: "notice-status", role: "status" });
  const list = h("ol", { id: "notice-list", "aria-live": "polite" });
  panel.replaceChildren(h("h2", {}, "Notices"), status, list);
  const feed = new NoticeFeed(config.fanout_url, {
    onStatus: ({ state, detail }) =>
      say(status, state === "refused" ? `Notices refused: ${detail || "sign in again"}.` : NOTICE_STATUS[state], state),
    onNotice: (notice) => {
      const title = h("span", { class: "title" }, notice.item_id);
      const text = h("span", {}, noticeText(notice, null));
      list.prepend(h("li", { dataset: { type: notice.type, item: notice.item_id } }, itemLink(notice.item_id, title), " ", text));
      while (list.children.length > 20) list.lastElementChild.remove();
      itemSummary(notice.item_id).then((info) => {
        if (!info) return;
        setText(title, info.title);
        setText(text, noticeText(notice, info));
      });
    },
  });
  const follow = () => feed.start(currentSession()?.token ?? null);
  onSessionChange(follow);
  follow();
}

/** Fill the header's session box and the notice list; `onSession` runs at start and on every change. */
export async function mountChrome(onSession = () => {}) {
  const config = await loadConfig();
  const box = $("#session");
  const render = () => {
    const session = currentSession();
    box.replaceChildren(session ? signedInBox(session) : signInBox(config));
    onSession(session);
  };
  onSessionChange(render);
  render();
  mountNotices(config);
  return config;
}
