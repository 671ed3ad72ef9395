// Money for people, exactly as the SDK shows it (clients/auction/money.py): integer minor units in the
// currency's own decimals (ISO 4217 exponent), no floating point on the way in or out.

const EXPONENT = {
  BIF: 0, CLP: 0, DJF: 0, GNF: 0, ISK: 0, JPY: 0, KMF: 0, KRW: 0, PYG: 0, RWF: 0,
  UGX: 0, VND: 0, VUV: 0, XAF: 0, XOF: 0, XPF: 0,
  BHD: 3, IQD: 3, JOD: 3, KWD: 3, LYD: 3, OMR: 3, TND: 3,
};
export const MAX_AMOUNT = 1e15;

export function exponentOf(currency) {
  return EXPONENT[currency] ?? 2;
}

function grouped(digits) {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** `123456, "USD"` -> `1,234.56 USD`; `null` (no bid yet) -> an em dash. */
export function formatMoney(minor, currency) {
  if (minor === null || minor === undefined) return "—";
  return `${plainMoney(minor, currency, true)} ${currency}`;
}

/** The amount as an input shows it: `1234.56`, without grouping or currency. */
export function plainMoney(minor, currency, group = false) {
  const exponent = exponentOf(currency);
  const sign = minor < 0 ? "-" : "";
  const scale = 10 ** exponent;
  const whole = String(Math.floor(Math.abs(minor) / scale));
  const text = group ? grouped(whole) : whole;
  if (!exponent) return sign + text;
  const fraction = String(Math.abs(minor) % scale).padStart(exponent, "0");
  return `${sign}${text}.${fraction}`;
}

/** `"12.5"` in USD -> 1250; null when it is not an amount of this currency (too many decimals...). */
export function parseMoney(text, currency) {
  const match = /^(\d{1,16})(?:\.(\d*))?$/.exec(String(text).trim().replaceAll(",", ""));
  if (match === null) return null;
  const exponent = exponentOf(currency);
  const fraction = match[2] ?? "";
  if (fraction.length > exponent) return null;
  const minor = Number(match[1]) * 10 ** exponent + Number(fraction.padEnd(exponent, "0") || "0");
  return Number.isSafeInteger(minor) && minor <= MAX_AMOUNT ? minor : null;
}
