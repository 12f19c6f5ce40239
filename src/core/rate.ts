/**
 * Link rates as written in configuration ("10Mbit", "512kbit", "1.5Gbit"): decimal units of bits
 * per second, as tc writes them. Bytes per second ("kbps" in tc's language) are refused on purpose:
 * the two are too easy to confuse.
 */

const RATE = /^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit)$/i;
const UNITS: Record<string, number> = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9 };

/** Bits per second of a rate string; undefined when it is not one (or not a whole number of bits). */
export function parseRate(text: string): number | undefined {
  const m = RATE.exec(text.trim());
  if (m === null || m[1] === undefined || m[2] === undefined) return undefined;
  const bits = Math.round(Number(m[1]) * (UNITS[m[2].toLowerCase()] ?? Number.NaN));
  return Number.isSafeInteger(bits) && bits >= 8000 ? bits : undefined;
}

/** tc's spelling of a rate: whole kbit, which every tc version reads the same way. */
export function tcRate(bitsPerSecond: number): string {
  return `${Math.max(8, Math.floor(bitsPerSecond / 1000))}kbit`;
}

/** "9.5 Mbit/s" for people. */
export function showRate(bitsPerSecond: number): string {
  if (bitsPerSecond >= 1e9) return `${+(bitsPerSecond / 1e9).toFixed(2)} Gbit/s`;
  if (bitsPerSecond >= 1e6) return `${+(bitsPerSecond / 1e6).toFixed(2)} Mbit/s`;
  return `${+(bitsPerSecond / 1e3).toFixed(1)} kbit/s`;
}
