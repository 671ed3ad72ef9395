// The REST API of the edge, as the page calls it: JSON in, JSON or problem+json (RFC 9457) out.
// Network failures come back as `{status: 0}` rather than exceptions, so callers handle one shape.

let configPromise = null;

/** `/app/config.json`: the fan-out's URL and whether development tokens are on. Fetched once. */
export function loadConfig() {
  configPromise ??= fetch("config.json", { cache: "no-store" }).then((response) => {
    if (!response.ok) throw new Error(`config.json answered ${response.status}`);
    return response.json();
  });
  return configPromise;
}

export async function api(path, { method = "GET", token = null, body, headers = {} } = {}) {
  const sent = { Accept: "application/json, application/problem+json", ...headers };
  if (token) sent.Authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
    sent["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, { method, headers: sent, body: payload, cache: "no-store", credentials: "omit" });
  } catch (error) {
    return { status: 0, ok: false, headers: new Headers(), data: null, error };
  }
  let data = null;
  try {
    const text = await response.text();
    data = text ? JSON.parse(text) : null;
  } catch (error) {
    return { status: 0, ok: false, headers: response.headers, data: null, error };
  }
  return { status: response.status, ok: response.ok, headers: response.headers, data };
}

const itemInfo = new Map();

/** An item's title and currency, asked once per page (notices name items only by id). */
export function itemSummary(itemId) {
  if (!itemInfo.has(itemId)) {
    itemInfo.set(
      itemId,
      api(`/items/${encodeURIComponent(itemId)}`).then((answer) =>
        answer.ok ? { title: answer.data.title, currency: answer.data.currency } : null,
      ),
    );
  }
  return itemInfo.get(itemId);
}

/** The words for a problem answer nobody planned for: its own detail, else its status. */
export function problemText(answer) {
  if (answer.status === 0) return "The platform did not answer; check the connection and try again.";
  const detail = answer.data?.detail;
  return detail ? `${answer.data.title ?? "Refused"}: ${detail}.` : `The platform answered ${answer.status}.`;
}
