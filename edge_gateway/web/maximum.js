// The signed-in bidder's own maximum on an item, kept in this tab only (sessionStorage). The platform
// never shows a maximum to anyone (not in events, items or errors), so the page that sent it is the only
// place its owner can be told "you lead, up to your maximum"; nobody else's page can know it.

const prefix = (itemId, bidder) => `auction.maximum.${bidder}.${itemId}`;

export function rememberMaximum(itemId, bidder, minor) {
  try {
    sessionStorage.setItem(prefix(itemId, bidder), String(minor));
  } catch {
    // storage switched off: the page simply cannot remind its owner
  }
}

/** The maximum this tab sent for `bidder` on `itemId`, or null. */
export function myMaximum(itemId, bidder) {
  try {
    const text = sessionStorage.getItem(prefix(itemId, bidder));
    return text !== null && /^\d+$/.test(text) ? Number(text) : null;
  } catch {
    return null;
  }
}
