// Who is signed in: the page holds a bearer token (a JWT) in this browser's storage and sends it with
// every write. The page only reads the token's claims to show who it is; the edge verifies it on every
// call, so a pasted token that is expired or forged is simply answered 401 and shown as signed out.

import { api } from "./api.js";

const KEY = "auction.token";
const CHANGED = "auction:session";

function base64UrlJson(part) {
  const base64 = part.replaceAll("-", "+").replaceAll("_", "/");
  const bytes = Uint8Array.from(atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4)), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

/** `{sub, role, exp}` of a JWT, or null when it is not one. */
export function claimsOf(token) {
  const parts = String(token).split(".");
  if (parts.length !== 3) return null;
  try {
    const claims = base64UrlJson(parts[1]);
    return typeof claims?.sub === "string" ? claims : null;
  } catch {
    return null;
  }
}

/** `{token, sub, role, exp}` or null when signed out. */
export function currentSession() {
  let token = null;
  try {
    token = localStorage.getItem(KEY);
  } catch {
    return null; // storage switched off: nobody can stay signed in
  }
  const claims = token ? claimsOf(token) : null;
  return claims ? { token, sub: claims.sub, role: claims.role ?? "bidder", exp: claims.exp ?? null } : null;
}

/** Keep `token`; false (and nothing kept) when it is not a JWT at all. */
export function signIn(token) {
  const trimmed = String(token).trim().replace(/^Bearer\s+/i, "");
  if (!claimsOf(trimmed)) return false;
  localStorage.setItem(KEY, trimmed);
  window.dispatchEvent(new Event(CHANGED));
  return true;
}

export function signOut() {
  localStorage.removeItem(KEY);
  window.dispatchEvent(new Event(CHANGED));
}

/** `callback()` whenever the session changes, in this tab or another one of this browser. */
export function onSessionChange(callback) {
  window.addEventListener(CHANGED, callback);
  window.addEventListener("storage", (event) => {
    if (event.key === KEY) callback();
  });
}

/** A token from the local stack's development endpoint (`POST /app/dev-token`): `{token}` or `{error}`. */
export async function fetchDevToken(sub, role) {
  const answer = await api("dev-token", { method: "POST", body: { sub, role } });
  if (answer.status === 201) return { token: answer.data.token };
  if (answer.status === 404) return { error: "Development tokens are off on this platform: paste a token." };
  if (answer.status === 422) return { error: "A name is 1 to 64 letters, digits or . _ @ -" };
  return { error: answer.data?.detail ?? `The platform answered ${answer.status}.` };
}
